import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { WorkerView } from '../../src/protocol/index.js';
import { startControlServer, type ControlServer } from '../../src/worker/control/server.js';
import { snoozeAction } from '../../src/cli/worker-commands.js';
import { runCli } from '../helpers/grid.js';
import { MemoryTarget } from '../worker/control/memory-target.js';

describe('snooze arguments', () => {
  const now = new Date(2026, 2, 10, 14, 0, 0).getTime();
  const at = (h: number, m: number, dayOffset = 0) => new Date(2026, 2, 10 + dayOffset, h, m, 0, 0).getTime();

  it.each<[string[], object]>([
    [[], { action: 'snooze', minutes: 60 }],
    [['30m'], { action: 'snooze', minutes: 30 }],
    [['1h'], { action: 'snooze', minutes: 60 }],
    [['7d'], { action: 'snooze', minutes: 7 * 24 * 60 }],
    [['90s'], { action: 'snooze', untilMs: now + 90_000 }],
    [['until', '15:20'], { action: 'snooze', untilMs: at(15, 20) }],
    [['until', '14:00'], { action: 'snooze', untilMs: at(14, 0, 1) }],
    [['until', '09:30'], { action: 'snooze', untilMs: at(9, 30, 1) }],
    [['until', '2026-03-11T08:00:00Z'], { action: 'snooze', untilMs: Date.parse('2026-03-11T08:00:00Z') }],
    [['2026-03-11T08:00:00Z'], { action: 'snooze', untilMs: Date.parse('2026-03-11T08:00:00Z') }],
  ])('%j', (words, action) => {
    expect(snoozeAction(words, now)).toEqual(action);
  });

  it.each<[string[], RegExp]>([
    [['soon'], /"soon" is not a duration/],
    [['0m'], /not a duration/],
    [['8d'], /at most 7 days/],
    [['until', '25:00'], /not a time of day/],
    [['until', '30m'], /neither a duration/],
    [['until', '2020-01-01T00:00:00Z'], /has passed/],
    [['until', '2026-99-99'], /not a date and time/],
    [['1h', '30m'], /neither a duration/],
  ])('refuses %j', (words, message) => {
    expect(() => snoozeAction(words, now)).toThrow(message);
  });
});

describe('gogrid worker pause|resume|snooze|finish|status', () => {
  let dir: string;
  let target: MemoryTarget;
  let server: ControlServer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gogrid-cli-worker-'));
    target = new MemoryTarget();
    server = await startControlServer({ target, dataDir: join(dir, 'data dir'), logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('pauses the worker of --data and says how to resume', async () => {
    const cli = runCli(['worker', 'pause', '--data', join(dir, 'data dir')]);
    expect(await cli.exited).toBe(0);
    expect(cli.stdout()).toBe(`Paused. Resume with: gogrid worker resume --data '${join(dir, 'data dir')}'\n`);
    expect(target.view().policy.control).toEqual({ state: 'paused' });
  });

  it('snoozes until a time and prints the view as JSON; --data may come before the command', async () => {
    const until = new Date(Math.ceil(Date.now() / 1000) * 1000 + 2 * 86_400_000).toISOString();
    const cli = runCli(['worker', '--data', join(dir, 'data dir'), 'snooze', 'until', until, '--json']);
    expect(await cli.exited).toBe(0);
    expect(WorkerView.parse(JSON.parse(cli.stdout())).policy.control).toEqual({ state: 'snoozed', untilMs: Date.parse(until) });
    expect(target.calls.at(-1)).toEqual({ method: 'act', arg: { action: 'snooze', untilMs: Date.parse(until) } });
  });

  it("prints the status in a sentence with the policy's reason", async () => {
    const cli = runCli(['worker', 'status', '--data', join(dir, 'data dir')]);
    expect(await cli.exited).toBe(0);
    expect(cli.stdout()).toBe(`test box (w-test): online. ${target.view().policy.reason}.\n`);
  });

  it('fails in one line when no worker runs with that data dir, or the words are wrong', async () => {
    const none = runCli(['worker', 'resume', '--data', join(dir, 'nothing here')]);
    const bad = runCli(['worker', 'snooze', 'whenever', '--data', join(dir, 'data dir')]);
    expect(await none.exited).toBe(1);
    expect(none.stderr()).toBe(`gogrid: GG_ERR_WORKER_NOT_RUNNING: no worker is running with data dir ${join(dir, 'nothing here')}\n`);
    expect(await bad.exited).toBe(1);
    expect(bad.stderr()).toMatch(/^gogrid: GG_ERR_BAD_REQUEST: snooze: "whenever" is not a duration/);
  });

  it('keeps `gogrid worker --help` about running a worker, with the commands listed', async () => {
    const cli = runCli(['worker', '--help']);
    expect(await cli.exited).toBe(0);
    expect(cli.stdout()).toMatch(/--coordinator <host:port>/);
    expect(cli.stdout()).toMatch(/^ {2}snooze \[options\] \[when\.\.\.\]/m);
    expect(cli.stdout()).toMatch(/Without a command it runs the worker/);
  });
});
