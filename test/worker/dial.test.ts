/**
 * The transport choice (worker/dial.ts): the plan as a pure function of the
 * mode and what worked before, exhaustively; the race against dial functions
 * whose timing the test controls; what is remembered, in a real data dir.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GridError } from '../../src/protocol/errors.js';
import type { ControlConnection, TransportKind } from '../../src/transport/frame-channel.js';
import { dialPlan, dialRace, networkKey, TRANSPORT_MODES, TransportMemory } from '../../src/worker/dial.js';

describe('dialPlan', () => {
  it.each(TRANSPORT_MODES.flatMap((mode) => ([null, 'quic', 'tcp'] as const).map((remembered) => [mode, remembered] as const)))('%s, having last connected over %s', (mode, remembered) => {
    const plan = dialPlan(mode, remembered, 1500);
    const expected = {
      quic: { first: 'quic', second: null },
      tcp: { first: 'tcp', second: null },
      auto: remembered === 'tcp' ? { first: 'tcp', second: 'quic' } : { first: 'quic', second: 'tcp' },
    }[mode];
    expect(plan).toEqual({ ...expected, headStartMs: 1500 });
  });
});

/** A dial whose attempts the test settles by hand, in any order. */
function scripted() {
  const pending = new Map<TransportKind, { resolve: (c: ControlConnection) => void; reject: (e: unknown) => void }>();
  const started: TransportKind[] = [];
  const closed: TransportKind[] = [];
  const conn = (transport: TransportKind): ControlConnection => ({
    transport,
    channel: { send: async () => {}, frames: async function* () {}, close: async () => {} },
    close: async () => void closed.push(transport),
    closed: new Promise(() => {}),
  });
  return {
    started,
    closed,
    dial: (kind: TransportKind) =>
      new Promise<ControlConnection>((resolve, reject) => {
        started.push(kind);
        pending.set(kind, { resolve, reject });
      }),
    connect: (kind: TransportKind) => pending.get(kind)!.resolve(conn(kind)),
    fail: (kind: TransportKind, e: unknown) => pending.get(kind)!.reject(e),
  };
}

const unreachable = (what: string) => new GridError('GG_ERR_COORDINATOR_UNREACHABLE', what);
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('dialRace', () => {
  it('keeps QUIC when it connects within its head start; TCP is never tried', async () => {
    const s = scripted();
    const won = dialRace({ first: 'quic', second: 'tcp', headStartMs: 60_000 }, s.dial);
    s.connect('quic');
    expect((await won).transport).toBe('quic');
    expect(s.started).toEqual(['quic']);
  });

  it('races TCP once the head start passes, keeps whichever connects first, and closes the other when it connects later', async () => {
    const s = scripted();
    const won = dialRace({ first: 'quic', second: 'tcp', headStartMs: 20 }, s.dial);
    await expect.poll(() => s.started).toEqual(['quic', 'tcp']);
    s.connect('tcp');
    expect((await won).transport).toBe('tcp');
    s.connect('quic');
    await expect.poll(() => s.closed).toEqual(['quic']);
  });

  it('starts TCP at once when QUIC fails before its head start is over', async () => {
    const s = scripted();
    const won = dialRace({ first: 'quic', second: 'tcp', headStartMs: 60_000 }, s.dial);
    s.fail('quic', unreachable('no UDP'));
    await tick();
    expect(s.started).toEqual(['quic', 'tcp']);
    s.connect('tcp');
    expect((await won).transport).toBe('tcp');
  });

  it('fails with both reasons when both fail, whichever fails last', async () => {
    for (const last of ['quic', 'tcp'] as const) {
      const s = scripted();
      const won = dialRace({ first: 'quic', second: 'tcp', headStartMs: 10 }, s.dial);
      await expect.poll(() => s.started.length).toBe(2);
      const first = last === 'quic' ? 'tcp' : 'quic';
      s.fail(first, unreachable(`${first} down`));
      await tick();
      s.fail(last, unreachable(`${last} down`));
      const label = (k: TransportKind) => `${k.toUpperCase()}: ${k} down`;
      await expect(won).rejects.toMatchObject({ code: 'GG_ERR_COORDINATOR_UNREACHABLE', message: `${label(first)}; ${label(last)}` });
    }
  });

  it('fails with what a retry cannot mend when either attempt says it (a refused certificate), not with "unreachable"', async () => {
    const s = scripted();
    const won = dialRace({ first: 'quic', second: 'tcp', headStartMs: 60_000 }, s.dial);
    s.fail('quic', unreachable('no UDP'));
    await tick();
    s.fail('tcp', new GridError('GG_ERR_UNAUTHENTICATED', 'the certificate of the coordinator does not verify'));
    await expect(won).rejects.toMatchObject({ code: 'GG_ERR_UNAUTHENTICATED' });
  });

  it('one transport alone fails with its own error', async () => {
    const s = scripted();
    const won = dialRace({ first: 'tcp', second: null, headStartMs: 1 }, s.dial);
    s.fail('tcp', unreachable('refused'));
    await expect(won).rejects.toThrow(/^refused$/);
    expect(s.started).toEqual(['tcp']);
  });
});

describe('what worked, remembered per coordinator and network', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('is kept across restarts in the data dir, private; a broken or hostile file is a fresh start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gogrid-dial-'));
    dirs.push(dir);
    const memory = await TransportMemory.load(dir);
    expect(memory.get('grid:8443|office')).toBeNull();
    await memory.set('grid:8443|office', 'tcp');
    await memory.set('grid:8443|home', 'quic');
    const again = await TransportMemory.load(dir);
    expect([again.get('grid:8443|office'), again.get('grid:8443|home'), again.get('__proto__'), again.get('constructor')]).toEqual(['tcp', 'quic', null, null]);
    expect(JSON.parse(await readFile(join(dir, 'transport.json'), 'utf8'))).toHaveProperty(['grid:8443|office', 'transport'], 'tcp');
    for (const junk of ['not json', '{"k": {"transport": "carrier pigeon", "at": "x"}}', '[]', '{"__proto__": {"transport": "tcp", "at": "x"}}']) {
      await writeFile(join(dir, 'transport.json'), junk);
      const fresh = await TransportMemory.load(dir);
      expect(fresh.get('k')).toBeNull();
      expect(fresh.get('__proto__')).toBeNull();
    }
  });

  it('forgets the oldest networks past 32', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gogrid-dial-'));
    dirs.push(dir);
    const memory = await TransportMemory.load(dir);
    for (let i = 0; i < 40; i++) await memory.set(`c|net-${i}`, 'tcp');
    const kept = Object.keys(JSON.parse(await readFile(join(dir, 'transport.json'), 'utf8')) as object);
    expect(kept).toHaveLength(32);
    expect(kept).toContain('c|net-39');
  });

  it('tells networks apart by this machine\'s addresses, not by loopback or link-local ones', () => {
    const office = { eth0: [{ address: '10.1.2.3', cidr: '10.1.2.3/24', internal: false }], lo: [{ address: '127.0.0.1', cidr: '127.0.0.1/8', internal: true }] };
    const home = { eth0: [{ address: '192.168.1.20', cidr: '192.168.1.20/24', internal: false }] };
    const officeWithLinkLocal = { ...office, eth1: [{ address: 'fe80::1', cidr: 'fe80::1/64', internal: false }] };
    const key = (x: object) => networkKey(x as Parameters<typeof networkKey>[0]);
    expect(key(office)).not.toBe(key(home));
    expect(key(office)).toBe(key(officeWithLinkLocal));
    expect(key(office)).toMatch(/^[0-9a-f]{16}$/);
  });
});
