/**
 * What an idle worker costs its machine: one `gogrid worker` process from
 * dist/, connected and heartbeating, measured from /proc over a window;
 * first with no job process, then right after a job, while the warm job
 * process waits (up to 60 s) for the next one.
 *
 *   const idle = await measureIdleWorker(grid, { mlpFile, heartbeatSecs: 30, settleSecs: 20, windowSecs: 65, afterJobSecs: 15, warmWindowSecs: 40 }, log);
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { JobInfo } from '../../src/protocol/index.js';
import { busyPct, cpuUs, jobProcesses, machineTicks, rssKiB } from '../lib/procfs.js';
import { median, round } from '../lib/stats.js';
import type { Grid } from './grid.js';
import { mlpJob } from './phases.js';

type Log = (line: string) => void;

export interface IdleWindow {
  windowSecs: number;
  /** The worker process alone: CPU as a share of one core and in µs per second, RSS median and max. */
  workerCpuPct: number;
  workerCpuUsPerSec: number;
  workerRssMiB: number;
  workerRssMaxMiB: number;
  /** Its job process (the warm one), when one is alive; zero when none is. */
  jobProcesses: number;
  jobProcessCpuUsPerSec: number;
  jobProcessRssMiB: number;
  /** Worker and job process together. */
  totalRssMiB: number;
  totalCpuUsPerSec: number;
  machineBusyPct: number;
}

export interface IdleResult {
  heartbeatSecs: number;
  /** Connected, never ran a job: no job process exists. */
  noJobProcess: IdleWindow;
  /** After one job, while its warm job process idles. */
  withWarmJobProcess: IdleWindow;
}

const Workers = z.array(z.object({ state: z.string() }));

export async function measureIdleWorker(
  grid: Grid,
  opts: { mlpFile: string; heartbeatSecs: number; windowSecs: number; warmWindowSecs: number; settleSecs: number; afterJobSecs: number },
  log: Log,
): Promise<IdleResult> {
  const c = await grid.coordinator({ heartbeatSecs: opts.heartbeatSecs });
  try {
    const sha256 = await c.api.addModel(opts.mlpFile, 'mlp.onnx');
    const token = await c.api.createToken(1);
    const worker = grid.worker(['--coordinator', `127.0.0.1:${c.port}`, '--token', token, '--data', await grid.tempDir('idle-worker')]);
    try {
      while (!(await c.api.call('GET', '/v1/workers', Workers)).some((w) => w.state === 'online')) {
        if (worker.exitCode !== null) throw new Error(`gogrid worker exited (${worker.exitCode}) before it came online`);
        await sleep(100);
      }
      // Past the start-up: hardware probes, JIT, and V8's memory reducer,
      // which runs one full GC (~100 ms here) some 15 s after activity ends.
      await sleep(opts.settleSecs * 1000);
      const noJobProcess = await window(worker.pid!, opts.windowSecs);
      log(`  idle worker, no job process: ${noJobProcess.workerCpuUsPerSec} µs/s CPU, ${noJobProcess.workerRssMiB} MiB RSS`);

      let job = await c.api.call('POST', '/v1/jobs', JobInfo, mlpJob(sha256));
      while (!['succeeded', 'failed', 'canceled'].includes(job.state)) job = await c.api.call('GET', `/v1/jobs/${job.id}?wait=20`, JobInfo);
      if (job.state !== 'succeeded') throw new Error(`the idle worker's job ${job.state}: ${job.error?.message ?? ''}`);
      // The same memory reducer, after the job; the job process lives 60 s from its job's end.
      await sleep(opts.afterJobSecs * 1000);
      const withWarmJobProcess = await window(worker.pid!, opts.warmWindowSecs);
      log(
        `  idle worker + warm job process: worker ${withWarmJobProcess.workerCpuUsPerSec} µs/s, ${withWarmJobProcess.workerRssMiB} MiB; job process ${withWarmJobProcess.jobProcessCpuUsPerSec} µs/s, ${withWarmJobProcess.jobProcessRssMiB} MiB`,
      );
      return { heartbeatSecs: opts.heartbeatSecs, noJobProcess, withWarmJobProcess };
    } finally {
      await grid.procs.stop(worker);
    }
  } finally {
    await c.stop();
  }
}

/** CPU over `secs` and RSS sampled each second, of the worker and of whatever job process lives under it. */
async function window(pid: number, secs: number): Promise<IdleWindow> {
  const children = () => jobProcesses(pid);
  const kids0 = new Map(children().map((p) => [p, cpuUs(p)]));
  const worker0 = cpuUs(pid);
  const m0 = machineTicks();
  const t0 = performance.now();
  const rss: number[] = [];
  const kidRss: number[] = [];
  const sample = () => {
    rss.push(rssKiB(pid));
    kidRss.push(children().reduce((sum, p) => sum + rssKiB(p), 0));
  };
  sample();
  const timer = setInterval(sample, 1000);
  await sleep(secs * 1000);
  clearInterval(timer);
  const wall = (performance.now() - t0) / 1000;
  const worker = cpuUs(pid) - worker0;
  // Only processes alive at both ends count: a job process that exits mid-window would lose its time to the worker's cutime.
  const kids = [...kids0].filter(([p]) => Number.isFinite(cpuUs(p)));
  const kidCpu = kids.reduce((sum, [p, before]) => sum + cpuUs(p) - before, 0);
  const mib = (kib: number) => round(kib / 1024);
  const workerRss = median(rss);
  const jobRss = median(kidRss);
  return {
    windowSecs: round(wall, 1),
    workerCpuPct: round((100 * worker) / (wall * 1e6), 3),
    workerCpuUsPerSec: Math.round(worker / wall),
    workerRssMiB: mib(workerRss),
    workerRssMaxMiB: mib(Math.max(...rss)),
    jobProcesses: kids.length,
    jobProcessCpuUsPerSec: Math.round(kidCpu / wall),
    jobProcessRssMiB: mib(jobRss),
    totalRssMiB: mib(workerRss + jobRss),
    totalCpuUsPerSec: Math.round((worker + kidCpu) / wall),
    machineBusyPct: round(busyPct(m0, machineTicks())),
  };
}
