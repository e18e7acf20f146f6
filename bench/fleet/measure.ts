/**
 * Readings for the fleet suite: a process's CPU over an idle window (split
 * between its main thread and the rest), RSS, and the per-worker figures.
 *
 *   const w = await measureWindow(coordinator, sims, 60);
 *   const after = { sampledKiB: w.rssMedianKiB, settled: await settledMemory(coordinator, { reducerSecs: 10, unmapSecs: 2 }) };
 *   const row = { ...perWorker(n, connectSecs, w), ...memoryPerWorker(n, base, after) };
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { busyPct, machineTicks, rssKiB, threadTicks } from '../lib/procfs.js';
import type { Stats } from '../lib/rpc.js';
import { median } from '../lib/stats.js';

export interface Window {
  wallSecs: number;
  cpuUs: number;
  /**
   * Share of the CPU spent on the main (JavaScript) thread; the rest is V8's
   * helper threads (GC) and libuv's pool. From 10 ms clock ticks: NaN when none passed.
   */
  mainThreadPct: number;
  clientCpuUs: number;
  /** Messages the target received in the window (Stats.messagesIn). */
  messagesIn: number;
  rssMedianKiB: number;
  /** The whole machine's busy share over the window, all cores: shows whether other work competed. */
  machineBusyPct: number;
}

/** A server's cost for one fleet in one idle window. Per-worker figures divide by `workers`. */
export interface WindowOnly {
  workers: number;
  /** From the first connect to the N-th welcome (QUIC: the coordinator's N-th "worker online"). */
  connectSecs: number;
  windowSecs: number;
  /** Server CPU (user + system, all threads) per worker per second of the window. */
  cpuUsPerWorkerSec: number;
  /** The same CPU as a share of one core. */
  cpuPctOfCore: number;
  mainThreadPct: number;
  /** The simulators' CPU per worker per second: the workers' side of the same traffic. */
  clientCpuUsPerWorkerSec: number;
  machineBusyPct: number;
  /**
   * What arrived, per worker per second (QUIC: datagrams; TLS: frames).
   * Heartbeats alone make 1 / interval; fewer means late timers on a busy
   * machine, and a per-worker CPU figure that is low for that reason.
   */
  messagesInPerWorkerSec: number;
  /** Server CPU per message received: the cost of one heartbeat, fixed costs included. */
  cpuUsPerMessage: number;
}

export interface Memory {
  /** RSS settled (settledMemory) with 0 workers and with N; per worker: the difference over N. */
  rssBaseMiB: number;
  rssMiB: number;
  rssKiBPerWorker: number;
  /** Without forcing anything: median RSS sampled during the window, minus the same at 0 workers. */
  rssSampledKiBPerWorker: number;
  /** Settled: the V8 heap's share, and off-heap memory V8 knows of (Buffers, native objects that report it). */
  heapKiBPerWorker: number;
  externalKiBPerWorker: number;
}

export type Measure = WindowOnly & Memory;

/** CPU of `target` and of the clients over `secs`, RSS sampled every second. */
export async function measureWindow(target: { pid: number; stats(): Promise<Stats> }, clients: { stats(): Promise<Stats> }[], secs: number): Promise<Window> {
  const [t0, ...c0] = await Promise.all([target.stats(), ...clients.map((c) => c.stats())]);
  const threads0 = threadTicks(target.pid);
  const machine0 = machineTicks();
  const started = performance.now();
  const rss: number[] = [];
  const sampler = setInterval(() => rss.push(rssKiB(target.pid)), 1000);
  await sleep(secs * 1000);
  clearInterval(sampler);
  const [t1, ...c1] = await Promise.all([target.stats(), ...clients.map((c) => c.stats())]);
  const threads1 = threadTicks(target.pid);
  const machine1 = machineTicks();
  const all = threads1.all - threads0.all;
  return {
    wallSecs: (performance.now() - started) / 1000,
    cpuUs: t1!.cpuUs - t0!.cpuUs,
    mainThreadPct: all > 0 ? (100 * (threads1.main - threads0.main)) / all : NaN,
    clientCpuUs: c1.reduce((sum, s, i) => sum + s.cpuUs - c0[i]!.cpuUs, 0),
    messagesIn: t1!.messagesIn - t0!.messagesIn,
    rssMedianKiB: median(rss.length ? rss : [rssKiB(target.pid)]),
    machineBusyPct: busyPct(machine0, machine1),
  };
}

export function perWorker(n: number, connectSecs: number, w: Window): WindowOnly {
  return {
    workers: n,
    connectSecs,
    windowSecs: w.wallSecs,
    cpuUsPerWorkerSec: w.cpuUs / (n * w.wallSecs),
    cpuPctOfCore: (100 * w.cpuUs) / (w.wallSecs * 1e6),
    mainThreadPct: w.mainThreadPct,
    clientCpuUsPerWorkerSec: w.clientCpuUs / (n * w.wallSecs),
    machineBusyPct: w.machineBusyPct,
    messagesInPerWorkerSec: w.messagesIn / (n * w.wallSecs),
    cpuUsPerMessage: w.messagesIn > 0 ? w.cpuUs / w.messagesIn : NaN,
  };
}

export interface MemoryReading {
  /** RSS as the process held it, without forcing anything. */
  sampledKiB: number;
  /** After settledMemory(). */
  settled: Stats;
}

/**
 * Memory as it settles when the process is left alone, read without waiting
 * minutes for it: a full GC; V8's memory reducer, which about 8 s after a GC
 * compacts and returns pages a forced GC keeps (60 MB of a fresh
 * coordinator's start-up); another GC; the background unmapping after it.
 * Read any earlier and the baseline holds memory the later reading does not.
 */
export async function settledMemory(target: { gc(): Promise<Stats>; stats(): Promise<Stats> }, wait: SettleWait): Promise<Stats> {
  await target.gc();
  await sleep(wait.reducerSecs * 1000);
  await target.gc();
  await sleep(wait.unmapSecs * 1000);
  return target.stats();
}

/** About 8 s for V8's memory reducer to act after a GC, a second or two for the unmapping thread. */
export interface SettleWait {
  reducerSecs: number;
  unmapSecs: number;
}

export function memoryPerWorker(n: number, base: MemoryReading, withN: MemoryReading): Memory {
  return {
    rssBaseMiB: base.settled.rssKiB / 1024,
    rssMiB: withN.settled.rssKiB / 1024,
    rssKiBPerWorker: (withN.settled.rssKiB - base.settled.rssKiB) / n,
    rssSampledKiBPerWorker: (withN.sampledKiB - base.sampledKiB) / n,
    heapKiBPerWorker: (withN.settled.heapUsedKiB - base.settled.heapUsedKiB) / n,
    externalKiBPerWorker: (withN.settled.externalKiB - base.settled.externalKiB) / n,
  };
}
