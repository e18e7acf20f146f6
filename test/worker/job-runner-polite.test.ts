/**
 * The job runner stepping aside (issue #5): suspend and resume (SIGSTOP /
 * SIGCONT, the timeout clock paused), hand back (job.release, no result),
 * the status window's views and `finished` events, the thread limit. Real
 * job processes with the test-only executors; the coordinator's end is the
 * `send` function, the model cache a path (these executors load no model).
 */
import { EventEmitter, once } from 'node:events';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobRequirements, WorkerMessageInput } from '../../src/protocol/index.js';
import { RunningJobView } from '../../src/protocol/control.js';
import { JobProcessPool } from '../../src/worker/executors/index.js';
import { JobRunner, type JobFinished, type JobRunnerOptions } from '../../src/worker/job-runner.js';
import { within } from '../helpers/within.js';
import { isAlive, makeJob, useTestExecutors } from './executors/helpers.js';

type Sent = WorkerMessageInput;
type Result = Extract<Sent, { type: 'job.result' }>;

/** The process's scheduler state (R, S, T, …) and CPU ticks used, from /proc/PID/stat. */
function stat(pid: number): { state: string; cpuTicks: number } {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0]!, cpuTicks: Number(fields[11]) + Number(fields[12]) };
}

const pools: JobProcessPool[] = [];
const runners: JobRunner[] = [];
const spawned: number[] = [];

function harness(over: (pool: JobProcessPool) => Partial<JobRunnerOptions> = () => ({})) {
  // Normal priority: these tests time suspensions, and a nice-19 process on a busy machine starts whenever it gets a turn.
  const pool = new JobProcessPool({ maxIdle: 2, priority: 'normal' });
  const pids: number[] = [];
  const forked = new EventEmitter<{ pid: [] }>();
  pool.on('spawn', ({ pid }) => {
    spawned.push(pid!);
    pids.push(pid!);
    forked.emit('pid');
  });
  pools.push(pool);
  const sent: Sent[] = [];
  const bus = new EventEmitter<{ sent: [Sent] }>();
  const runner = new JobRunner({
    slots: 3,
    threads: 1,
    models: { acquire: async () => ({ path: '/models/none', release() {} }) },
    run: (kind, job, opts) => pool.run(kind, job, opts),
    canRun: () => true,
    transfer: {
      fetchInput: () => Promise.reject(new Error('no input by reference in these tests')),
      postResult: () => Promise.reject(new Error('no large results in these tests')),
    },
    logger: pino({ level: 'silent' }),
    ...over(pool),
  });
  runners.push(runner);
  runner.attach(async (msg) => {
    sent.push(msg);
    bus.emit('sent', msg);
  });
  const finished: JobFinished[] = [];
  runner.on('finished', (f) => finished.push(f));
  /** The first message (already sent or still to come) that matches; fails after 20 s naming `what`. */
  const message = <T extends Sent>(what: string, match: (m: Sent) => m is T): Promise<T> =>
    within(20_000, what, new Promise((resolve) => {
      const seen = sent.find(match);
      if (seen) return resolve(seen);
      const on = (m: Sent) => {
        if (!match(m)) return;
        bus.off('sent', on);
        resolve(m);
      };
      bus.on('sent', on);
    }));
  const resultOf = (jobId: string) => message(`the result of ${jobId}`, (m): m is Result => m.type === 'job.result' && m.jobId === jobId);
  /** Resolves once the job's executor reported progress past 0: its process is running it. */
  const runningOn = (jobId: string) => message(`progress from ${jobId}`, (m): m is Sent => m.type === 'job.progress' && m.jobId === jobId && m.progress > 0);
  /** Once `finished` told of the job (it fires once its result went out). */
  const finishedOf = (jobId: string) =>
    within(20_000, `finished for ${jobId}`, new Promise<JobFinished>((resolve) => {
      const seen = finished.find((f) => f.jobId === jobId);
      if (seen) return resolve(seen);
      const on = (f: JobFinished) => {
        if (f.jobId !== jobId) return;
        runner.off('finished', on);
        resolve(f);
      };
      runner.on('finished', on);
    }));
  /** The pids of the first `n` processes this harness's pool forked, as they come. */
  const forks = async (n: number) => {
    while (pids.length < n) await once(forked, 'pid');
    return pids.slice(0, n);
  };
  let lease = 0;
  const assign = (kind: string, input: unknown, timeoutMs = 30_000, requirements: JobRequirements = {}) => {
    const job = makeJob(kind, input, { timeoutMs, requirements });
    lease += 1;
    const leaseId = `lease-${lease}`;
    runner.accept({ job, leaseId });
    return { jobId: job.jobId, leaseId };
  };
  const of = (jobId: string) => sent.filter((m) => 'jobId' in m && m.jobId === jobId && m.type !== 'job.progress');
  return { runner, pool, sent, finished, assign, message, resultOf, runningOn, finishedOf, forks, of };
}

describe('JobRunner stepping aside', () => {
  useTestExecutors();
  afterEach(async () => {
    for (const r of runners.splice(0)) {
      r.resume();
      await r.stopAll('test over');
    }
    await Promise.all(pools.splice(0).map((p) => p.close()));
    expect(spawned.filter(isAlive)).toEqual([]);
  });

  it('stops the process on suspend (state T, no CPU) and lets it finish on resume', async () => {
    const h = harness();
    let changes = 0;
    h.runner.on('changed', () => changes++);
    // Long enough that a progress above 0 goes out past the start report's throttle even on an idle, fast machine
    // (at 400 ms of CPU the last one could land inside the throttle window, and none was sent).
    const { jobId } = h.assign('test-spin', { cpuMs: 1500, tag: 'spun' });
    const [pid] = await h.forks(1);
    await h.runningOn(jobId);
    changes = 0;

    expect(h.runner.suspend()).toBe(true);
    expect(h.runner.suspended).toBe(true);
    expect(changes).toBe(1);
    await expect.poll(() => stat(pid!).state, { interval: 5 }).toBe('T');
    const ticks = stat(pid!).cpuTicks;
    const reports = h.sent.length;
    await new Promise((r) => setTimeout(r, 300)); // nothing to await: the point is that nothing happens
    expect(stat(pid!).cpuTicks).toBe(ticks);
    expect(h.sent.length).toBe(reports); // no progress from a stopped process, and nothing made up for it
    expect(h.of(jobId)).toEqual([]);
    expect(h.runner.views()).toEqual([expect.objectContaining({ jobId, suspended: true })]);
    expect(h.runner.running()).toEqual([{ jobId, leaseId: 'lease-1', progress: expect.any(Number) }]);

    h.runner.resume();
    expect(changes).toBe(2);
    expect(stat(pid!).state).not.toBe('T');
    const result = await h.resultOf(jobId);
    expect(result.outcome).toEqual({ ok: true, output: { tag: 'spun', cpuMs: expect.any(Number), pid } });
    expect((result.outcome as { output: { cpuMs: number } }).output.cpuMs).toBeGreaterThanOrEqual(1500);
    expect(h.of(jobId)).toHaveLength(1);
    expect(await h.finishedOf(jobId)).toEqual({ jobId, ok: true, error: null, at: expect.any(Date) });
  });

  it('pauses the timeout while suspended and lets the rest run out after resume', { timeout: 20_000 }, async () => {
    const h = harness();
    // A warm process, so the timeout clock starts within a few ms of `run`, not after a fork.
    await h.resultOf(h.assign('test-spin', { cpuMs: 0 }).jobId);
    const [pid] = await h.forks(1);
    const timeoutMs = 2000;
    const accepted = performance.now();
    const { jobId } = h.assign('test-spin', { cpuMs: 60_000 }, timeoutMs);
    await h.runningOn(jobId);
    h.runner.suspend();
    const ranBefore = performance.now() - accepted;
    expect(ranBefore, 'the job ran out its timeout before it could be suspended: the machine is too busy').toBeLessThan(timeoutMs);

    await new Promise((r) => setTimeout(r, 1.5 * timeoutMs)); // longer than the whole timeout
    expect(h.of(jobId)).toEqual([]);
    expect(stat(pid!).state).toBe('T');

    h.runner.resume();
    const resumedAt = performance.now();
    const result = await h.resultOf(jobId);
    const afterResume = performance.now() - resumedAt;
    expect(result.outcome).toMatchObject({ ok: false, error: { code: 'GG_ERR_JOB_TIMEOUT' } });
    // The clock ran only outside the suspension: at least what was left of it (timers never fire early;
    // the clock started after `accepted`). A clock that never restarts fails resultOf's deadline instead.
    expect(afterResume).toBeGreaterThanOrEqual(timeoutMs - ranBefore - 20);
    expect(await h.finishedOf(jobId)).toMatchObject({ ok: false, error: expect.stringContaining('timeout') });
  });

  it('hands back every job, stopped or waiting, with exactly one job.release each and no result', async () => {
    const h = harness();
    const a = h.assign('test-spin', { cpuMs: 60_000 });
    const b = h.assign('test-spin', { cpuMs: 60_000 });
    const pids = await h.forks(2);
    await Promise.all([h.runningOn(a.jobId), h.runningOn(b.jobId)]);
    h.runner.suspend();
    for (const pid of pids) await expect.poll(() => stat(pid).state, { interval: 5 }).toBe('T');
    // Assigned while suspended: accepted, waiting for a process it does not get yet.
    const c = h.assign('test-spin', { cpuMs: 60_000 });
    expect(h.runner.views().map((v) => v.jobId)).toEqual([a.jobId, b.jobId, c.jobId]);
    const forks = spawned.length;

    await h.runner.handBack('You are using this computer');
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(spawned.length).toBe(forks);
    for (const { jobId, leaseId } of [a, b, c]) {
      expect(h.of(jobId)).toEqual([{ type: 'job.release', jobId, leaseId, reason: 'You are using this computer' }]);
    }
    expect(h.runner.busy).toBe(0);
    expect(h.finished).toEqual([]);
    expect(h.runner.suspended).toBe(true); // the caller decides when jobs may run again
  });

  it('sends the result, not a release, for a job that ends on its own during the hand-back', async () => {
    let ended!: () => void;
    const endedSignal = new Promise<void>((r) => (ended = r));
    let letGo!: () => void;
    const gate = new Promise<void>((r) => (letGo = r));
    const h = harness((pool) => ({
      // The echo job's process has answered; the runner hears of it only once the gate opens, after handBack began.
      run: async (kind, job, opts) => {
        const output = await pool.run(kind, job, opts);
        if (kind === 'test-echo') {
          ended();
          await gate;
        }
        return output;
      },
    }));
    const done = h.assign('test-echo', 'mine');
    const spinning = h.assign('test-spin', { cpuMs: 60_000 });
    await Promise.all([endedSignal, h.runningOn(spinning.jobId)]);

    const handing = h.runner.handBack('Paused by you');
    letGo();
    await handing;
    expect(h.of(done.jobId)).toEqual([{ type: 'job.result', jobId: done.jobId, leaseId: done.leaseId, runMs: expect.any(Number), outcome: { ok: true, output: expect.objectContaining({ echo: 'mine' }) } }]);
    expect(h.of(spinning.jobId)).toEqual([{ type: 'job.release', jobId: spinning.jobId, leaseId: spinning.leaseId, reason: 'Paused by you' }]);
    expect(h.finished.map((f) => f.jobId)).toEqual([done.jobId]);
    expect(h.runner.busy).toBe(0);
  });

  it('says it cannot suspend on Windows, leaves the job running, and still hands it back', async () => {
    const h = harness(() => ({ platform: 'win32' }));
    let changes = 0;
    const { jobId, leaseId } = h.assign('test-spin', { cpuMs: 60_000 });
    const [pid] = await h.forks(1);
    await h.runningOn(jobId);
    h.runner.on('changed', () => changes++);
    expect(h.runner.suspend()).toBe(false);
    expect(h.runner.suspended).toBe(false);
    expect(changes).toBe(0);
    const ticks = stat(pid!).cpuTicks;
    await expect.poll(() => stat(pid!).cpuTicks, { interval: 20 }).toBeGreaterThan(ticks);
    await h.runner.handBack('On battery (38 %)');
    expect(h.of(jobId)).toEqual([{ type: 'job.release', jobId, leaseId, reason: 'On battery (38 %)' }]);
    expect(isAlive(pid!)).toBe(false);
  });

  it('shows running jobs as the status window reads them and reports every result to `finished`', async () => {
    const h = harness();
    const { jobId } = h.assign('test-spin', { cpuMs: 60_000 });
    await h.runningOn(jobId);
    const [view] = h.runner.views();
    // The executor's latest word on the job comes with it (the spin says its pid when it starts).
    expect(RunningJobView.parse(view)).toEqual({ jobId, kind: 'test-spin', modelName: 'fixture', progress: expect.any(Number), detail: expect.stringMatching(/^spinning, pid \d+$/), startedAt: view!.startedAt, suspended: false });
    expect(view!.progress).toBeGreaterThan(0);
    expect(Date.now() - Date.parse(view!.startedAt)).toBeLessThan(30_000);

    const failing = h.assign('test-throw', { code: 'GG_ERR_INPUT_INVALID', message: 'x has 3 dims, not 2' });
    expect(await h.finishedOf(failing.jobId)).toEqual({ jobId: failing.jobId, ok: false, error: 'x has 3 dims, not 2', at: expect.any(Date) });
    expect(h.finished).toHaveLength(1);
  });

  it("reports a short job's start only with its result (runMs), and a longer one's once it has run startReportMs", async () => {
    const progressOf = (h: ReturnType<typeof harness>, jobId: string) => h.sent.filter((m) => m.type === 'job.progress' && m.jobId === jobId);
    // Shorter than the threshold whatever the machine's load: a minute.
    const short = harness(() => ({ startReportMs: 60_000 }));
    const quick = short.assign('test-echo', 'hi');
    expect(await short.resultOf(quick.jobId)).toMatchObject({ outcome: { ok: true }, runMs: expect.any(Number) });
    expect(progressOf(short, quick.jobId)).toEqual([]);

    // Longer than the threshold whatever the machine's load: 600 ms of CPU time is at least 600 ms.
    const long = harness(() => ({ startReportMs: 50 }));
    const slow = long.assign('test-spin', { cpuMs: 600 });
    const result = await long.resultOf(slow.jobId);
    const [started] = progressOf(long, slow.jobId);
    expect(started).toMatchObject({ type: 'job.progress', leaseId: slow.leaseId });
    expect(long.sent.indexOf(started!)).toBeLessThan(long.sent.indexOf(result));
    expect(result.runMs).toBeGreaterThanOrEqual(600);
  });

  it("hands back only the jobs on the GPU when the owner's policy takes it away, and runs or refuses the next by whether they allow the CPU", async () => {
    const h = harness(() => ({ gpuBackends: () => ['webgpu'] }));
    const gpu = { gpu: { backend: 'webgpu' } };
    const onGpu = h.assign('test-spin', { cpuMs: 60_000 }, 30_000, gpu);
    const onCpu = h.assign('test-spin', { cpuMs: 60_000 });
    await Promise.all([h.runningOn(onGpu.jobId), h.runningOn(onCpu.jobId)]);

    await h.runner.setGpuOff('GPU jobs wait until you are away');
    expect(h.of(onGpu.jobId)).toEqual([{ type: 'job.release', ...onGpu, reason: 'GPU jobs wait until you are away' }]);
    expect(h.runner.views().map((v) => v.jobId)).toEqual([onCpu.jobId]);

    const refused = h.assign('test-echo', null, 30_000, gpu);
    expect((await h.resultOf(refused.jobId)).outcome).toMatchObject({ ok: false, error: { code: 'GG_ERR_GPU_UNAVAILABLE', message: 'GPU jobs wait until you are away', retryable: true } });
    const fallback = await h.resultOf(h.assign('test-echo', null, 30_000, { gpu: { backend: 'webgpu', fallback: true } }).jobId);
    expect(fallback.outcome).toMatchObject({ ok: true, output: { gpuBackends: [] } });

    await h.runner.setGpuOff(null);
    const back = await h.resultOf(h.assign('test-echo', null, 30_000, gpu).jobId);
    expect(back.outcome).toMatchObject({ ok: true, output: { gpuBackends: ['webgpu'] } });
    // A job that asks for no GPU is not given one.
    expect((await h.resultOf(h.assign('test-echo', null).jobId)).outcome).toMatchObject({ ok: true, output: { gpuBackends: [] } });
  });

  it("hands back a kind that uses the GPU unasked (an LLM's) when the GPU is taken away, and runs the next on the CPU", async () => {
    const h = harness(() => ({ gpuBackends: () => ['vulkan'], gpuByDefault: () => true }));
    expect((await h.resultOf(h.assign('test-echo', null).jobId)).outcome).toMatchObject({ ok: true, output: { gpuBackends: ['vulkan'] } });
    const unasked = h.assign('test-spin', { cpuMs: 60_000 });
    await h.runningOn(unasked.jobId);
    await h.runner.setGpuOff('GPU jobs wait until you are away');
    expect(h.of(unasked.jobId)).toEqual([{ type: 'job.release', ...unasked, reason: 'GPU jobs wait until you are away' }]);
    // Not refused, as a job that asks for the GPU is: it runs on the CPU.
    expect((await h.resultOf(h.assign('test-echo', null).jobId)).outcome).toMatchObject({ ok: true, output: { gpuBackends: [] } });
  });

  it('gives jobs that start after setThreads the new thread count', async () => {
    const h = harness();
    const before = await h.resultOf(h.assign('test-echo', null).jobId);
    h.runner.setThreads(3);
    const after = await h.resultOf(h.assign('test-echo', null).jobId);
    expect(before.outcome).toMatchObject({ ok: true, output: { threads: 1 } });
    expect(after.outcome).toMatchObject({ ok: true, output: { threads: 3 } });
    expect(() => h.runner.setThreads(0)).toThrow(/threads must be/);
  });
});
