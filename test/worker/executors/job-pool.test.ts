/**
 * The pool's own settings on real job processes (test-only executors): how
 * many idle processes it keeps, when they exit (idle timeout, recycling after
 * N jobs, close), and that an idle one never holds its worker open.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { JobProcessPool, type JobProcessInfo, type JobProcessPoolOptions, type RunJobOptions } from '../../../src/worker/executors/index.js';
import type { JobExit } from '../../../src/worker/executors/index.js';
import { isAlive, makeJob, rejection, useTestExecutors } from './helpers.js';
import { TEST_EXECUTORS_ENV } from './test-executors.js';
import { within } from '../../helpers/within.js';

type ExitEvent = JobProcessInfo & { exit: JobExit };

const pools: JobProcessPool[] = [];
const spawned: number[] = [];

function newPool(options: JobProcessPoolOptions = {}): JobProcessPool {
  const pool = new JobProcessPool(options);
  pool.on('spawn', ({ pid }) => spawned.push(pid!));
  pools.push(pool);
  return pool;
}

function opts(over: Partial<RunJobOptions> = {}): RunJobOptions {
  return { modelPath: '/models/none', threads: 1, timeoutMs: 30_000, signal: new AbortController().signal, onProgress: () => {}, ...over };
}

async function echo(pool: JobProcessPool): Promise<number> {
  const out = (await pool.run('test-echo', makeJob('test-echo', null), opts())) as { pid: number };
  return out.pid;
}

async function nextExit(pool: JobProcessPool): Promise<ExitEvent> {
  const [event] = (await within(10_000, 'a job process exit', once(pool, 'exit'))) as [ExitEvent];
  return event;
}


describe('JobProcessPool', () => {
  useTestExecutors();
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
    expect(spawned.filter(isAlive)).toEqual([]);
  });

  it('lets an idle process exit after the idle timeout', async () => {
    const pool = newPool({ idleTimeoutMs: 200 });
    const exited = nextExit(pool);
    const pid = await echo(pool);
    const idleSince = performance.now();
    expect(pool.idleCount('test-echo')).toBe(1);
    const { exit, ...info } = await exited;
    expect(performance.now() - idleSince).toBeGreaterThanOrEqual(190);
    expect(info).toEqual({ pid, kind: 'test-echo', jobs: 1 });
    expect(exit).toEqual({ reason: 'done', code: 0, signal: null, detail: 'idle for 200 ms' });
    expect(isAlive(pid)).toBe(false);
    expect(pool.idleCount('test-echo')).toBe(0);
  });

  it('keeps at most maxIdle idle processes per kind; the others exit when their job ends', async () => {
    const pool = newPool({ maxIdle: 1 });
    const exited = nextExit(pool);
    const [a, b] = await Promise.all([echo(pool), echo(pool)]);
    expect(a).not.toBe(b);
    const { pid, exit } = await exited;
    expect([a, b]).toContain(pid);
    expect(exit.detail).toBe('1 idle test-echo process already');
    expect(pool.idleCount('test-echo')).toBe(1);
  });

  it('gives a job the idle process that ran its model last, and says which models its processes hold', async () => {
    const pool = newPool({ maxIdle: 2 });
    const on = async (model: string) => {
      const job = makeJob('test-echo', null, { model: { sha256: model.repeat(64), size: 1, name: model } });
      return ((await pool.run('test-echo', job, opts())) as { pid: number }).pid;
    };
    // Two at once: two processes, one per model.
    const [a, b] = await Promise.all([on('a'), on('b')]);
    expect(a).not.toBe(b);
    expect(pool.loadedModels().sort()).toEqual(['a'.repeat(64), 'b'.repeat(64)]);
    // b's process is the most recently used, or not: either way each model's job finds its own.
    expect(await on('a')).toBe(a);
    expect(await on('b')).toBe(b);
    expect(await on('a')).toBe(a);
    await pool.close();
    expect(pool.loadedModels()).toEqual([]);
  });

  it('forks a process per job with maxIdle 0', async () => {
    const pool = newPool({ maxIdle: 0 });
    const first = await echo(pool);
    expect(await echo(pool)).not.toBe(first);
  });

  it('recycles a process after maxJobsPerProcess jobs, so a leak stays bounded', async () => {
    const pool = newPool({ maxJobsPerProcess: 3 });
    const exited = nextExit(pool);
    const results: { pid: number; rss: number }[] = [];
    for (let i = 0; i < 4; i++) results.push((await pool.run('test-leak', makeJob('test-leak', { mib: 16 }), opts())) as { pid: number; rss: number });
    const [a, b, c, d] = results.map((r) => r.pid);
    expect([b, c]).toEqual([a, a]);
    expect(d).not.toBe(a);
    expect(await exited).toMatchObject({ pid: a, jobs: 3, exit: { reason: 'done', detail: 'recycled after 3 jobs' } });
    // 48 MiB held by the old process, 16 by the new one.
    expect(results[3]!.rss).toBeLessThan(results[2]!.rss - 16 * 2 ** 20);
  });

  it("reuses a process after an executor's GridError, not after a bug (GG_ERR_INTERNAL)", async () => {
    const before = spawned.length;
    const pool = newPool();
    const thrown = (input: unknown) => rejection(pool.run('test-throw', makeJob('test-throw', input), opts()));
    expect((await thrown({ code: 'GG_ERR_INPUT_INVALID', message: 'no' })).code).toBe('GG_ERR_INPUT_INVALID');
    expect((await thrown({ code: 'GG_ERR_MODEL_UNSUPPORTED', message: 'no' })).code).toBe('GG_ERR_MODEL_UNSUPPORTED');
    expect(spawned.length - before).toBe(1);
    const exited = nextExit(pool);
    expect((await thrown({ message: 'a bug' })).code).toBe('GG_ERR_INTERNAL');
    expect(await exited).toMatchObject({ pid: spawned[before], jobs: 3, exit: { reason: 'done', detail: 'not reused after a failure that was not a GridError' } });
    await thrown({ code: 'GG_ERR_INPUT_INVALID', message: 'no' });
    expect(spawned.length - before).toBe(2);
  });

  it('close(): idle processes exit at once, a running job keeps its process until it ends; the pool stays usable', async () => {
    const before = spawned.length;
    const pool = newPool();
    const idlePid = await echo(pool);
    const controller = new AbortController();
    let started!: () => void;
    const hanging = new Promise<void>((resolve) => (started = resolve));
    const running = pool.run('test-hang', makeJob('test-hang', {}), opts({ signal: controller.signal, onProgress: () => started() }));
    await hanging;
    let closed = false;
    const exited = nextExit(pool);
    const closing = pool.close().then(() => (closed = true));
    expect(await exited).toMatchObject({ pid: idlePid, exit: { reason: 'done', detail: 'the pool is closing' } });
    expect(closed).toBe(false);
    controller.abort();
    expect((await rejection(running)).code).toBe('GG_ERR_JOB_CANCELED');
    await closing;
    expect(spawned.slice(before).filter(isAlive)).toEqual([]);
    expect(await echo(pool)).not.toBe(idlePid);
  });

  it('never keeps a script alive: it exits right after its job, and its idle job process with it', async () => {
    const script = [
      `import { makeJob, runJob } from './test/worker/executors/helpers.ts';`,
      `const out = await runJob('test-echo', makeJob('test-echo', null), { modelPath: '/m', threads: 1, timeoutMs: 30000, signal: new AbortController().signal, onProgress() {} });`,
      `console.log(out.pid);`,
    ].join('\n');
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, ...TEST_EXECUTORS_ENV },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    onTestFinished(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
    // Well inside the 60 s idle timeout: nothing of the pool held the event loop.
    expect(performance.now() - t0).toBeLessThan(15_000);
    const pid = Number(stdout.trim());
    expect(pid).toBeGreaterThan(0);
    // A grandchild: its exit cannot be awaited from here, only observed.
    await expect.poll(() => isAlive(pid), { timeout: 5000, interval: 20 }).toBe(false);
  });
});

describe('JobProcessPool, a shared kind (several jobs in one process, as the LLM executor runs)', () => {
  useTestExecutors();
  /** Jobs a test leaves running: canceled after it. */
  const left: { controller: AbortController; ended: Promise<unknown> }[] = [];
  afterEach(async () => {
    for (const { controller } of left) controller.abort();
    await Promise.allSettled(left.splice(0).map((l) => l.ended));
    await Promise.all(pools.splice(0).map((p) => p.close()));
    expect(spawned.filter(isAlive)).toEqual([]);
  });

  const sharedPool = () => newPool({ maxIdle: 2, shared: (kind) => kind === 'test-shared' });
  const onModel = (model: string) => ({ model: { sha256: model.repeat(64), size: 1, name: model } });

  /** A test-shared job started; resolves its pid once it runs, and its end. */
  function start(pool: JobProcessPool, input: object, over: Partial<RunJobOptions> & { model?: string } = {}) {
    let running!: (pid: number) => void;
    const pid = new Promise<number>((resolve) => (running = resolve));
    const onProgress = (_p: number, message?: string) => running(Number(/pid (\d+)/.exec(message ?? '')?.[1]));
    const job = makeJob('test-shared', input, onModel(over.model ?? 'a'));
    const controller = new AbortController();
    const ended = pool.run('test-shared', job, opts({ slots: 2, onProgress, signal: controller.signal, ...over }));
    left.push({ controller, ended });
    return { pid, ended };
  }

  it('runs up to `slots` jobs of one model at once in one process; a third job, or another model, gets a process of its own', async () => {
    const pool = sharedPool();
    const a = start(pool, {});
    const b = start(pool, { ms: 0 });
    expect(await b.pid).toBe(await a.pid);
    expect(await b.ended).toEqual({ pid: await a.pid, slots: 2 });
    // b's slot is free again, while a runs on.
    const c = start(pool, {});
    const d = start(pool, {});
    const other = start(pool, { ms: 0 }, { model: 'b' });
    expect(await c.pid).toBe(await a.pid);
    expect(await d.pid).not.toBe(await a.pid);
    expect(await other.pid).not.toBe(await a.pid);
    expect(await other.pid).not.toBe(await d.pid);
  });

  it('stops a canceled or timed-out job in its process, which goes on with its other job and takes the next', async () => {
    const pool = sharedPool();
    const exits: ExitEvent[] = [];
    pool.on('exit', (e) => exits.push(e));
    const controller = new AbortController();
    const a = start(pool, {}, { signal: controller.signal });
    const b = start(pool, { ms: 300 });
    const pid = await a.pid;
    expect(await b.pid).toBe(pid);
    const t0 = performance.now();
    controller.abort();
    expect((await rejection(a.ended)).code).toBe('GG_ERR_JOB_CANCELED');
    expect(performance.now() - t0).toBeLessThan(500);
    expect(await b.ended).toEqual({ pid, slots: 2 });
    const late = start(pool, {}, { timeoutMs: 100 });
    expect(await late.pid).toBe(pid);
    const timedOut = await rejection(late.ended);
    expect(timedOut.code).toBe('GG_ERR_JOB_TIMEOUT');
    expect(timedOut.message).toContain('timeout of 100 ms');
    expect(((await pool.run('test-shared', makeJob('test-shared', { ms: 0 }, onModel('a')), opts({ slots: 2 }))) as { pid: number }).pid).toBe(pid);
    expect(isAlive(pid)).toBe(true);
    expect(exits).toEqual([]);
  });

  it('kills a process whose job ignores its cancel past the grace; its other job fails as a crash, not as canceled', async () => {
    const pool = sharedPool();
    const controller = new AbortController();
    const stubborn = start(pool, { stubborn: true }, { signal: controller.signal });
    const other = start(pool, {});
    const pid = await stubborn.pid;
    expect(await other.pid).toBe(pid);
    const exited = nextExit(pool);
    controller.abort();
    expect((await rejection(stubborn.ended)).code).toBe('GG_ERR_JOB_CANCELED');
    const crashed = await rejection(other.ended);
    expect(crashed.code).toBe('GG_ERR_EXECUTOR_CRASHED');
    expect(crashed.message).toMatch(/did not stop within 1000 ms/);
    expect(await exited).toMatchObject({ pid, exit: { reason: 'canceled' } });
  });

  it('gives a job on a model no process holds the process idle longest: the models used lately stay loaded', async () => {
    const pool = sharedPool();
    const run = async (model: string) => ((await pool.run('test-shared', makeJob('test-shared', { ms: 0 }, onModel(model)), opts({ slots: 2 }))) as { pid: number }).pid;
    // Two processes, one per model: a on one, b on the other, b used last.
    const a = start(pool, {}, { model: 'a' });
    const aPid = await a.pid;
    const bPid = await run('b');
    left.find((l) => l.ended === a.ended)!.controller.abort();
    await rejection(a.ended);
    // Now a's process was idle last; b's has been idle longer, and gives b up for c.
    expect(await run('c')).toBe(bPid);
    expect(await run('a')).toBe(aPid);
  });

  it('drops its idle processes when asked (the owner needs the memory back), and leaves running ones', async () => {
    const pool = sharedPool();
    const running = start(pool, {}, { model: 'b' });
    const busyPid = await running.pid;
    const idlePid = ((await pool.run('test-shared', makeJob('test-shared', { ms: 0 }, onModel('a')), opts({ slots: 2 }))) as { pid: number }).pid;
    expect(pool.idleCount('test-shared')).toBe(1);
    const exited = nextExit(pool);
    pool.dropIdle('the owner is using the machine');
    expect(await exited).toMatchObject({ pid: idlePid, exit: { reason: 'done', detail: 'the owner is using the machine' } });
    expect(isAlive(busyPid)).toBe(true);
    expect(pool.loadedModels()).toEqual(['b'.repeat(64)]);
  });
});
