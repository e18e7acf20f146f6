/**
 * The job process, with the test-only executors (test-executors.ts) that
 * crash, hang, throw and break the IPC contract on purpose. Warm reuse is
 * checked here through the tests' shared pool (runJob); the pool's own
 * settings (idle timeout, recycling, close) in job-pool.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../../src/protocol/errors.js';
import type { RunJobOptions } from '../../../src/worker/executors/index.js';
import { JobChild } from '../../../src/worker/executors/job-child.js';
import { closeJobProcesses, isAlive, makeJob, pidRecorder, rejection, runJob, useTestExecutors } from './helpers.js';

const log = pidRecorder();

function opts(over: Partial<RunJobOptions> = {}): RunJobOptions {
  return { modelPath: '/models/none', threads: 1, timeoutMs: 30_000, signal: new AbortController().signal, onProgress: () => {}, logger: log, ...over };
}


describe('runJob in a job process', () => {
  useTestExecutors();
  afterEach(async () => {
    // No job process outlives closeJobProcesses, whatever happened to it.
    await closeJobProcesses();
    expect(log.pids.filter(isAlive)).toEqual([]);
  });

  it('runs a job and reports its progress and result', async () => {
    const progress: [number, string | undefined][] = [];
    const job = makeJob('test-echo', { hello: ['world', 1] });
    const out = await runJob('test-echo', job, opts({ threads: 3, onProgress: (p, m) => progress.push([p, m]) }));
    expect(out).toMatchObject({ echo: { hello: ['world', 1] }, threads: 3, modelPath: '/models/none' });
    expect(progress).toEqual([[0.5, 'halfway']]);
    expect((out as { pid: number }).pid).not.toBe(process.pid);
  });

  it('runs the next job of a kind on the same warm process', async () => {
    const first = (await runJob('test-echo', makeJob('test-echo', 0), opts())) as { pid: number };
    const pids = new Set<number>();
    for (let i = 1; i <= 50; i++) pids.add(((await runJob('test-echo', makeJob('test-echo', i), opts())) as { pid: number }).pid);
    expect([...pids]).toEqual([first.pid]);
    expect(isAlive(first.pid)).toBe(true);
  });

  it.each<[string, ErrorCode | undefined, ErrorCode]>([
    ['a GridError keeps its code and message', 'GG_ERR_MODEL_UNSUPPORTED', 'GG_ERR_MODEL_UNSUPPORTED'],
    ['a plain Error (a bug) arrives as GG_ERR_INTERNAL', undefined, 'GG_ERR_INTERNAL'],
  ])('%s', async (_name, code, want) => {
    const e = await rejection(runJob('test-throw', makeJob('test-throw', { code, message: 'the model has 3 heads' }), opts()));
    expect(e.code).toBe(want);
    expect(e.message).toBe(code ? 'the model has 3 heads' : 'test-throw executor failed: the model has 3 heads');
  });

  it('refuses a kind with no executor', async () => {
    const e = await rejection(runJob('no-such-kind', makeJob('no-such-kind', {}), opts()));
    expect(e.code).toBe('GG_ERR_EXECUTOR_UNAVAILABLE');
    expect(e.message).toContain('"no-such-kind"');
  });

  it.each([
    ['process.exit(3)', 'exit', /exited with code 3 without a result/],
    ['process.abort()', 'abort', /was killed by SIGABRT without a result; last output: .*stack trace/s],
  ])('reports a job process that ends by %s as GG_ERR_EXECUTOR_CRASHED; the next job gets a new process', async (_name, how, message) => {
    const crashKind = (input: unknown) => runJob('test-crash', makeJob('test-crash', input), opts());
    const { pid: warm } = (await crashKind({ how: 'none' })) as { pid: number };
    const e = await rejection(crashKind({ how }));
    expect(e.code).toBe('GG_ERR_EXECUTOR_CRASHED');
    expect(e.message).toMatch(message);
    expect(isAlive(warm)).toBe(false); // the warm process took the job and crashed
    const { pid: next } = (await crashKind({ how: 'none' })) as { pid: number };
    expect(next).not.toBe(warm);
  });

  it('kills a job that runs past its timeout: GG_ERR_JOB_TIMEOUT; its process is not reused', async () => {
    // Its pid from its `started` line: a job process at low priority on a busy machine may not get to say more in 1.5 s.
    const known = log.pids.length;
    const t0 = performance.now();
    const e = await rejection(runJob('test-hang', makeJob('test-hang', {}), opts({ timeoutMs: 1500 })));
    expect(e.code).toBe('GG_ERR_JOB_TIMEOUT');
    expect(e.message).toContain('1500 ms');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1490);
    // Settled only once the process was gone.
    const [hangingPid = 0] = log.pids.slice(known);
    expect(hangingPid).toBeGreaterThan(0);
    expect(isAlive(hangingPid)).toBe(false);
  });

  it('cancels at once, even a job process that ignores SIGTERM: GG_ERR_JOB_CANCELED; its process is not reused', async () => {
    const controller = new AbortController();
    let abortedAt = 0;
    let hangingPid = 0;
    const running = runJob(
      'test-hang',
      makeJob('test-hang', { ignoreSigterm: true }),
      opts({
        signal: controller.signal,
        onProgress: (_p, msg) => {
          if (!msg?.startsWith('hanging')) return;
          hangingPid = Number(/pid (\d+)/.exec(msg)?.[1]);
          abortedAt = performance.now();
          controller.abort();
        },
      }),
    );
    const e = await rejection(running);
    expect(e.code).toBe('GG_ERR_JOB_CANCELED');
    expect(abortedAt).toBeGreaterThan(0);
    // SIGKILL follows 300 ms after SIGTERM (killGraceMs); the bound leaves a busy machine room, not the 2 s finish grace.
    expect(performance.now() - abortedAt).toBeLessThan(1500);
    // Settled only once the process was gone, so it cannot be reused.
    expect(isAlive(hangingPid)).toBe(false);
  });

  it('does not start a job whose signal is already aborted', async () => {
    const before = log.pids.length;
    const e = await rejection(runJob('test-echo', makeJob('test-echo', {}), opts({ signal: AbortSignal.abort() })));
    expect(e.code).toBe('GG_ERR_JOB_CANCELED');
    expect(log.pids.length).toBe(before);
  });

  it('kills a job process that sends a message outside the IPC schema', async () => {
    const e = await rejection(runJob('test-rogue', makeJob('test-rogue', {}), opts()));
    expect(e.code).toBe('GG_ERR_EXECUTOR_CRASHED');
    expect(e.message).toContain('sent an invalid message');
  });

  it('escalates to SIGKILL when SIGTERM is ignored, and reports the reason it was given', async () => {
    const child = JobChild.fork({ label: 'job escalate', logger: log, killGraceMs: 100 });
    const job = makeJob('test-hang', { ignoreSigterm: true });
    child.on('message', (msg) => {
      if (msg.type === 'progress') child.kill('timeout', 'test');
    });
    child.send({ type: 'run', kind: job.kind, job, modelPath: '/models/none', threads: 1, slots: 1, gpuBackends: [] });
    expect(await child.exited).toEqual({ reason: 'timeout', code: null, signal: 'SIGKILL', detail: 'test' });
  });

  it('keeps the worker (this process) able to run jobs after all of the above', async () => {
    await expect(runJob('test-echo', makeJob('test-echo', 'still here'), opts())).resolves.toMatchObject({ echo: 'still here' });
    expect(log.pids.length).toBeGreaterThanOrEqual(10);
  });
});
