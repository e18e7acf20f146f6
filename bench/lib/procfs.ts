/**
 * What the suites read from Linux's /proc about their processes and the
 * machine: CPU time (nanosecond schedstat, clock ticks per thread, or clock
 * ticks for whole process trees), RSS, process state, the job processes under
 * a worker, the machine's busy share, the share other work took, and the
 * kernel's packet counters. Per-process fields come from
 * src/common/proc-stat.ts, the reader the polite worker's CPU meter uses.
 *
 *   const before = cpuUs(pid);  …  const usedUs = cpuUs(pid) - before;
 *   const kids = jobProcesses(workerPid);
 */
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { procStatFields } from '../../src/common/proc-stat.js';

/** USER_HZ, the unit of /proc's tick counts: 100 on Linux whatever the kernel's HZ. */
const CLOCK_TICK_US = 10_000;
/** /proc/PID/stat counts RSS in pages. */
const PAGE_KIB = 4;

export interface ProcStat {
  /** Field 3 of proc(5): R running, S sleeping, T stopped, … */
  state: string;
  ppid: number;
  /** utime + stime, all threads, in µs at clock-tick resolution. */
  cpuUs: number;
  /** cutime + cstime: children that ended and were waited for, in µs. */
  childrenCpuUs: number;
  rssKiB: number;
}

/** Null once the process is gone. */
export function procStat(pid: number): ProcStat | null {
  const f = procStatFields(pid);
  if (f === null) return null;
  return {
    state: f[0]!,
    ppid: Number(f[1]),
    cpuUs: (Number(f[11]) + Number(f[12])) * CLOCK_TICK_US,
    childrenCpuUs: (Number(f[13]) + Number(f[14])) * CLOCK_TICK_US,
    rssKiB: Number(f[21]) * PAGE_KIB,
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

/**
 * utime + stime in clock ticks, of the main thread (tid = pid) and of all
 * threads. Per thread, so not procStatFields: /proc/PID/stat of the main
 * thread's id sums the whole process.
 */
export function threadTicks(pid: number): { main: number; all: number } {
  let main = 0;
  let all = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended between the listing and the read
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    all += ticks;
    if (tid === String(pid)) main = ticks;
  }
  return { main, all };
}

/** Resident set size, without a round trip into the process; NaN once it is gone. */
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

export interface MachineTicks {
  busy: number;
  total: number;
}

/** The first line of /proc/stat: clock ticks of all cores, busy and in total (idle and iowait are not busy). */
export function machineTicks(): MachineTicks {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - fields[3]! - fields[4]!, total };
}

/** The machine's busy share between two readings, all cores: 100 % is every core busy. */
export function busyPct(a: MachineTicks, b: MachineTicks): number {
  return (100 * (b.busy - a.busy)) / Math.max(1, b.total - a.total);
}

/**
 * Cores' worth of CPU that processes outside the benchmark used over a
 * window: the machine's busy time less the benchmark's own. On a shared
 * machine this says how much of a run's spread came from other work.
 */
export function othersCores(a: MachineTicks, b: MachineTicks, oursCpuUs: number, wallSecs: number): number {
  return (busyPct(a, b) / 100) * availableParallelism() - oursCpuUs / (wallSecs * 1e6);
}

/**
 * Packets so far, all interfaces, as the kernel counts them (/proc/net/snmp):
 * UDP datagrams or TCP segments received. On loopback each packet is sent
 * and received once, so this counts each once.
 */
export function packetsIn(proto: 'udp' | 'tcp'): number {
  const prefix = proto === 'udp' ? 'Udp:' : 'Tcp:';
  const [names, values] = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.split(/\s+/));
  return Number(values![names!.indexOf(proto === 'udp' ? 'InDatagrams' : 'InSegs')]);
}
