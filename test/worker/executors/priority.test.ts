/**
 * Job processes at low OS priority (issue #5), checked on the real processes
 * through /proc: every thread's nice value, and on a kernel with autogroups a
 * session of its own whose group is niced too. Also stopping a process with
 * SIGSTOP and killing it while stopped.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { constants, getPriority } from 'node:os';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { JobProcessPool, type JobProcessPoolOptions, type RunJobOptions } from '../../../src/worker/executors/index.js';
import { JobChild } from '../../../src/worker/executors/job-child.js';
import { defaultJobPriority, priorityPlan } from '../../../src/worker/executors/priority.js';
import { isAlive, makeJob, pidRecorder, useTestExecutors } from './helpers.js';

/** Fields of /proc/PID[/task/TID]/stat after the command name: [0] state, [3] session, [16] nice. */
function statFields(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

function threadNices(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => Number(statFields(`/proc/${pid}/task/${tid}/stat`)[16]));
}

const autogroups = existsSync('/proc/sys/kernel/sched_autogroup_enabled') && readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1';
const log = pidRecorder();
const pools: JobProcessPool[] = [];

/** Starts a CPU-bound job on a fresh pool and resolves with its pid once the executor runs; the job is canceled after the test. */
async function spinning(options: JobProcessPoolOptions): Promise<number> {
  const pool = new JobProcessPool(options);
  pools.push(pool);
  const controller = new AbortController();
  let started!: (pid: number) => void;
  const pid = new Promise<number>((resolve) => (started = resolve));
  const opts: RunJobOptions = {
    modelPath: '/models/none',
    threads: 1,
    timeoutMs: 30_000,
    signal: controller.signal,
    logger: log,
    onProgress: (_p, message) => {
      const m = /pid (\d+)/.exec(message ?? '');
      if (m) started(Number(m[1]));
    },
  };
  pool.run('test-spin', makeJob('test-spin', { cpuMs: 60_000 }), opts).catch(() => undefined);
  stops.push(() => controller.abort());
  return pid;
}
const stops: (() => void)[] = [];

describe('job process priority', () => {
  useTestExecutors();
  afterEach(async () => {
    for (const stop of stops.splice(0)) stop();
    await Promise.all(pools.splice(0).map((p) => p.close()));
    expect(log.pids.filter(isAlive)).toEqual([]);
  });

  it.each<[string, Parameters<typeof priorityPlan>, ReturnType<typeof priorityPlan>]>([
    ['Linux with autogroups', ['low', 'linux', true], { nice: 19, ownSession: true }],
    ['Linux without', ['low', 'linux', false], { nice: 19, ownSession: false }],
    ['macOS', ['low', 'darwin', true], { nice: 19, ownSession: false }],
    ['Windows: below normal, not idle', ['low', 'win32', false], { nice: constants.priority.PRIORITY_BELOW_NORMAL, ownSession: false }],
    ['normal leaves it alone', ['normal', 'linux', true], { nice: null, ownSession: false }],
  ])('plans %s', (_name, args, plan) => {
    expect(priorityPlan(...args)).toEqual(plan);
  });

  // At nice 19 in a niced autogroup the process starts only as fast as everything else on a busy machine lets it.
  it.runIf(process.platform === 'linux')('runs every thread of a low-priority job process (the default) at nice 19, in a niced autogroup of its own', { timeout: 90_000 }, async () => {
    const pid = await spinning({ priority: 'low' });
    const threads = threadNices(pid);
    expect(threads.length).toBeGreaterThan(1); // node's own threads, renice'd by the process itself
    expect(new Set(threads)).toEqual(new Set([19]));
    expect(execFileSync('ps', ['-o', 'ni=', '-p', String(pid)], { encoding: 'utf8' }).trim()).toBe('19');
    if (autogroups) {
      expect(Number(statFields(`/proc/${pid}/stat`)[3])).toBe(pid); // session leader: setsid
      expect(readFileSync(`/proc/${pid}/autogroup`, 'utf8')).toMatch(/ nice 19\n$/);
    }
  });

  it.runIf(process.platform === 'linux')('renices every thread a process already has: node starts its own before the worker can lower it', () => {
    // A fresh node, not reniced by anyone: its threads start at 0, and reniceOwnThreads must reach all of them.
    const script = `
      import { readdirSync, readFileSync } from 'node:fs';
      const nices = () => readdirSync('/proc/self/task').map((t) => {
        const s = readFileSync('/proc/self/task/' + t + '/stat', 'utf8');
        return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[16]);
      });
      const before = nices();
      const { reniceOwnThreads } = await import(${JSON.stringify(new URL('../../../src/worker/executors/priority.ts', import.meta.url).href)});
      reniceOwnThreads();
      console.log(JSON.stringify({ before, after: nices() }));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, GOGRID_JOB_NICE: '19' },
    });
    const { before, after } = JSON.parse(out) as { before: number[]; after: number[] };
    expect(before.length).toBeGreaterThan(1);
    expect(new Set(before)).toEqual(new Set([getPriority()]));
    expect(new Set(after)).toEqual(new Set([19]));
  });

  it.runIf(process.platform === 'linux')("leaves a job process at the worker's priority with priority 'normal'", async () => {
    const pid = await spinning({ priority: 'normal' });
    expect(new Set(threadNices(pid))).toEqual(new Set([getPriority()]));
    expect(statFields(`/proc/${pid}/stat`)[3]).toBe(statFields('/proc/self/stat')[3]);
  });

  it('takes normal as the default from GOGRID_JOB_PRIORITY=normal, and no other value', () => {
    const saved = process.env['GOGRID_JOB_PRIORITY'];
    onTestFinished(() => {
      if (saved === undefined) delete process.env['GOGRID_JOB_PRIORITY'];
      else process.env['GOGRID_JOB_PRIORITY'] = saved;
    });
    delete process.env['GOGRID_JOB_PRIORITY'];
    expect(defaultJobPriority()).toBe('low');
    process.env['GOGRID_JOB_PRIORITY'] = 'normal';
    expect(defaultJobPriority()).toBe('normal');
    process.env['GOGRID_JOB_PRIORITY'] = 'high';
    expect(defaultJobPriority()).toBe('low');
  });

  it.runIf(process.platform === 'linux')('stops a process with suspend and kills it while stopped, even one that ignores SIGTERM', async () => {
    const child = JobChild.fork({ label: 'job stopped', logger: log, killGraceMs: 100, priority: 'normal' });
    const job = makeJob('test-hang', { ignoreSigterm: true });
    const hanging = new Promise<void>((resolve) => child.once('message', () => resolve()));
    child.send({ type: 'run', kind: job.kind, job, modelPath: '/models/none', threads: 1, slots: 1, gpuBackends: [] });
    await hanging;
    child.suspend();
    expect(child.suspended).toBe(true);
    await expect.poll(() => statFields(`/proc/${child.pid}/stat`)[0], { interval: 5 }).toBe('T');
    child.kill('canceled', 'handed back');
    expect(await child.exited).toEqual({ reason: 'canceled', code: null, signal: 'SIGKILL', detail: 'handed back' });
    expect(child.suspended).toBe(false);
  });
});
