/**
 * The `gogrid` command as people run it: real processes, killed for real.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobList, WorkerList, TokenList } from '../../src/protocol/api.js';
import { writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { openDb } from '../../src/coordinator/store/index.js';
import { controlClient } from '../../src/worker/control/index.js';
import { FAST, removeTempDirs, runCli, sessionEvent, startTestCoordinator, startTestWorker, tempDir, type CliProcess, type TestCoordinator } from '../helpers/grid.js';
import { within } from '../helpers/within.js';
import { buildProgram } from '../../src/cli/program.js';
import type { Command } from 'commander';

let c: TestCoordinator;
const children: CliProcess[] = [];
function cli(args: string[], env?: Record<string, string>): CliProcess {
  const p = runCli(args, env);
  children.push(p);
  return p;
}

beforeAll(async () => {
  c = await startTestCoordinator();
});
afterAll(async () => {
  for (const p of children) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all(children.map((p) => p.exited));
  await c.stop();
  await removeTempDirs();
});

function nextOnline(): Promise<string> {
  return within(20_000, 'a worker online', new Promise((resolve) => c.parts.sessions.once('online', resolve)));
}

describe('gogrid worker', () => {
  it('is marked offline within heartbeat_timeout_secs after kill -9', async () => {
    const online = nextOnline();
    const w = cli(['worker', '--coordinator', `127.0.0.1:${c.port}`, '--token', await c.createToken(), '--data', await tempDir(), '--log-format', 'json']);
    const id = await online;
    const offline = sessionEvent(c, 'offline', id);
    const killedAt = Date.now();
    w.child.kill('SIGKILL');
    await offline;
    // Detection is the QUIC idle timeout or the heartbeat sweep (every timeout/4),
    // plus scheduling delay on a busy machine: the bound separates "by the
    // configured timeout" from "by a default of 90 s" or "never".
    expect(Date.now() - killedAt).toBeLessThan(FAST.heartbeatTimeoutSecs * 1000 * 2 + 1000);
    const info = WorkerList.parse(await c.api('GET', '/v1/workers')).find((x) => x.id === id);
    expect(info?.state).toBe('offline');
  });

  it('shuts down cleanly on SIGTERM, and the coordinator sees it leave at once', async () => {
    const online = nextOnline();
    const w = cli(['worker', '--coordinator', `127.0.0.1:${c.port}`, '--token', await c.createToken(), '--data', await tempDir(), '--log-format', 'json']);
    const id = await online;
    const offline = sessionEvent(c, 'offline', id);
    const stoppedAt = Date.now();
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
    await offline;
    expect(Date.now() - stoppedAt).toBeLessThan(FAST.heartbeatTimeoutSecs * 1000);
    // Its log says where the status window is, never the token that controls the worker.
    expect(w.stderr()).toMatch(/status window: http:\/\/127\.0\.0\.1:\d+\/? \(its token is in /);
    expect(w.stderr()).not.toMatch(/token=/);
  });

  it('keeps running when its owner gives it a new coordinator address from the status window', async () => {
    const dataDir = await tempDir();
    const online = nextOnline();
    const w = cli(['worker', '--coordinator', `127.0.0.1:${c.port}`, '--token', await c.createToken(), '--data', dataDir, '--log-format', 'json']);
    const id = await online;
    await w.waitFor(/status window/);
    const again = sessionEvent(c, 'online', id);
    await (await controlClient(dataDir)).updateSettings({ coordinator: `localhost:${c.port}` });
    await again;
    expect(w.child.exitCode).toBeNull();
    w.child.kill('SIGTERM');
    expect(await w.exited).toBe(0);
  });

  it('waits for a coordinator that is not up yet to enroll, and stops cleanly while it waits', async () => {
    // A coordinator with a persistent store, stopped after making a token: the worker starts before it is back.
    const dir = await tempDir();
    const first = await startTestCoordinator({ dataDir: dir, databaseUrl: `pglite://${join(dir, 'db')}` });
    const token = await first.createToken({ maxUses: 2 });
    const port = first.port;
    await first.stop();

    const impatient = cli(['worker', '--coordinator', `127.0.0.1:${port}`, '--token', token, '--data', await tempDir(), '--log-format', 'json']);
    await impatient.waitFor(/could not enroll yet/);
    impatient.child.kill('SIGTERM');
    expect(await impatient.exited).toBe(0);

    const w = cli(['worker', '--coordinator', `127.0.0.1:${port}`, '--token', token, '--data', await tempDir(), '--log-format', 'json']);
    await w.waitFor(/could not enroll yet/);
    const again = await startTestCoordinator({ dataDir: dir, databaseUrl: `pglite://${join(dir, 'db')}`, port });
    try {
      await new Promise((resolve) => again.parts.sessions.once('online', resolve));
      w.child.kill('SIGTERM');
      expect(await w.exited).toBe(0);
    } finally {
      await again.stop();
    }
  }, 90_000);

  it('exits non-zero with the reason for a used-up token, without retrying', async () => {
    const token = await c.createToken({ maxUses: 1 });
    const first = cli(['worker', '--coordinator', `127.0.0.1:${c.port}`, '--token', token, '--data', await tempDir(), '--log-format', 'json']);
    await first.waitFor(/"msg":"worker started"/);
    const second = cli(['worker', '--coordinator', `127.0.0.1:${c.port}`, '--token', token, '--data', await tempDir(), '--log-format', 'json']);
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toMatch(/^gogrid: GG_ERR_TOKEN_USED_UP: /m);
    first.child.kill('SIGTERM');
    await first.exited;
  });

  it('says in one line how to enroll when it has no identity and no token', async () => {
    const dir = await tempDir();
    // No provisioning file either: the real per-OS paths are not this test's business.
    const w = cli(['worker', '--data', dir, '--log-format', 'json'], { GOGRID_PROVISIONING_FILE: join(dir, 'none.toml') });
    expect(await w.exited).toBe(1);
    expect(w.stderr().trim().split('\n')).toHaveLength(1);
    expect(w.stderr()).toMatch(/GG_ERR_NOT_ENROLLED: .*gogrid worker --coordinator HOST:PORT --token TOKEN/);
  });

  it('stops with GG_ERR_WORKER_REVOKED when revoked, says how to enroll again, and does so with --re-enroll only', { timeout: 60_000 }, async () => {
    const dataDir = await tempDir();
    const tokenFile = join(await tempDir(), 'token.txt');
    await writeFile(tokenFile, `${await c.createToken()}\n`);
    const online = nextOnline();
    const w = cli(['worker', '--coordinator', `127.0.0.1:${c.port}`, '--token-file', tokenFile, '--data', dataDir, '--log-format', 'json']);
    const id = await online;
    const revoke = cli(['workers', 'revoke', id, '--data', c.dataDir]);
    expect(await revoke.exited).toBe(0);
    expect(revoke.stdout()).toBe(`worker ${id} revoked\n`);
    expect(await w.exited).toBe(1);
    expect(w.stderr()).toMatch(/^gogrid: GG_ERR_WORKER_REVOKED: .*; to enroll this machine again: gogrid worker --token-file FILE --re-enroll/m);

    // A new token without --re-enroll is not used: the revoked identity is what the data dir holds, and it is said so.
    const token = await c.createToken();
    const unused = cli(['worker', '--data', dataDir, '--log-format', 'json'], { GOGRID_TOKEN: token });
    expect(await unused.exited).toBe(1);
    expect(unused.stderr()).toMatch(new RegExp(`already enrolled with that coordinator as ${id}; the token was not used .*add --re-enroll`));

    const again = nextOnline();
    const renewed = cli(['worker', '--re-enroll', '--data', dataDir, '--log-format', 'json'], { GOGRID_TOKEN: token });
    const newId = await again;
    expect(newId).not.toBe(id);
    renewed.child.kill('SIGTERM');
    expect(await renewed.exited).toBe(0);
  });

  it('refuses a token given twice, and a token file it cannot read, in one line', async () => {
    const both = cli(['worker', '--token', 'gg1.x', '--token-file', '/nonexistent', '--data', await tempDir()]);
    expect(await both.exited).toBe(1);
    expect(both.stderr()).toBe('gogrid: GG_ERR_CONFIG_INVALID: give the token once: --token or --token-file, not both\n');
    const missing = cli(['worker', '--token-file', '/nonexistent/token.txt', '--data', await tempDir()]);
    expect(await missing.exited).toBe(1);
    expect(missing.stderr()).toBe('gogrid: GG_ERR_CONFIG_INVALID: --token-file /nonexistent/token.txt: cannot read it (ENOENT)\n');
  });
});

describe('gogrid coordinator', () => {
  it('rejects a bad coordinator.toml naming the file and every bad key', async () => {
    const dir = await tempDir();
    const file = join(dir, 'coordinator.toml');
    await writeFile(file, '[server]\nport = 70000\nheartbeat_interval_sec = 30\n');
    const p = cli(['coordinator', '--config', file, '--data', dir, '--log-format', 'json']);
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toContain(`${file}: server.port`);
    expect(p.stderr()).toContain(`${file}: server.heartbeat_interval_sec: unknown key`);
  });

  it('refuses an embedded database another process has open, naming that process', async () => {
    const dbDir = join(await tempDir(), 'db');
    const held = await openDb(`pglite://${dbDir}`);
    try {
      const second = cli(['coordinator', '--data', await tempDir(), '--database', `pglite://${dbDir}`, '--bind', '127.0.0.1', '--port', '0']);
      expect(await second.exited).toBe(1);
      expect(second.stderr()).toContain(`gogrid: GG_ERR_CONFIG_INVALID: another coordinator (pid ${process.pid}) is using the data dir ${dbDir}`);
    } finally {
      await held.close();
    }
  });

  it('keeps its workers across a crash and restart: the worker notices in seconds and reconnects with the same id, no new enrollment', async () => {
    const dataDir = await tempDir();
    const logBase = join(dataDir, 'logs', 'coordinator');
    // A 9 s heartbeat timeout is the QUIC idle timeout, which a worker waited out after a kill -9 before
    // heartbeats were answered; an unanswered one now tells it within a third of that.
    const slowFlags = ['--heartbeat-interval', '0.5', '--heartbeat-timeout', '9'];
    const first = cli(['coordinator', '--data', dataDir, '--bind', '127.0.0.1', '--port', '0', ...slowFlags, '--log-format', 'json', '--log-file', logBase]);
    await first.waitFor(/listening on 127\.0\.0\.1:\d+/);
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(first.stdout())![1]);
    expect(first.stdout()).toMatch(/admin API key: +ggk_/);

    // `token create` prints the token alone on stdout.
    const tokenCmd = cli(['token', 'create', '--data', dataDir, '--uses', '3']);
    expect(await tokenCmd.exited).toBe(0);
    expect(tokenCmd.stdout()).toMatch(/^gg1\.[a-z0-9]{8}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}\n$/);

    const w = await startTestWorker({ port }, { token: tokenCmd.stdout().trim(), maxIdleTimeoutMs: 60_000 });
    await w.agent.waitFor('online');
    await listed(dataDir, w.identity.workerId, 'online');

    first.child.kill('SIGKILL');
    await first.exited;
    const killedAt = Date.now();
    await w.agent.waitFor('waiting');
    expect(Date.now() - killedAt).toBeLessThan(6000);
    // Its log file has every line up to the kill (written synchronously), the worker's arrival among them.
    const logged = (await readFile(`${logBase}.1.log`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; workerId?: string });
    expect(logged.find((l) => l.msg === 'worker online')?.workerId).toBe(w.identity.workerId);

    const second = cli(['coordinator', '--data', dataDir, '--bind', '127.0.0.1', '--port', String(port), ...slowFlags, '--log-format', 'json']);
    await second.waitFor(/listening on/);
    expect(second.stdout()).not.toMatch(/admin API key/);
    await w.agent.waitFor('online');
    await listed(dataDir, w.identity.workerId, 'online');

    const tokens = cli(['token', 'list', '--data', dataDir, '--json']);
    expect(await tokens.exited).toBe(0);
    expect(TokenList.parse(JSON.parse(tokens.stdout()))[0]?.uses).toBe(1);
    await w.agent.stop();
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    // Two coordinator processes started one after the other (tsx, PGlite), and five CLI runs: over 20 s alone on two cores.
  }, 90_000);
});

describe('gogrid jobs', () => {
  it('writes all of a long --json listing into a pipe, not only the first 64 KiB', async () => {
    const sha256 = await c.addModel(writeOnnxFixtures(await tempDir()).mlp);
    // A kind no worker runs: the jobs stay queued, and stay out of the other tests' way.
    const jobs = Array.from({ length: 150 }, () => ({ kind: 'nobody-runs-this', model: { sha256 }, input: {} }));
    await c.api('POST', '/v1/jobs', { jobs });
    // Through a real pipe to a slow reader, as `gogrid jobs --json | jq` on a busy machine: the
    // reader starts after the CLI has had time to write everything (and, before the fix, to exit).
    const listing = runCli(['jobs', '--json', '--limit', '300', '--data', c.dataDir], {}, { pipeInto: '{ sleep 1; cat; }' });
    children.push(listing);
    expect(await listing.exited).toBe(0);
    expect(listing.stdout().length).toBeGreaterThan(64 * 1024);
    expect(JobList.parse(JSON.parse(listing.stdout())).filter((j) => j.kind === 'nobody-runs-this')).toHaveLength(150);
  });
});

describe('gogrid local', () => {
  it('starts a coordinator and a worker with zero configuration, runs a sample job, and admin commands find them', async () => {
    const dir = await tempDir();
    const local = cli(['local', '--data', dir, '--log-format', 'json']);
    await local.waitFor(/Press Ctrl\+C to stop/);
    expect(local.stdout()).toMatch(/worker: +w-[a-z0-9]+ .*online/);
    // Its sample job went through the whole loop; y's first value is the MLP on [1, 2, 3, 4].
    expect(local.stdout()).toMatch(/Sample job j-[0-9a-f]+: .* ran on w-/);
    expect(local.stdout()).toMatch(/y = \[11\.397500\d*,/);
    const workers = cli(['workers', '--data', join(dir, 'coordinator'), '--json']);
    expect(await workers.exited).toBe(0);
    expect(WorkerList.parse(JSON.parse(workers.stdout())).map((x) => x.state)).toEqual(['online']);
    local.child.kill('SIGINT');
    expect(await local.exited).toBe(0);
  });
});

describe('gogrid --help', () => {
  // All at once: each run is mostly tsx starting up (~2 s), and seven in a row were 14 s of the suite.
  it('documents every command', async () => {
    // One real process for what --help does (print, exit 0); every command's text in this one, as a process each took 15 s.
    const p = cli(['--help']);
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toMatch(/^Usage: gogrid/);
    const walk = (cmd: Command, path: string[]): [string, Command][] => [[path.join(' '), cmd], ...cmd.commands.flatMap((sub) => walk(sub, [...path, sub.name()]))];
    const all = walk(buildProgram(), []);
    expect(all.map(([path]) => path)).toEqual(expect.arrayContaining(['coordinator', 'worker', 'local', 'token create', 'workers', 'workers revoke', 'keys create']));
    for (const [path, cmd] of all) {
      expect(cmd.helpInformation(), path).toMatch(new RegExp(`^Usage: gogrid${path ? ` ${path}` : ''}`));
      expect(cmd.description(), `${path} has a description`).not.toBe('');
    }
  });
});

/** `gogrid workers --json` shows the worker in `state`. */
async function listed(dataDir: string, id: string, state: string): Promise<void> {
  const p = cli(['workers', '--data', dataDir, '--json']);
  expect(await p.exited).toBe(0);
  expect(WorkerList.parse(JSON.parse(p.stdout())).find((x) => x.id === id)?.state).toBe(state);
}
