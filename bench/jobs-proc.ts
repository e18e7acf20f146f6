/**
 * What the jobs benchmark reads from /proc about its processes and the
 * machine: CPU time (nanosecond schedstat, or clock ticks for whole process
 * trees), RSS, the job processes under a worker, the machine's busy share,
 * and the share other work took; plus the small statistics it reports.
 *
 *   const before = cpuUs(pid);  …  const usedUs = cpuUs(pid) - before;
 *   const kids = jobProcesses(workerPid);
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { procStatFields } from '../src/common/proc-stat.js';

const CLOCK_TICK_US = 10_000; // USER_HZ is 100 on Linux

interface ProcStat {
  ppid: number;
  /** utime + stime, all threads, in µs. */
  cpuUs: number;
  /** cutime + cstime: children that ended and were waited for, in µs. */
  childrenCpuUs: number;
  rssKiB: number;
}

function procStat(pid: number): ProcStat | null {
  const f = procStatFields(pid);
  if (f === null) return null;
  return {
    ppid: Number(f[1]),
    cpuUs: (Number(f[11]) + Number(f[12])) * CLOCK_TICK_US,
    childrenCpuUs: (Number(f[13]) + Number(f[14])) * CLOCK_TICK_US,
    rssKiB: Number(f[21]) * 4,
  };
}

/**
 * CPU time of one process, in µs, at nanosecond resolution: the sum of its
 * live threads' schedstat run times (/proc/PID/stat counts 10 ms ticks, too
 * coarse for an idle worker's few ms a minute). NaN once it is gone.
 */
export function cpuUs(pid: number): number {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return NaN;
  }
  let ns = 0;
  for (const tid of tids) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return ns / 1000;
}

export function rssKiB(pid: number): number {
  return procStat(pid)?.rssKiB ?? NaN;
}

/** The live descendants of `pid` (job processes under a worker), by a scan of /proc. */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = procStat(Number(name));
    if (s) parent.set(Number(name), s.ppid);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

/** The job processes among them (by their entry point), leaving out helpers such as tsx's esbuild service. */
export function jobProcesses(pid: number): number[] {
  return descendants(pid).filter((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('job-process');
    } catch {
      return false;
    }
  });
}

/** CPU of a process and everything under it, the ended-and-reaped children included (their time moves to the parent's cutime). */
export function treeCpuUs(pid: number): number {
  return [pid, ...descendants(pid)].reduce((sum, p) => {
    const s = procStat(p);
    return s ? sum + s.cpuUs + s.childrenCpuUs : sum;
  }, 0);
}

/** The first line of /proc/stat: clock ticks of all cores, busy and in total (idle and iowait are not busy). */
export function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - fields[3]! - fields[4]!, total };
}

export function busyPct(a: { busy: number; total: number }, b: { busy: number; total: number }): number {
  return (100 * (b.busy - a.busy)) / Math.max(1, b.total - a.total);
}

/**
 * Cores' worth of CPU that processes outside the benchmark used over a
 * window: the machine's busy time less the benchmark's own. On a shared
 * machine this says how much of a run's spread came from other work.
 */
export function othersCores(a: { busy: number; total: number }, b: { busy: number; total: number }, oursCpuUs: number, wallSecs: number): number {
  return round((busyPct(a, b) / 100) * availableParallelism() - oursCpuUs / (wallSecs * 1e6), 2);
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function round(x: number, digits = 1): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

/**
 * CPU of every process tree whose root is named `comm` (a server such as
 * PostgreSQL: its postmaster, live backends and the reaped ones).
 */
export function serverCpuUs(comm: string): number {
  const pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
  const named = new Set(pids.filter((p) => commOf(p) === comm));
  return [...named].filter((p) => !named.has(procStat(p)?.ppid ?? 0)).reduce((sum, p) => sum + treeCpuUs(p), 0);
}

function commOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}
