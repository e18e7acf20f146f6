/**
 * The polite-worker benchmark (issue #5): how fast a running job steps aside,
 * and how much CPU a low-priority job leaves to the machine's owner. Writes
 * bench/results/polite-<ISO date>.json; summary in BENCHMARKS.md.
 *
 *   npm run bench:polite                # full run, about 2–3 minutes
 *   npm run bench:polite -- --quick     # smoke run, ~30 s: fewer tries, not comparable
 *
 * (a) suspend latency: from `JobRunner.suspend()` to the job process seen
 *     stopped (state T in /proc/PID/stat, polled in a tight loop), over many
 *     tries with a CPU-bound job (`test-spin`) at its default low priority;
 *     once alone, once with the owner's busy loop on the job's core.
 * (b) CPU share: a foreground busy loop (iterations per second) in a session
 *     of its own, as a desktop program is, alone and with a CPU-bound job on
 *     the same core: the job at `low` priority, at `normal`, and as a plain
 *     `nice -n 19` process in the benchmark's own session (what nice alone
 *     does under autogroups). Configurations take turns, round after round,
 *     and each ratio is against the median alone, because this machine is
 *     shared and noisy.
 * Pinning: with taskset, the job process (all its threads) and the
 * foreground share CPU 0, and this process (the runner, the /proc polling)
 * keeps to CPU 1, so the comparison is one core's worth on a 2-core VM.
 *
 * Job processes run from TypeScript source (tsx), which slows their start
 * only; nothing is timed across a start. It is a benchmark, not a test.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { JobSpec } from '../../src/protocol/index.js';
import { JobProcessPool, type JobProcessPoolOptions } from '../../src/worker/executors/index.js';
import { JobRunner } from '../../src/worker/job-runner.js';
import { TEST_EXECUTORS_ENV } from '../../test/worker/executors/test-executors.js';
import { loadAvg, machine, type Machine } from '../lib/machine.js';
import { cpuUs, procStat } from '../lib/procfs.js';
import { progressLog, resultBase, runMain, writeResult } from '../lib/results.js';
import { median, percentile, round } from '../lib/stats.js';

interface Config {
  quick: boolean;
  latencyTries: number;
  shareRounds: number;
  shareWindowMs: number;
}

interface Latency {
  tries: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Time spent inside suspend() itself (the SIGSTOP syscalls), p50. */
  callP50Ms: number;
  /**
   * CPU the job process's threads ran between suspend() and being seen
   * stopped (/proc/PID/task/*\/schedstat): a starved low-priority process may
   * wait for its turn to stop, but runs no job code once SIGSTOP is pending
   * (the kernel stops it on its way back to user mode). An upper bound: the
   * counter of a thread that is on a CPU is brought up to date only at the
   * scheduler's tick, so the reading before suspend() may lag by up to one
   * tick (4 ms at HZ=250) of CPU it had already used.
   */
  cpuAfterSuspendUs: { p50: number; p99: number; max: number };
}

type ShareMode = 'alone' | 'low' | 'normal' | 'niceOnly';
const MODES: readonly ShareMode[] = ['alone', 'low', 'normal', 'niceOnly'];

interface ShareSample {
  mode: ShareMode;
  round: number;
  /** Foreground busy-loop iterations per second, in millions. */
  foregroundMips: number;
  /** CPU the job used in the window, as a share of one core. */
  jobCpu: number | null;
}

const TASKSET = existsSync('/usr/bin/taskset');
const JOB_CORE = '0';
const BENCH_CORE = '1';

/** Counts loop iterations for `ms` after a 200 ms warm-up (JIT, CPU frequency) and prints millions per second. */
const FOREGROUND = `
const ms = Number(process.argv[1]);
const spin = (until) => { let n = 0; while (performance.now() < until) { for (let i = 0; i < 1e4; i++) n++; } return n; };
spin(performance.now() + 200);
const t0 = performance.now();
const n = spin(t0 + ms);
console.log(JSON.stringify({ mips: n / (performance.now() - t0) / 1e3 }));
`;

function pin(pid: number, core: string): void {
  if (TASKSET) execFileSync('taskset', ['-a', '-p', '-c', core, String(pid)], { stdio: 'ignore' });
}

/** The job process's /proc/PID/stat; it must be alive while the suite measures it. */
function stat(pid: number): { state: string; cpuUs: number } {
  const s = procStat(pid);
  if (!s) throw new Error(`job process ${pid} is gone`);
  return s;
}

/** The owner's program: a busy loop in a session (autogroup) of its own, on the job's core. */
function foreground(ms: number): ChildProcess {
  const args = ['-e', FOREGROUND, String(ms)];
  const cmd = TASKSET ? ['taskset', ['-c', JOB_CORE, process.execPath, ...args]] as const : [process.execPath, args] as const;
  return spawn(cmd[0], cmd[1], { detached: true, stdio: ['ignore', 'pipe', 'inherit'] });
}

async function foregroundMips(ms: number): Promise<number> {
  const proc = foreground(ms);
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await once(proc, 'exit');
  return (JSON.parse(out) as { mips: number }).mips;
}

let seq = 0;
function spinJob(): JobSpec {
  seq += 1;
  return {
    jobId: `polite-${seq}`,
    kind: 'test-spin',
    model: { sha256: '0'.repeat(64), size: 0, name: 'none' },
    input: { cpuMs: 3_600_000 },
    inputByReference: false,
    requirements: {},
    timeoutMs: 3_600_000,
    attempt: 1,
  };
}

/** A CPU-bound job on its own pool, pinned to the job core; `stop()` kills it. */
async function startSpin(options: JobProcessPoolOptions): Promise<{ pid: number; stop(): Promise<void> }> {
  const pool = new JobProcessPool({ ...options, maxIdle: 0 });
  const controller = new AbortController();
  const forked = once(pool, 'spawn') as Promise<[{ pid: number }]>;
  let running!: () => void;
  const started = new Promise<void>((resolve) => (running = resolve));
  const done = pool
    .run('test-spin', spinJob(), { modelPath: '/none', threads: 1, timeoutMs: 3_600_000, signal: controller.signal, onProgress: (p) => p > 0 && running() })
    .catch(() => undefined);
  const [{ pid }] = await forked;
  pin(pid, JOB_CORE);
  await started;
  return {
    pid,
    stop: async () => {
      controller.abort();
      await done;
      await pool.close();
    },
  };
}

/** `nice -n 19` and nothing else, in this benchmark's session: what nice does without a session of its own. */
async function startNiceOnly(): Promise<{ pid: number; stop(): Promise<void> }> {
  const proc = spawn('nice', ['-n', '19', ...(TASKSET ? ['taskset', '-c', JOB_CORE] : []), process.execPath, '-e', 'for (;;);'], { stdio: 'ignore' });
  await once(proc, 'spawn');
  return {
    pid: proc.pid!,
    stop: async () => {
      proc.kill('SIGKILL');
      await once(proc, 'exit');
    },
  };
}

const r3 = (x: number) => round(x, 3);

export interface PoliteResult {
  suite: 'polite';
  startedAt: string;
  durationSecs: number;
  machine: Machine;
  config: Config;
  suspendLatency: { alone: Latency; withOwnerOnCore: Latency };
  cpuShare: Share;
}

async function measureLatency(tries: number, withOwner: boolean): Promise<Latency> {
  const pool = new JobProcessPool({ maxIdle: 0 });
  const runner = new JobRunner({
    slots: 1,
    threads: 1,
    models: { acquire: async () => ({ path: '/none', release() {} }) },
    run: (kind, job, opts) => pool.run(kind, job, opts),
    canRun: () => true,
    transfer: { fetchInput: () => Promise.reject(new Error('unused')), postResult: () => Promise.reject(new Error('unused')) },
    logger: pino({ level: 'silent' }),
  });
  runner.attach(async () => {});
  const forked = once(pool, 'spawn') as Promise<[{ pid: number }]>;
  const job = spinJob();
  runner.accept({ job, leaseId: 'bench' });
  const [{ pid }] = await forked;
  pin(pid, JOB_CORE);
  const owner = withOwner ? foreground(3_600_000) : null;
  const stops: number[] = [];
  const calls: number[] = [];
  const cpu: number[] = [];
  try {
    // Running the job, not starting node: its CPU time grows.
    const t = stat(pid).cpuUs;
    while (stat(pid).cpuUs < t + 200_000) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < tries; i++) {
      const cpu0 = cpuUs(pid);
      const t0 = performance.now();
      runner.suspend();
      calls.push(performance.now() - t0);
      while (stat(pid).state !== 'T') if (performance.now() - t0 > 10_000) throw new Error(`pid ${pid} not stopped after 10 s`);
      stops.push(performance.now() - t0);
      cpu.push(cpuUs(pid) - cpu0);
      runner.resume();
      while (stat(pid).state === 'T');
      await new Promise((r) => setTimeout(r, 30 + Math.random() * 40));
    }
  } finally {
    owner?.kill('SIGKILL');
    await runner.handBack('benchmark over');
    await pool.close();
  }
  return {
    tries,
    p50Ms: r3(percentile(stops, 50)),
    p99Ms: r3(percentile(stops, 99)),
    maxMs: r3(Math.max(...stops)),
    callP50Ms: r3(median(calls)),
    cpuAfterSuspendUs: { p50: Math.round(percentile(cpu, 50)), p99: Math.round(percentile(cpu, 99)), max: Math.round(Math.max(...cpu)) },
  };
}

interface Share {
  samples: ShareSample[];
  /** Median foreground rate of each mode ÷ the median alone. */
  ratios: Record<ShareMode, number>;
  /** Median over rounds of (the mode's rate ÷ that round's alone rate): steadier when the machine's load drifts. */
  roundRatios: Record<ShareMode, number>;
  /** Median share of a core the job took. */
  jobCpu: Record<Exclude<ShareMode, 'alone'>, number>;
}

async function measureShare(cfg: Config, log: (line: string) => void): Promise<Share> {
  const samples: ShareSample[] = [];
  for (let round = 1; round <= cfg.shareRounds; round++) {
    for (const mode of MODES) {
      const job = mode === 'alone' ? null : mode === 'niceOnly' ? await startNiceOnly() : await startSpin({ priority: mode });
      const before = job ? stat(job.pid).cpuUs : 0;
      const t0 = performance.now();
      const mips = await foregroundMips(cfg.shareWindowMs);
      const jobCpu = job ? (stat(job.pid).cpuUs - before) / 1000 / (performance.now() - t0) : null;
      await job?.stop();
      samples.push({ mode, round, foregroundMips: r3(mips), jobCpu: jobCpu === null ? null : r3(jobCpu) });
      log(`  round ${round} ${mode.padEnd(8)} foreground ${mips.toFixed(0)} M it/s${jobCpu === null ? '' : `, job ${(jobCpu * 100).toFixed(0)} % of a core`}`);
    }
  }
  const of = (mode: ShareMode) => samples.filter((s) => s.mode === mode);
  const alone = of('alone');
  const aloneMedian = median(alone.map((s) => s.foregroundMips));
  const perMode = <T>(f: (mode: ShareMode) => T) => Object.fromEntries(MODES.map((m) => [m, f(m)])) as Record<ShareMode, T>;
  const ratios = perMode((m) => r3(median(of(m).map((s) => s.foregroundMips)) / aloneMedian));
  const roundRatios = perMode((m) => r3(median(of(m).map((s, i) => s.foregroundMips / alone[i]!.foregroundMips))));
  const jobCpu = { low: 0, normal: 0, niceOnly: 0 };
  for (const m of ['low', 'normal', 'niceOnly'] as const) jobCpu[m] = r3(median(of(m).map((s) => s.jobCpu!)));
  return { samples, ratios, roundRatios, jobCpu };
}

/** Whether the kernel puts each session in a scheduling group of its own: what decides the `niceOnly` figure. */
function autogroup(): boolean {
  const file = '/proc/sys/kernel/sched_autogroup_enabled';
  return existsSync(file) && readFileSync(file, 'utf8').trim() === '1';
}

export async function runPoliteBench(quick: boolean, log: (line: string) => void): Promise<PoliteResult> {
  // The job processes take the test-only executors (test-spin) from this environment.
  Object.assign(process.env, TEST_EXECUTORS_ENV);
  const info = machine({ autogroup: autogroup(), taskset: TASKSET });
  pin(process.pid, BENCH_CORE);
  const cfg: Config = { quick, latencyTries: quick ? 10 : 50, shareRounds: quick ? 2 : 7, shareWindowMs: quick ? 1000 : 2500 };
  const startedAt = new Date();
  log(`polite bench: ${JSON.stringify(info)}`);
  log('(a) suspend → stopped, job alone on its core');
  const alone = await measureLatency(cfg.latencyTries, false);
  log(`  p50 ${alone.p50Ms} ms, p99 ${alone.p99Ms} ms, max ${alone.maxMs} ms; job CPU meanwhile p50 ${alone.cpuAfterSuspendUs.p50} µs, max ${alone.cpuAfterSuspendUs.max} µs`);
  log("(a) suspend → stopped, with the owner's busy loop on the job's core");
  const contended = await measureLatency(cfg.latencyTries, true);
  log(`  p50 ${contended.p50Ms} ms, p99 ${contended.p99Ms} ms, max ${contended.maxMs} ms; job CPU meanwhile p50 ${contended.cpuAfterSuspendUs.p50} µs, max ${contended.cpuAfterSuspendUs.max} µs`);
  log(`(b) foreground CPU share, ${cfg.shareRounds} rounds of ${cfg.shareWindowMs} ms per mode`);
  const share = await measureShare(cfg, log);
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  log(`  foreground keeps, of what it gets alone (medians): ${MODES.map((m) => `${m} ${pct(share.ratios[m])}`).join(', ')}`);
  log(`  the same, per round: ${MODES.map((m) => `${m} ${pct(share.roundRatios[m])}`).join(', ')}`);
  log(`  the job's share of the core: ${Object.entries(share.jobCpu).map(([m, x]) => `${m} ${pct(x)}`).join(', ')}`);
  const result: PoliteResult = {
    suite: 'polite',
    startedAt: startedAt.toISOString(),
    durationSecs: Math.round((Date.now() - startedAt.getTime()) / 1000),
    machine: { ...info, loadAvgAtEnd: loadAvg() },
    config: cfg,
    suspendLatency: { alone, withOwnerOnCore: contended },
    cpuShare: share,
  };
  const file = `${resultBase('polite', startedAt, quick)}.json`;
  await writeResult(file, result);
  log(`wrote ${file}`);
  return result;
}

runMain('polite', async () => {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  await runPoliteBench(values.quick ?? false, progressLog());
});
