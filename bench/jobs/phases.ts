/**
 * The two measurements of the jobs suite that need a fleet: dispatch latency
 * with idle workers, and the throughput of tiny jobs submitted as fast as the
 * API takes them. Each call starts a fresh coordinator (dist/, in-memory
 * store) and its own simulated workers, so repetitions share no job table.
 *
 *   const { mlp, spread } = writeBenchModels(dir);
 *   const lat = await measureLatency(grid, { mlpFile: mlp, workers: 10, jobs: 300 }, log);
 *   const tput = await measureThroughput(grid, { mlpFile: mlp, spreadFile: spread, workers: 50, slots: 1, jobs: 3000, submitters: 4, submitBatch: 100, sims: 2 }, log);
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { basename, join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { JobInfo, JobList, SubmitJobsResponse } from '../../src/protocol/index.js';
import { slowModel, writeOnnxFixtures } from '../../test/fixtures/make-onnx.js';
import { busyPct, cpuUs, jobProcesses, machineTicks, othersCores, rssKiB, serverCpuUs, treeCpuUs } from '../lib/procfs.js';
import { Done, type RpcChild } from '../lib/rpc.js';
import { percentiles, round, type Percentiles } from '../lib/stats.js';
import { Frames, Started, type SimCommand } from './commands.js';
import type { CoordinatorProc, Grid } from './grid.js';
import { coordinatorProfile, SqlWindow, type CoordinatorProfile } from './profile.js';

type Log = (line: string) => void;

export interface Fleet {
  c: CoordinatorProc;
  sims: RpcChild<SimCommand>[];
  /** The MLP model's sha256: the tiny jobs. */
  sha256: string;
  /** Each worker's label (its data dir's name, see sim-worker.ts). */
  labels: string[];
}

export interface BenchModels {
  /** The tiny MLP: x [1, 4] → y [1, 3], well under a millisecond to run. */
  mlp: string;
  /**
   * x [1, 1] → y [1, 1] after 100 products of 512 × 512 matrices (a few hundred
   * ms of one core): long enough that a batch of them occupies every slot at
   * once, so every slot starts its job process before the measurement.
   */
  spread: string;
}

export function writeBenchModels(dir: string): BenchModels {
  const spread = join(dir, 'spread.onnx');
  writeFileSync(spread, slowModel(512, 100));
  return { mlp: writeOnnxFixtures(dir).mlp, spread };
}

/** A coordinator, its MLP model, and `workers` real workers spread over `sims` simulator processes. */
export async function startFleet(grid: Grid, opts: { mlpFile: string; workers: number; slots: number; sims: number; execArgv?: string[]; env?: Record<string, string> }): Promise<Fleet> {
  const c = await grid.coordinator({ execArgv: opts.execArgv, env: opts.env });
  const sha256 = await c.api.addModel(opts.mlpFile, 'mlp.onnx');
  const token = await c.api.createToken(opts.workers);
  const root = await grid.tempDir('workers');
  const sims = Array.from({ length: opts.sims }, (_, i) => grid.sim(`sim ${i + 1}`));
  const dirs = Array.from({ length: opts.workers }, (_, i) => join(root, `w${i}`));
  await Promise.all(sims.map((sim, s) => sim.call({ type: 'start', distDir: grid.distDir, coordinator: `127.0.0.1:${c.port}`, token, dirs: dirs.filter((_, i) => i % opts.sims === s), slots: opts.slots, concurrency: 8 }, Started)));
  return { c, sims, sha256, labels: dirs.map((d) => basename(d)) };
}

export async function stopFleet(f: Fleet): Promise<void> {
  await Promise.all(f.sims.map((s) => s.call({ type: 'stop' }, Done)));
  await f.c.stop();
}

let inputSeq = 0;
/** A tiny MLP job: x of shape [1, 4], three outputs. */
export function mlpJob(sha256: string): Record<string, unknown> {
  const i = inputSeq++;
  return { model: { sha256 }, input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [i % 10, -1, 0.5, (i % 7) - 3] } } } };
}

// ---------------------------------------------------------------- dispatch latency

export interface LatencyResult {
  workers: number;
  jobs: number;
  /** `queued` → `running` events of each job, both stamped by the coordinator's clock (ms resolution). */
  dispatchMs: Percentiles;
  /** `queued` → `succeeded`. */
  endToEndMs: Percentiles;
  /** The API client's view: the POST /v1/jobs round trip, and submit → the long-poll's answer. */
  clientSubmitMs: Percentiles;
  clientEndToEndMs: Percentiles;
  /** Coordinator CPU (all threads) per job, over the measured jobs. */
  coordinatorCpuUsPerJob: number;
  machineBusyPct: number;
  /** Cores other work on the machine used meanwhile (see othersCores). */
  othersCores: number;
  failed: number;
  coordinatorWarnings: number;
}

export async function measureLatency(grid: Grid, opts: { mlpFile: string; workers: number; jobs: number }, log: Log): Promise<LatencyResult> {
  const f = await startFleet(grid, { ...opts, slots: 1, sims: 1 });
  try {
    const { api } = f.c;
    const run = async () => {
      const t0 = performance.now();
      const job = await api.call('POST', '/v1/jobs', JobInfo, mlpJob(f.sha256));
      const submitted = performance.now();
      let done = await api.call('GET', `/v1/jobs/${job.id}?wait=20`, JobInfo);
      while (!['succeeded', 'failed', 'canceled'].includes(done.state)) done = await api.call('GET', `/v1/jobs/${job.id}?wait=20`, JobInfo);
      return { done, submitMs: submitted - t0, clientMs: performance.now() - t0 };
    };
    // Warm-up: every worker fetches the model and starts its job process;
    // then the one the scheduler picks for a lone job (the lowest id, all else equal) runs a few more.
    await Promise.all(Array.from({ length: opts.workers }, run));
    for (let i = 0; i < 10; i++) await run();
    const cpu0 = cpuUs(f.c.pid);
    const sim0 = treeCpuUs(f.sims[0]!.pid);
    const own0 = process.cpuUsage();
    const m0 = machineTicks();
    const t0 = performance.now();
    const rows: Awaited<ReturnType<typeof run>>[] = [];
    for (let i = 0; i < opts.jobs; i++) rows.push(await run());
    const coordinatorCpu = cpuUs(f.c.pid) - cpu0;
    const own = process.cpuUsage(own0);
    const ours = coordinatorCpu + treeCpuUs(f.sims[0]!.pid) - sim0 + own.user + own.system;
    const m1 = machineTicks();
    const perJob = coordinatorCpu / opts.jobs;
    const at = (j: JobInfo, state: string) => Date.parse(j.events!.find((e) => e.state === state)?.at ?? 'NaN');
    const ok = rows.filter((r) => r.done.state === 'succeeded');
    const result: LatencyResult = {
      workers: opts.workers,
      jobs: opts.jobs,
      dispatchMs: percentiles(ok.map((r) => at(r.done, 'running') - at(r.done, 'queued'))),
      endToEndMs: percentiles(ok.map((r) => at(r.done, 'succeeded') - at(r.done, 'queued'))),
      clientSubmitMs: percentiles(rows.map((r) => round(r.submitMs, 2))),
      clientEndToEndMs: percentiles(rows.map((r) => round(r.clientMs, 2))),
      coordinatorCpuUsPerJob: Math.round(perJob),
      machineBusyPct: round(busyPct(m0, m1)),
      othersCores: round(othersCores(m0, m1, ours, (performance.now() - t0) / 1000), 2),
      failed: rows.length - ok.length,
      coordinatorWarnings: f.c.warnings.count,
    };
    log(
      `  latency: dispatch p50 ${result.dispatchMs.p50} ms p99 ${result.dispatchMs.p99} ms, end to end p50 ${result.endToEndMs.p50} ms p99 ${result.endToEndMs.p99} ms, coordinator ${result.coordinatorCpuUsPerJob} µs CPU/job, machine ${result.machineBusyPct} % busy (other work ${result.othersCores} cores)`,
    );
    return result;
  } finally {
    await stopFleet(f);
  }
}

// ---------------------------------------------------------------- throughput

export interface ThroughputOptions {
  mlpFile: string;
  spreadFile: string;
  workers: number;
  slots: number;
  jobs: number;
  /** Concurrent POST /v1/jobs loops, over one keep-alive agent. */
  submitters: number;
  /** Jobs per POST /v1/jobs: 1 sends single jobs, more sends `{ jobs: [...] }` batches, as a client with many jobs would. */
  submitBatch: number;
  sims: number;
  /** Profile the coordinator for this many seconds once the queue is full (a diagnostic run: the profiler costs throughput). */
  profileSecs?: number;
  profileFile?: string;
}

export interface ThroughputResult {
  workers: number;
  slots: number;
  jobs: number;
  submitters: number;
  submitBatch: number;
  /** Jobs / (last `finishedAt` − first `submittedAt`), both the coordinator's clock. */
  jobsPerSec: number;
  wallSecs: number;
  /** How fast the API took the jobs (client side): the submit phase alone. */
  submitsPerSec: number;
  /** `running` → `succeeded` as the coordinator stamped them: a worker's start message to its result. */
  startToFinishMs: Percentiles;
  failed: number;
  /** Coordinator CPU (all threads) over the run, per job and as a share of one core. */
  coordinatorCpuUsPerJob: number;
  coordinatorPctOfCore: number;
  /** The coordinator's resident memory when the last job had finished. */
  coordinatorRssMiB: number;
  /** The simulators with their job processes, and this process (the submitters and pollers), per job. */
  workersCpuUsPerJob: number;
  clientCpuUsPerJob: number;
  /** The PostgreSQL server's processes, per job; null on the embedded PGlite, whose work is the coordinator's own CPU. */
  databaseCpuUsPerJob: number | null;
  /** All cores of the machine: 100 % is both cores busy. */
  machineBusyPct: number;
  /** Cores other work on the machine used meanwhile (see othersCores). */
  othersCores: number;
  /** Control frames per job as the workers counted them: from the coordinator (by type) and to it. */
  framesPerJob: { received: Record<string, number>; sent: Record<string, number> };
  /**
   * Job processes alive under the simulators after the warm-up and after the
   * run: each one more was forked (node and onnxruntime started) inside the measurement.
   */
  jobProcesses: { afterWarmUp: number; afterRun: number };
  coordinatorWarnings: number;
  /** The profiled run only: the coordinator's CPU by area and its SQL, per job finished in the window. */
  profile?: CoordinatorProfile;
}

const States = z.array(z.object({ state: z.string() }));

export async function measureThroughput(grid: Grid, opts: ThroughputOptions, log: Log): Promise<ThroughputResult> {
  const profiling = opts.profileSecs !== undefined && opts.profileFile !== undefined;
  const f = await startFleet(grid, {
    ...opts,
    ...(profiling ? { execArgv: ['--import', 'tsx', '--import', join(import.meta.dirname, 'profile-hook.ts')], env: { GOGRID_BENCH_CPU_PROFILE: opts.profileFile! } } : {}),
  });
  try {
    const { api } = f.c;
    const submitAll = async (n: number, job = () => mlpJob(f.sha256)): Promise<{ ids: string[]; secs: number }> => {
      const ids: string[] = [];
      const t0 = performance.now();
      let left = n;
      await Promise.all(
        Array.from({ length: opts.submitters }, async () => {
          while (left > 0) {
            const take = Math.min(left, opts.submitBatch);
            left -= take;
            if (opts.submitBatch === 1) ids.push((await api.call('POST', '/v1/jobs', JobInfo, job())).id);
            else {
              const jobs = Array.from({ length: take }, job);
              ids.push(...(await api.call('POST', '/v1/jobs', SubmitJobsResponse, { jobs })).jobs.map((j) => j.id));
            }
          }
        }),
      );
      return { ids, secs: (performance.now() - t0) / 1000 };
    };
    // One state at a time, queued first: a state's newest job is found by
    // scanning all jobs newest first, which is short for queued ones (the
    // newest) but passes the whole queue for a leased or running one. Asking
    // for all three every 100 ms cost the coordinator up to 0.6 ms per job
    // with 3,000 jobs queued, counted as its CPU per job.
    const drained = async (deadlineMs: number) => {
      for (;;) {
        let open = false;
        for (const state of ['queued', 'leased', 'running']) {
          open = (await api.call('GET', `/v1/jobs?state=${state}&limit=1`, States)).length > 0;
          if (open) break;
        }
        if (!open) return;
        if (Date.now() > deadlineMs) throw new Error(`jobs still open after the deadline: ${JSON.stringify(await api.call('GET', '/v1/jobs?limit=5', States))}`);
        await sleep(100);
      }
    };
    // Warm-up. Tiny jobs alone would reach only the few lowest-id workers
    // (the scheduler's tie-break), and a slot first used inside the
    // measurement would fork its job process there. So first a longer job
    // per slot, pinned to its worker by the worker's label (jobs of one
    // worker overlap, each in a process of its own); then the tiny ones.
    const spread = await api.addModel(opts.spreadFile, 'spread.onnx');
    const pinned = f.labels.flatMap((label) => Array.from({ length: opts.slots }, () => label));
    await submitAll(pinned.length, () => ({
      model: { sha256: spread },
      input: { inputs: { x: { dtype: 'float32', dims: [1, 1], data: [1] } } },
      requirements: { labels: [pinned.pop()!] },
    }));
    await drained(Date.now() + 180_000);
    await submitAll(2 * opts.workers * opts.slots);
    await drained(Date.now() + 120_000);
    const warmProcesses = f.sims.reduce((n, s) => n + jobProcesses(s.pid).length, 0);
    await Promise.all(f.sims.map((s) => s.call({ type: 'reset-frames' }, Done)));

    const dbCpu = () => (grid.postgresUrl === undefined ? 0 : serverCpuUs('postgres'));
    const cpu0 = cpuUs(f.c.pid);
    const db0 = dbCpu();
    const sims0 = f.sims.reduce((n, s) => n + treeCpuUs(s.pid), 0);
    const own0 = process.cpuUsage();
    const m0 = machineTicks();
    const t0 = performance.now();
    const profiled = profiling ? profileWindow(f.c, opts.profileSecs!) : Promise.resolve();
    const { ids, secs: submitSecs } = await submitAll(opts.jobs);
    await drained(Date.now() + 300_000);
    await profiled;
    const wall = (performance.now() - t0) / 1000;
    const coordinatorCpu = cpuUs(f.c.pid) - cpu0;
    const databaseCpu = dbCpu() - db0;
    const simsCpu = f.sims.reduce((n, s) => n + treeCpuUs(s.pid), 0) - sims0;
    const own = process.cpuUsage(own0);
    const m1 = machineTicks();
    const busy = busyPct(m0, m1);
    const coordinatorRss = rssKiB(f.c.pid);
    const jobProcessesAfter = f.sims.reduce((n, s) => n + jobProcesses(s.pid).length, 0);

    const mine = new Set(ids);
    const rows = (await api.call('GET', `/v1/jobs?limit=10000`, JobList)).filter((j) => mine.has(j.id));
    const first = Math.min(...rows.map((j) => Date.parse(j.submittedAt)));
    const last = Math.max(...rows.map((j) => Date.parse(j.finishedAt ?? j.submittedAt)));
    const frames = await Promise.all(f.sims.map((s) => s.call({ type: 'frames' }, Frames)));
    const perJob = (tables: Record<string, number>[]) => {
      const sum: Record<string, number> = {};
      for (const t of tables) for (const [k, v] of Object.entries(t)) sum[k] = (sum[k] ?? 0) + v;
      return Object.fromEntries(Object.entries(sum).map(([k, v]) => [k, round(v / opts.jobs, 2)]));
    };
    const result: ThroughputResult = {
      workers: opts.workers,
      slots: opts.slots,
      jobs: opts.jobs,
      submitters: opts.submitters,
      submitBatch: opts.submitBatch,
      jobsPerSec: round((1000 * rows.length) / (last - first)),
      wallSecs: round(wall, 2),
      submitsPerSec: round(opts.jobs / submitSecs),
      startToFinishMs: percentiles(rows.flatMap((j) => (j.startedAt && j.finishedAt ? [Date.parse(j.finishedAt) - Date.parse(j.startedAt)] : []))),
      failed: rows.filter((j) => j.state !== 'succeeded').length + (opts.jobs - rows.length),
      coordinatorCpuUsPerJob: Math.round(coordinatorCpu / opts.jobs),
      coordinatorPctOfCore: round((100 * coordinatorCpu) / (wall * 1e6)),
      coordinatorRssMiB: round(coordinatorRss / 1024),
      workersCpuUsPerJob: Math.round(simsCpu / opts.jobs),
      clientCpuUsPerJob: Math.round((own.user + own.system) / opts.jobs),
      databaseCpuUsPerJob: grid.postgresUrl === undefined ? null : Math.round(databaseCpu / opts.jobs),
      machineBusyPct: round(busy),
      othersCores: round(othersCores(m0, m1, coordinatorCpu + databaseCpu + simsCpu + own.user + own.system, wall), 2),
      framesPerJob: { received: perJob(frames.map((s) => s.received)), sent: perJob(frames.map((s) => s.sent)) },
      jobProcesses: { afterWarmUp: warmProcesses, afterRun: jobProcessesAfter },
      coordinatorWarnings: f.c.warnings.count,
      ...(profiling ? { profile: await readProfile(opts.profileFile!, rows) } : {}),
    };
    log(
      `  throughput ${opts.workers}×${opts.slots} slots${profiling ? ' (PROFILED)' : ''}: ${result.jobsPerSec} jobs/s (submits ${result.submitsPerSec}/s, start → result p50 ${result.startToFinishMs.p50} ms), coordinator ${result.coordinatorCpuUsPerJob} µs CPU/job = ${result.coordinatorPctOfCore} % of a core, workers ${result.workersCpuUsPerJob} µs/job, client ${result.clientCpuUsPerJob} µs/job${result.databaseCpuUsPerJob === null ? '' : `, PostgreSQL ${result.databaseCpuUsPerJob} µs/job`}, machine ${result.machineBusyPct} % busy (other work ${result.othersCores} cores), ${result.failed} failed`,
    );
    return result;
  } finally {
    await stopFleet(f);
  }
}

/** Starts the hook's profiler at once and stops it `secs` later; resolves once the profile is on disk. */
async function profileWindow(c: CoordinatorProc, secs: number): Promise<void> {
  const started = c.printed('gogrid-bench: profiling');
  process.kill(c.pid, 'SIGUSR2');
  await started;
  await sleep(secs * 1000);
  const written = c.printed('gogrid-bench: profile written');
  process.kill(c.pid, 'SIGUSR2');
  await written;
}

async function readProfile(file: string, rows: JobInfo[]): Promise<CoordinatorProfile> {
  const sql = SqlWindow.parse(JSON.parse(await readFile(`${file}.sql.json`, 'utf8')));
  const inWindow = rows.filter((j) => j.finishedAt && Date.parse(j.finishedAt) >= sql.window.start && Date.parse(j.finishedAt) <= sql.window.end).length;
  return coordinatorProfile(JSON.parse(await readFile(file, 'utf8')), sql, inWindow);
}
