/**
 * Silent enrollment end to end on loopback: a provisioning file as an
 * installer would drop it, a headless worker started with no token, a real
 * coordinator. The worker enrolls, comes online, and the token leaves the file.
 */
import { execFileSync } from 'node:child_process';
import { access, chmod, constants, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GridError, TokenInfo, WorkerInfo } from '../../src/protocol/index.js';
import { PROVISIONING_FILE_ENV } from '../../src/worker/provisioning.js';
import { startWorker, type RunningWorker } from '../../src/worker/worker.js';
import { removeTempDirs, runCli, silent, startTestCoordinator, tempDir, type TestCoordinator } from '../helpers/grid.js';

let c: TestCoordinator;
const savedEnv = process.env[PROVISIONING_FILE_ENV];

beforeAll(async () => {
  c = await startTestCoordinator();
});
afterAll(async () => {
  if (savedEnv === undefined) delete process.env[PROVISIONING_FILE_ENV];
  else process.env[PROVISIONING_FILE_ENV] = savedEnv;
  await c.stop();
  await removeTempDirs();
});

/** Writes a provisioning file and points the worker core at it, as GOGRID_PROVISIONING_FILE does. */
async function provision(text: string, dir?: string): Promise<string> {
  const file = join(dir ?? (await tempDir('gogrid-provisioning-')), 'provisioning.toml');
  await writeFile(file, text);
  process.env[PROVISIONING_FILE_ENV] = file;
  return file;
}

function start(dataDir: string, logger = silent): Promise<RunningWorker> {
  // No coordinator and no token: everything comes from the provisioning file.
  return startWorker({ dataDir, appVersion: '0.0.0-test', logger, agent: { maxIdleTimeoutMs: 1500, backoff: { baseMs: 50, capMs: 300 } }, jobs: { threads: 1 } });
}

async function stop(w: RunningWorker): Promise<void> {
  await w.agent.stop();
  await w.closed;
}

/** A logger whose JSON lines the test can read. */
function capturingLogger() {
  const lines: Array<{ msg: string; [k: string]: unknown }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as { msg: string });
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

async function gridError(p: Promise<unknown>): Promise<GridError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GridError);
  return e as GridError;
}

/** As root, modes do not stop writes; the immutable flag does. Returns the undo. */
async function makeReadOnly(dir: string): Promise<() => Promise<void>> {
  const writable = () => access(dir, constants.W_OK).then(() => process.getuid?.() === 0, () => false);
  await chmod(dir, 0o555);
  if (!(await writable())) return () => chmod(dir, 0o755);
  try {
    execFileSync('chattr', ['+i', dir], { stdio: 'pipe' });
  } catch (e) {
    throw new Error(`as root, making ${dir} read-only needs chattr and CAP_LINUX_IMMUTABLE (docker: --cap-add=LINUX_IMMUTABLE), or run the tests as another user`, { cause: e });
  }
  return async () => {
    execFileSync('chattr', ['-i', dir]);
    await chmod(dir, 0o755);
  };
}

describe('silent enrollment from a provisioning file', () => {
  it('enrolls with no token argument, comes online, and removes the token from the file', async () => {
    const token = await c.createToken({ maxUses: 5 });
    const file = await provision(`[worker]\ncoordinator = "127.0.0.1:${c.port}"\ntoken = "${token}"\nname = "lab-pc-12"\npreset = "dedicated"\n`);
    await chmod(file, 0o640);
    const dataDir = await tempDir('gogrid-worker-');
    const w = await start(dataDir);
    try {
      expect(w.enrolled).toBe(true);
      expect(w.provisionedPreset).toBe('dedicated');
      await w.agent.waitFor('online');
      const info = WorkerInfo.parse(await c.api('GET', `/v1/workers/${w.identity.workerId}`));
      expect(info).toMatchObject({ name: 'lab-pc-12', state: 'online' });
    } finally {
      await stop(w);
    }
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain(token);
    expect(text).toContain(`coordinator = "127.0.0.1:${c.port}"`);
    expect(text).toContain('preset = "dedicated"');
    const tokens = TokenInfo.array().parse(await c.api('GET', '/v1/tokens'));
    expect(tokens.find((t) => token.includes(`.${t.id}.`))?.uses).toBe(1);

    // The next start uses the stored identity; the file without a token is fine.
    const again = await start(dataDir);
    try {
      expect(again.enrolled).toBe(false);
      expect(again.identity.workerId).toBe(w.identity.workerId);
      await again.agent.waitFor('online');
    } finally {
      await stop(again);
    }

    // A new machine given the spent file says which file lacks a token.
    const e = await gridError(start(await tempDir('gogrid-worker-')));
    expect(e.code).toBe('GG_ERR_NOT_ENROLLED');
    expect(e.message).toContain(`${file} has no token`);
  });

  it('enrolls from a file it may not rewrite, keeps the token there, and says so in the log', async () => {
    const token = await c.createToken({ maxUses: 1 });
    const dir = await tempDir('gogrid-provisioning-');
    const file = await provision(`[worker]\ncoordinator = "127.0.0.1:${c.port}"\ntoken = "${token}"\n`, dir);
    const undo = await makeReadOnly(dir);
    const { logger, lines } = capturingLogger();
    try {
      const w = await start(await tempDir('gogrid-worker-'), logger);
      try {
        expect(w.enrolled).toBe(true);
        await w.agent.waitFor('online');
      } finally {
        await stop(w);
      }
    } finally {
      await undo();
    }
    expect(await readFile(file, 'utf8')).toContain(token);
    const warning = lines.find((l) => l.msg.startsWith('could not remove the enrollment token'));
    expect(warning).toMatchObject({ provisioning: file });
    expect(String(warning?.reason)).toMatch(/EACCES|EPERM/);
  });

  it('names the file and the key of a bad file, and ignores a bad file once enrolled', async () => {
    const file = await provision(`[worker]\ncoordinator = "127.0.0.1:${c.port}"\ntoken = "gg1.not-a-token"\n`);
    const fresh = await gridError(start(await tempDir('gogrid-worker-')));
    expect(fresh.code).toBe('GG_ERR_CONFIG_INVALID');
    expect(fresh.message).toContain(`${file}: worker.token: enrollment token is malformed`);

    const token = await c.createToken();
    await provision(`[worker]\ncoordinator = "127.0.0.1:${c.port}"\ntoken = "${token}"\n`);
    const dataDir = await tempDir('gogrid-worker-');
    await stop(await start(dataDir));
    await provision('[worker]\ncoordinatr = "typo"\n');
    const { logger, lines } = capturingLogger();
    const w = await start(dataDir, logger);
    try {
      expect(w.enrolled).toBe(false);
      expect(lines.some((l) => l.msg.startsWith('ignoring the provisioning file'))).toBe(true);
    } finally {
      await stop(w);
    }
  });

  it('names the file when its token is refused by the coordinator', async () => {
    const token = await c.createToken({ maxUses: 1 });
    await stop(await startWorker({ dataDir: await tempDir('gogrid-worker-'), coordinator: `127.0.0.1:${c.port}`, token, appVersion: '0', logger: silent }));
    const file = await provision(`[worker]\ncoordinator = "127.0.0.1:${c.port}"\ntoken = "${token}"\n`);
    const e = await gridError(start(await tempDir('gogrid-worker-')));
    expect(e.code).toBe('GG_ERR_TOKEN_USED_UP');
    expect(e.message).toContain(`enrolling with ${file}: `);
  });

  it('works through the `gogrid worker` CLI with no flags but the data dir', async () => {
    const token = await c.createToken();
    const file = join(await tempDir('gogrid-provisioning-'), 'provisioning.toml');
    await writeFile(file, `[worker]\ncoordinator = "127.0.0.1:${c.port}"\ntoken = "${token}"\n`);
    const w = runCli(['worker', '--data', await tempDir('gogrid-worker-'), '--log-format', 'json'], { [PROVISIONING_FILE_ENV]: file });
    try {
      await w.waitFor(/"msg":"removed the used enrollment token from the provisioning file"/);
      expect(w.stdout() + w.stderr()).toMatch(/"msg":"enrolled"/);
      expect(await readFile(file, 'utf8')).not.toContain(token);
    } finally {
      w.child.kill('SIGTERM');
      await w.exited;
    }
  });
});
