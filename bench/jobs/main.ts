/**
 * The jobs suite (issue 3): dispatch latency with idle workers, tiny-job
 * throughput through one coordinator, model download against plain HTTPS,
 * and what an idle worker costs. Writes bench/results/jobs-<ISO date>.json.
 *
 *   npm run bench:jobs                         # full run, about 6 minutes
 *   npm run bench:jobs -- --quick              # smoke run, about 70 s: smaller, one repetition, not comparable
 *   npm run bench:jobs -- --only throughput --dist /tmp/other/dist   # A/B: another build's dist/
 *   npm run bench:jobs -- --only latency,throughput --coordinator-flags=--stack-trace-limit=0
 *   npm run bench:jobs -- --quick --only throughput --submit-batch 1 --submitters 8   # single-job submits
 *   npm run bench:jobs -- --only throughput --database "$GOGRID_TEST_PG_URL"   # coordinators on PostgreSQL (scripts/postgres.sh start)
 *
 * The coordinator and the `gogrid worker` run from dist/ (rebuilt first if
 * src/ is newer), so no tsx transpiling happens in a measured process; the
 * simulators (sim-worker.ts) load the workers from the same dist/.
 * The profiled run's CPU profile is kept beside the result file
 * (`jobs-<ISO date>.cpuprofile`, for Chrome DevTools or speedscope).
 * Everything runs on this machine: the coordinator, up to 50 workers with
 * their job processes, and the clients share its cores, so the throughput is
 * the machine's, and the coordinator's CPU per job says what one core of a
 * coordinator alone would do. It is a benchmark, not a test: nothing fails
 * on slow numbers. See BENCHMARKS.md.
 */
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { redactDatabaseUrl } from '../../src/coordinator/store/url.js';
import { loadAvg, machine, type Machine } from '../lib/machine.js';
import { progressLog, resultBase, runMain, writeResult } from '../lib/results.js';
import { range, round, type Range } from '../lib/stats.js';
import { ensureBuilt, Grid, shortPath, type Build } from './grid.js';
import { measureIdleWorker, type IdleResult } from './idle.js';
import { benchModelDownload, type ModelDownloadBench } from './models.js';
import { measureLatency, measureThroughput, writeBenchModels, type LatencyResult, type ThroughputResult } from './phases.js';

export const PHASES = ['latency', 'throughput', 'download', 'idle'] as const;
export type Phase = (typeof PHASES)[number];

export interface JobsBenchOptions {
  quick: boolean;
  /** Another build to measure (an A/B experiment). @default this checkout's dist/, rebuilt if stale */
  dist?: string;
  /** @default all of PHASES */
  only?: readonly Phase[];
  /** Node flags for every coordinator started (an A/B run). @default none */
  coordinatorFlags?: readonly string[];
  /** Overrides of the throughput runs' submit pattern (an A/B run against a build without batch submits). @default the config's */
  submit?: { submitBatch?: number; submitters?: number };
  /** Coordinators store on this PostgreSQL (each in a fresh schema) instead of in-memory PGlite. @default PGlite */
  postgresUrl?: string;
}

export interface JobsBenchConfig {
  quick: boolean;
  latency: { workers: number; jobs: number; repeats: number };
  throughput: { workers: number; slots: number; jobs: number; submitters: number; submitBatch: number; sims: number; repeats: number };
  /** The same slots total, two per worker. */
  twoSlots: { workers: number; slots: number } | null;
  /** One run submitting single jobs (no batches), as before batch submits existed. */
  singleSubmits: { submitters: number; submitBatch: 1 } | null;
  profileSecs: number | null;
  download: { sizeMiB: number; rounds: number };
  idle: { heartbeatSecs: number; settleSecs: number; windowSecs: number; afterJobSecs: number; warmWindowSecs: number };
}

export interface JobsBenchResult {
  suite: 'jobs';
  startedAt: string;
  durationSecs: number;
  machine: Machine;
  build: { distDir: string; how: Build['how']; coordinatorFlags: readonly string[] };
  /** Where the coordinators kept their state. */
  store: string;
  config: JobsBenchConfig;
  latency: LatencyResult[];
  throughput: ThroughputResult[];
  throughputTwoSlots: ThroughputResult | null;
  throughputSingleSubmits: ThroughputResult | null;
  /** A separate run with the coordinator under the CPU profiler: its rate is not comparable. */
  throughputProfiled: ThroughputResult | null;
  download: ModelDownloadBench | null;
  idle: IdleResult | null;
  summary: Summary;
}

/** The goals of issue 3, each over the repetitions: the median, and the range. */
export interface Summary {
  dispatchP50Ms: Range | null;
  dispatchP99Ms: Range | null;
  endToEndP50Ms: Range | null;
  jobsPerSec: Range | null;
  coordinatorCpuUsPerJob: Range | null;
  /** 1e6 / coordinator µs per job: what one core would sustain if workers and clients ran elsewhere. */
  jobsPerCoordinatorCoreSec: number | null;
  downloadRatio: number | null;
  /**
   * throughput: jobs/s measured on this machine, where workers and clients
   * share its cores with the coordinator; coordinatorCore: the same goal for
   * one coordinator core with them elsewhere (1e6 ÷ its CPU per job).
   */
  goals: { dispatchP50: boolean | null; throughput: boolean | null; coordinatorCore: boolean | null; download: boolean | null };
}

export function jobsBenchConfig(quick: boolean): JobsBenchConfig {
  return quick
    ? {
        quick,
        latency: { workers: 10, jobs: 100, repeats: 1 },
        throughput: { workers: 20, slots: 1, jobs: 400, submitters: 4, submitBatch: 100, sims: 2, repeats: 1 },
        twoSlots: null,
        singleSubmits: null,
        profileSecs: 2,
        download: { sizeMiB: 32, rounds: 1 },
        idle: { heartbeatSecs: 1, settleSecs: 1, windowSecs: 5, afterJobSecs: 1, warmWindowSecs: 5 },
      }
    : {
        quick,
        latency: { workers: 10, jobs: 300, repeats: 3 },
        throughput: { workers: 50, slots: 1, jobs: 3000, submitters: 4, submitBatch: 100, sims: 2, repeats: 3 },
        twoSlots: { workers: 25, slots: 2 },
        singleSubmits: { submitters: 8, submitBatch: 1 },
        profileSecs: 5,
        download: { sizeMiB: 200, rounds: 3 },
        idle: { heartbeatSecs: 30, settleSecs: 20, windowSecs: 65, afterJobSecs: 15, warmWindowSecs: 40 },
      };
}

export async function runJobsBench(opts: JobsBenchOptions, log: (line: string) => void): Promise<JobsBenchResult> {
  const startedAt = new Date();
  const defaults = jobsBenchConfig(opts.quick);
  const cfg: JobsBenchConfig = { ...defaults, throughput: { ...defaults.throughput, ...opts.submit } };
  const base = resultBase('jobs', startedAt, cfg.quick);
  const only = new Set(opts.only ?? PHASES);
  const build = await ensureBuilt(opts.dist);
  log(`jobs benchmark${cfg.quick ? ' (QUICK: small and single runs, not comparable with a full run)' : ''}; measured processes run from ${shortPath(build.distDir)} (${build.how})`);
  const grid = new Grid(build.distDir, opts.coordinatorFlags, opts.postgresUrl);
  const undo = grid.procs.closeOnSignal();
  const result: Omit<JobsBenchResult, 'summary' | 'durationSecs'> = {
    suite: 'jobs',
    startedAt: startedAt.toISOString(),
    machine: machine(),
    build: { distDir: shortPath(build.distDir), how: build.how, coordinatorFlags: opts.coordinatorFlags ?? [] },
    store: opts.postgresUrl === undefined ? 'PGlite (memory://)' : `PostgreSQL ${redactDatabaseUrl(opts.postgresUrl)}`,
    config: cfg,
    latency: [],
    throughput: [],
    throughputTwoSlots: null,
    throughputSingleSubmits: null,
    throughputProfiled: null,
    download: null,
    idle: null,
  };
  try {
    const { mlp, spread } = writeBenchModels(await grid.tempDir('models'));
    if (only.has('latency')) {
      for (let i = 1; i <= cfg.latency.repeats; i++) {
        log(`dispatch latency ${i}/${cfg.latency.repeats}: ${cfg.latency.workers} idle workers, ${cfg.latency.jobs} jobs one at a time`);
        result.latency.push(await measureLatency(grid, { mlpFile: mlp, ...cfg.latency }, log));
      }
    }
    if (only.has('throughput')) {
      const t = { mlpFile: mlp, spreadFile: spread, ...cfg.throughput };
      for (let i = 1; i <= t.repeats; i++) {
        log(`throughput ${i}/${t.repeats}: ${t.jobs} jobs, ${t.workers} workers × ${t.slots} slot, ${t.submitters} submitters of ${t.submitBatch} jobs per request`);
        result.throughput.push(await measureThroughput(grid, t, log));
      }
      if (cfg.twoSlots) {
        log(`throughput with ${cfg.twoSlots.slots} slots per worker: ${cfg.twoSlots.workers} workers`);
        result.throughputTwoSlots = await measureThroughput(grid, { ...t, ...cfg.twoSlots }, log);
      }
      if (cfg.singleSubmits) {
        log(`throughput with single-job submits: ${cfg.singleSubmits.submitters} submitters`);
        result.throughputSingleSubmits = await measureThroughput(grid, { ...t, ...cfg.singleSubmits }, log);
      }
      if (cfg.profileSecs !== null) {
        log(`throughput under the profiler (${cfg.profileSecs} s of the coordinator's CPU profile)`);
        const profileFile = join(await grid.tempDir('profile'), 'coordinator.cpuprofile');
        result.throughputProfiled = await measureThroughput(grid, { ...t, profileSecs: cfg.profileSecs, profileFile }, log);
        await copyFile(profileFile, `${base}.cpuprofile`);
        const p = result.throughputProfiled.profile!;
        log(`  coordinator main thread: ${p.busyUsPerJob} µs per job (${p.jobsInWindow} jobs in ${p.windowSecs} s); by area:`);
        for (const a of p.areas.slice(0, 8)) log(`    ${a.pct.toFixed(1).padStart(5)} %  ${String(a.usPerJob).padStart(5)} µs/job  ${a.area}`);
        // The profile hook times statements inside PGlite; on PostgreSQL they run in the server's processes.
        if (opts.postgresUrl !== undefined) log(`  SQL: run by PostgreSQL, not timed here (see the PostgreSQL µs/job above)`);
        else {
          log(`  SQL: ${p.sqlStatementsPerJob} statements, ${p.sqlUsPerJob} µs per job; the costliest:`);
          for (const q of p.sql.slice(0, 6)) log(`    ${String(q.usPerJob).padStart(5)} µs/job  ×${q.perJob}  ${q.sql.slice(0, 90)}`);
        }
      }
    }
    if (only.has('download')) {
      log(`model download: ${cfg.download.sizeMiB} MiB, ${cfg.download.rounds} rounds`);
      result.download = await benchModelDownload(cfg.download);
      log(`  cache ${result.download.cacheMiBs} MiB/s vs plain ${result.download.plainMiBs} MiB/s: ratio ${result.download.ratio}`);
    }
    if (only.has('idle')) {
      log(`idle worker: heartbeat ${cfg.idle.heartbeatSecs} s, windows ${cfg.idle.windowSecs} s and ${cfg.idle.warmWindowSecs} s`);
      result.idle = await measureIdleWorker(grid, { mlpFile: mlp, ...cfg.idle }, log);
    }
  } finally {
    undo();
    await grid.close();
  }
  const record: JobsBenchResult = {
    ...result,
    durationSecs: round((Date.now() - startedAt.getTime()) / 1000),
    machine: { ...result.machine, loadAvgAtEnd: loadAvg() },
    summary: summarize(result),
  };
  const file = `${base}.json`;
  await writeResult(file, record);
  log(`wrote ${shortPath(file)}`);
  return record;
}

function summarize(r: Omit<JobsBenchResult, 'summary' | 'durationSecs'>): Summary {
  const dispatchP50Ms = range(r.latency.map((l) => l.dispatchMs.p50));
  const jobsPerSec = range(r.throughput.map((t) => t.jobsPerSec));
  const coordinatorCpuUsPerJob = range(r.throughput.map((t) => t.coordinatorCpuUsPerJob));
  const jobsPerCoordinatorCoreSec = coordinatorCpuUsPerJob ? Math.round(1e6 / coordinatorCpuUsPerJob.median) : null;
  return {
    dispatchP50Ms,
    dispatchP99Ms: range(r.latency.map((l) => l.dispatchMs.p99)),
    endToEndP50Ms: range(r.latency.map((l) => l.endToEndMs.p50)),
    jobsPerSec,
    coordinatorCpuUsPerJob,
    jobsPerCoordinatorCoreSec,
    downloadRatio: r.download?.ratio ?? null,
    goals: {
      dispatchP50: dispatchP50Ms ? dispatchP50Ms.median <= 10 : null,
      throughput: jobsPerSec ? jobsPerSec.median >= 1000 : null,
      coordinatorCore: jobsPerCoordinatorCoreSec === null ? null : jobsPerCoordinatorCoreSec >= 1000,
      download: r.download ? r.download.ratio >= 0.8 : null,
    },
  };
}

function summaryTable(r: JobsBenchResult): string {
  const s = r.summary;
  const fmt = (x: Range | null, unit: string) => (x ? `${x.median} ${unit} (${x.min}–${x.max})` : '-');
  const goal = (ok: boolean | null) => (ok === null ? '' : ok ? '  goal met' : '  goal NOT met');
  const lines = [
    `store:                             ${r.store}`,
    `dispatch p50 (submit → running):   ${fmt(s.dispatchP50Ms, 'ms')}${goal(s.goals.dispatchP50)} (≤ 10 ms)`,
    `dispatch p99:                      ${fmt(s.dispatchP99Ms, 'ms')}`,
    `end to end p50 (→ succeeded):      ${fmt(s.endToEndP50Ms, 'ms')}`,
    `throughput on this machine:        ${fmt(s.jobsPerSec, 'jobs/s')}${goal(s.goals.throughput)} (≥ 1,000/s)`,
    `coordinator CPU per job:           ${fmt(s.coordinatorCpuUsPerJob, 'µs')} → ${s.jobsPerCoordinatorCoreSec ?? '-'} jobs/s per coordinator core${goal(s.goals.coordinatorCore)} (≥ 1,000/s, workers elsewhere)`,
  ];
  if (r.throughputTwoSlots) lines.push(`throughput, 2 slots per worker:    ${r.throughputTwoSlots.jobsPerSec} jobs/s, ${r.throughputTwoSlots.coordinatorCpuUsPerJob} µs coordinator CPU per job`);
  if (r.throughputSingleSubmits) {
    const t = r.throughputSingleSubmits;
    lines.push(`throughput, single-job submits:    ${t.jobsPerSec} jobs/s, ${t.coordinatorCpuUsPerJob} µs coordinator CPU per job`);
  }
  if (r.download) lines.push(`model download ${r.download.sizeMiB} MiB:           ${r.download.cacheMiBs} MiB/s vs plain ${r.download.plainMiBs} MiB/s = ${r.download.ratio}${goal(s.goals.download)} (≥ 0.8)`);
  if (r.idle) {
    const a = r.idle.noJobProcess;
    const b = r.idle.withWarmJobProcess;
    lines.push(
      `idle worker (heartbeat ${r.idle.heartbeatSecs} s):        ${a.workerRssMiB} MiB RSS, ${a.workerCpuUsPerSec} µs/s CPU (${a.workerCpuPct} % of a core)`,
      `  with its warm job process:       ${b.totalRssMiB} MiB RSS (job process ${b.jobProcessRssMiB}), ${b.totalCpuUsPerSec} µs/s CPU`,
    );
  }
  return lines.join('\n');
}

runMain('jobs', async () => {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      dist: { type: 'string' },
      only: { type: 'string' },
      'coordinator-flags': { type: 'string' },
      'submit-batch': { type: 'string' },
      submitters: { type: 'string' },
      database: { type: 'string' },
    },
  });
  if (values.database !== undefined && !/^postgres(ql)?:\/\//.test(values.database)) throw new Error(`--database takes a postgres:// URL (got ${values.database})`);
  const only = values.only?.split(',').map((p) => p.trim());
  const bad = only?.filter((p) => !(PHASES as readonly string[]).includes(p));
  if (bad?.length) throw new Error(`--only takes ${PHASES.join(', ')} (got ${bad.join(', ')})`);
  const coordinatorFlags = values['coordinator-flags']?.split(/\s+/).filter(Boolean);
  const int = (v: string | undefined, flag: string) => {
    if (v === undefined) return undefined;
    if (!/^[1-9]\d*$/.test(v)) throw new Error(`--${flag} takes a positive integer (got ${v})`);
    return Number(v);
  };
  const submit = { submitBatch: int(values['submit-batch'], 'submit-batch'), submitters: int(values.submitters, 'submitters') };
  const submitGiven = Object.fromEntries(Object.entries(submit).filter(([, v]) => v !== undefined));
  const options = { quick: values.quick ?? false, dist: values.dist, only: only as Phase[] | undefined, coordinatorFlags, submit: submitGiven, postgresUrl: values.database };
  const r = await runJobsBench(options, progressLog());
  process.stdout.write(`${summaryTable(r)}\n`);
});
