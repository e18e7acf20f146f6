// The main process's IPC checks: wrong senders and bad payloads never reach
// the worker host, and every answer has the shape the HTTP endpoint uses.
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { pathToFileURL } from 'node:url';
import { answerIpc, IPC_CHANNELS, parseIpcRequest, registerIpc, type IpcSender } from '../../src/main/ipc.js';
import { GridError, isGridError } from '../../src/protocol/errors.js';
import { FakeTarget } from '../renderer/fake-target.js';
import { VIEWS } from '../renderer/views.js';

const PAGE = pathToFileURL('/opt/GoGrid Worker/resources/app.asar/dist/renderer/index.html').href;
const OURS: IpcSender = { url: PAGE, isMainFrame: true };
const silent = pino({ level: 'silent' });

function refusal(fn: () => unknown): GridError {
  try {
    fn();
  } catch (e) {
    if (isGridError(e)) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('IPC channels', () => {
  it('are gogrid:<route>, the names the preload uses', () => {
    expect(IPC_CHANNELS).toEqual({ status: 'gogrid:/v1/status', control: 'gogrid:/v1/control', enroll: 'gogrid:/v1/enroll', settings: 'gogrid:/v1/settings' });
  });
});

describe('parseIpcRequest', () => {
  it('accepts each call from our page, also with a fragment or query it added', () => {
    expect(parseIpcRequest(IPC_CHANNELS.status, OURS, [], PAGE)).toEqual({ route: 'status' });
    expect(parseIpcRequest(IPC_CHANNELS.control, { url: `${PAGE}#x`, isMainFrame: true }, [{ action: 'snooze', minutes: 60 }], PAGE)).toEqual({
      route: 'control',
      action: { action: 'snooze', minutes: 60 },
    });
    expect(parseIpcRequest(IPC_CHANNELS.enroll, { url: `${PAGE}?a=1`, isMainFrame: true }, [{ coordinator: ' grid:8443 ', token: 'gg1.a.b.c' }], PAGE)).toEqual({
      route: 'enroll',
      form: { coordinator: 'grid:8443', token: 'gg1.a.b.c' },
    });
    expect(parseIpcRequest(IPC_CHANNELS.settings, OURS, [{ policy: { preset: 'custom', idleMinutes: 10 } }], PAGE)).toEqual({
      route: 'settings',
      update: { policy: { preset: 'custom', idleMinutes: 10 } },
    });
  });

  it.each([
    ['another file', { url: pathToFileURL('/tmp/evil.html').href, isMainFrame: true }],
    ['a web page', { url: 'https://example.com/dist/renderer/index.html', isMainFrame: true }],
    ['a subframe of our page', { url: PAGE, isMainFrame: false }],
    ['a frame already gone', null],
    ['an unparseable URL', { url: 'not a url', isMainFrame: true }],
  ])('refuses a call from %s', (_name, sender) => {
    const e = refusal(() => parseIpcRequest(IPC_CHANNELS.control, sender, [{ action: 'pause' }], PAGE));
    expect(e.code).toBe('GG_ERR_UNAUTHENTICATED');
    expect(e.message).toMatch(/^IPC on gogrid:\/v1\/control refused: it came from .*, not the status window$/);
  });

  it.each([
    ['an unknown channel', 'gogrid:/v1/shutdown', [], /^no IPC channel "gogrid:\/v1\/shutdown"$/],
    ['an unknown action', IPC_CHANNELS.control, [{ action: 'format-disk' }], /^action: /],
    ['an extra key', IPC_CHANNELS.control, [{ action: 'pause', now: true }], /^\(body\): Unrecognized key/],
    ['a snooze with neither minutes nor untilMs', IPC_CHANNELS.control, [{ action: 'snooze' }], /give either untilMs or minutes/],
    ['a snooze of a year', IPC_CHANNELS.control, [{ action: 'snooze', minutes: 525_600 }], /^minutes: Too big/],
    ['no payload', IPC_CHANNELS.control, [], /^gogrid:\/v1\/control takes 1 argument, got 0$/],
    ['two payloads', IPC_CHANNELS.control, [{ action: 'pause' }, { action: 'resume' }], /takes 1 argument, got 2$/],
    ['a payload for status', IPC_CHANNELS.status, [{}], /^gogrid:\/v1\/status takes 0 arguments, got 1$/],
    ['a string instead of an object', IPC_CHANNELS.enroll, ['gg1.a.b.c'], /^\(body\): /],
    ['an empty token', IPC_CHANNELS.enroll, [{ coordinator: 'grid', token: '   ' }], /^token: /],
    ['an empty settings update', IPC_CHANNELS.settings, [{}], /nothing to change/],
    ['an unknown preset', IPC_CHANNELS.settings, [{ policy: { preset: 'turbo' } }], /^policy\.preset: /],
    ['a prototype-polluting key', IPC_CHANNELS.settings, [JSON.parse('{"__proto__": {"admin": true}, "startAtLogin": true}')], /^\(body\): Unrecognized key/],
  ])('refuses %s', (_name, channel, args, message) => {
    const e = refusal(() => parseIpcRequest(channel, OURS, args, PAGE));
    expect(e.code).toBe('GG_ERR_BAD_REQUEST');
    expect(e.message).toMatch(message);
  });
});

describe('answerIpc', () => {
  it('runs a valid call on the host and answers its WorkerView', async () => {
    const target = new FakeTarget(VIEWS.idle);
    target.answer = VIEWS['paused-by-you'];
    expect(await answerIpc(target, { channel: IPC_CHANNELS.control, sender: OURS, args: [{ action: 'pause' }] }, PAGE, silent)).toEqual(VIEWS['paused-by-you']);
    expect(target.calls).toEqual([{ method: 'act', arg: { action: 'pause' } }]);
  });

  it('answers a refusal as an ApiErrorBody and never calls the host', async () => {
    const target = new FakeTarget(VIEWS.idle);
    const answer = await answerIpc(target, { channel: IPC_CHANNELS.control, sender: { url: 'https://example.com/', isMainFrame: true }, args: [{ action: 'pause' }] }, PAGE, silent);
    expect(answer).toEqual({ error: { code: 'GG_ERR_UNAUTHENTICATED', message: expect.stringContaining('https://example.com/') } });
    const bad = await answerIpc(target, { channel: IPC_CHANNELS.settings, sender: OURS, args: [{ startAtLogin: 'yes' }] }, PAGE, silent);
    expect(bad).toEqual({ error: { code: 'GG_ERR_BAD_REQUEST', message: expect.stringMatching(/^startAtLogin: /) } });
    expect(target.calls).toEqual([]);
  });

  it("passes the host's own refusal through, and hides a bug's details", async () => {
    const target = new FakeTarget(VIEWS['not-enrolled']);
    target.refuseNext = new GridError('GG_ERR_TOKEN_EXPIRED', 'token k3x9 expired');
    const form = { coordinator: 'grid:8443', token: 'gg1.a.b.c' };
    expect(await answerIpc(target, { channel: IPC_CHANNELS.enroll, sender: OURS, args: [form] }, PAGE, silent)).toEqual({
      error: { code: 'GG_ERR_TOKEN_EXPIRED', message: 'token k3x9 expired' },
    });
    target.enroll = () => Promise.reject(new TypeError('cannot read properties of undefined'));
    expect(await answerIpc(target, { channel: IPC_CHANNELS.enroll, sender: OURS, args: [form] }, PAGE, silent)).toEqual({
      error: { code: 'GG_ERR_INTERNAL', message: 'internal error; see the worker log' },
    });
  });
});

describe('registerIpc', () => {
  it('installs one handler per channel that reads the sender from the event, and removes them all', async () => {
    const handlers = new Map<string, (event: unknown, ...args: unknown[]) => Promise<unknown>>();
    const ipc = {
      handle: (channel: string, fn: (event: unknown, ...args: unknown[]) => Promise<unknown>) => void handlers.set(channel, fn),
      removeHandler: (channel: string) => void handlers.delete(channel),
    };
    const target = new FakeTarget(VIEWS.idle);
    const unregister = registerIpc(ipc as unknown as Parameters<typeof registerIpc>[0], { target, pageUrl: PAGE, logger: () => silent });
    expect([...handlers.keys()].sort()).toEqual(Object.values(IPC_CHANNELS).sort());

    const mainFrame = { url: PAGE, parent: null };
    expect(await handlers.get(IPC_CHANNELS.status)!({ senderFrame: mainFrame })).toEqual(VIEWS.idle);
    const iframe = { url: PAGE, parent: mainFrame };
    expect(await handlers.get(IPC_CHANNELS.control)!({ senderFrame: iframe }, { action: 'pause' })).toMatchObject({ error: { code: 'GG_ERR_UNAUTHENTICATED' } });
    expect(await handlers.get(IPC_CHANNELS.control)!({ senderFrame: null }, { action: 'pause' })).toMatchObject({ error: { code: 'GG_ERR_UNAUTHENTICATED' } });
    expect(target.calls).toEqual([]);

    unregister();
    expect(handlers.size).toBe(0);
  });
});
