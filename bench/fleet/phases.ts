/**
 * The fleet suite: what one coordinator pays per connected worker.
 *
 *   const result = await runFleet(fleetConfig({ quick: false }), console.error, 'bench/results/fleet-…');
 *
 * For each fleet size N a fresh `gogrid coordinator` child (memory:// store)
 * enrolls N workers held by a few simulator processes (sim-worker.ts:
 * shipped WorkerAgents, one shared UDP socket per process), then sits through
 * an idle window of whole heartbeat intervals. Its own CPU (process.cpuUsage,
 * all threads) and settled RSS (measure.ts, minus the same reading with 0
 * workers) are divided by N, and a line fitted over the sizes splits each
 * into a fixed and a per-worker part. Then the same workers reconnect over
 * the coordinator's TLS-on-TCP transport and the window is measured again.
 * The baseline, in the same run: the same N identities over node:tls with
 * the same frames to tls-server.ts.
 *
 * At one size (1000 by default) the same coordinator then runs
 * Error.stackTraceLimit = 0, a CPU profile of the idle window, and a 10 s
 * QUIC keep-alive (reconnecting under a sampling heap profiler).
 * Detection of a killed worker is timed on small coordinators of their own
 * while the rest runs.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadOrCreateCa, serverNames } from '../../src/coordinator/ca.js';
import { issueServerCert } from '../../src/transport/pki.js';
import { Procs } from '../lib/procs.js';
import { Done, type RpcChild, type Stats } from '../lib/rpc.js';
import { fitLine, fmt } from '../lib/stats.js';
import { Enrolled, HellosAt, Listening, Online, type SimCommand, type TlsServerCommand } from './commands.js';
import { createToken, fleetCoordinator, type FleetCoordinator } from './coordinator.js';
import { firstPaint, operatorViews } from './dashboard.js';
import { armKill, type KillOptions, type KillResult } from './kill.js';
import { measureWindow, memoryPerWorker, perWorker, settledMemory, type Measure, type SettleWait, type WindowOnly } from './measure.js';
import { summarizeHeapProfile, summarizeProfile, type HeapSummary, type ProfileSummary } from './profile.js';

export interface FleetConfig {
  quick: boolean;
  sizes: number[];
  /** The size at which the variants and profiles run. */
  variantN: number;
  heartbeatIntervalSecs: number;
  heartbeatTimeoutSecs: number;
  /**
   * Idle windows are whole heartbeat intervals, so each worker sends the same
   * number of heartbeats in one whatever its timer's phase: two for each
   * fleet size, one for the TLS baseline, the profile and the variants.
   */
  windowSecs: number;
  shortWindowSecs: number;
  /** How long settledMemory() waits (see measure.ts); the CPU with 0 workers is read during the reducer's wait. */
  memorySettle: SettleWait;
  /** TLS baseline: quiet time between connecting and its window (it has no first-heartbeat effect to wait out). */
  settleSecs: number;
  keepAliveMs: number;
  sims: number;
  /** Per simulator: connections being set up at once, closed at once, enrollments in flight at once. */
  connectConcurrency: number;
  stopConcurrency: number;
  enrollConcurrency: number;
  /** Workers in the process that is killed. */
  probeWorkers: number;
  /** A second kill test with short timeouts, to show detection tracks heartbeat_timeout_secs. */
  shortTimeout: { intervalSecs: number; timeoutSecs: number } | null;
  profileIntervalUs: number;
  heapSamplingBytes: number;
  /** Workers enrolled (not connected) for the operator's views at scale; null: skipped. */
  viewsAt: number | null;
}

export function fleetConfig(opts: { quick: boolean; sizes?: number[]; viewsAt?: number | null }): FleetConfig {
  const sizes = [...new Set(opts.sizes ?? (opts.quick ? [50] : [100, 500, 1000, 2000]))].sort((a, b) => a - b);
  const variantN = sizes.includes(1000) ? 1000 : ([...sizes].reverse().find((n) => n <= 1000) ?? sizes[0]!);
  const interval = opts.quick ? 1 : 30;
  return {
    quick: opts.quick,
    sizes,
    variantN,
    heartbeatIntervalSecs: interval,
    heartbeatTimeoutSecs: interval * 3,
    windowSecs: 2 * interval,
    shortWindowSecs: interval,
    // Quick mode does not wait for it: its memory figures are not settled.
    memorySettle: opts.quick ? { reducerSecs: 1, unmapSecs: 0.2 } : { reducerSecs: 10, unmapSecs: 2 },
    settleSecs: opts.quick ? 1 : 5,
    // Scaled with quick mode's 1 s heartbeat: 10 s would be past its 3 s idle timeout.
    keepAliveMs: opts.quick ? 500 : 10_000,
    sims: 3,
    connectConcurrency: 16,
    stopConcurrency: 48,
    enrollConcurrency: 4,
    probeWorkers: 4,
    shortTimeout: opts.quick ? null : { intervalSecs: 1, timeoutSecs: 3 },
    profileIntervalUs: 1000,
    heapSamplingBytes: 16 * 1024,
    viewsAt: opts.viewsAt !== undefined ? opts.viewsAt : opts.quick ? 200 : 10_000,
  };
}

export interface FleetRow {
  n: number;
  enrollSecs: number;
  /** The coordinator's CPU with every worker enrolled and none connected. */
  idleCpuUsPerSecAt0: number;
  quic: Measure & { warnings: number };
  /** The same coordinator and identities over its TLS-on-TCP transport (for networks that drop UDP). */
  tcp: Measure;
  /** The dashboard's summary, a page of its worker list, and a /metrics scrape, with the QUIC fleet connected. */
  views: Awaited<ReturnType<typeof operatorViews>>;
  tls: Measure;
  /** QUIC coordinator / TLS baseline, and TCP coordinator / QUIC coordinator, per worker, same run. */
  ratio: { cpu: number; rss: number; tcpCpu: number; tcpRss: number };
}

export interface Variants {
  n: number;
  /** Same coordinator and fleet as the row's window, Error.stackTraceLimit = 0 (what --stack-trace-limit=0 sets). */
  stackTraceLimit0: WindowOnly;
  /** Fleet reconnected with a QUIC keep-alive on every worker. */
  keepAlive: WindowOnly & { keepAliveMs: number };
}

export interface Profiles {
  cpu: ProfileSummary & { file: string; windowSecs: number; cpuUsPerWorkerSecProfiled: number };
  /** Live once the fleet is steady (after its first heartbeat and a full GC), by allocating stack; per worker: liveKiB / n. */
  heap: HeapSummary & { file: string; kiBPerWorker: number };
}

export interface CostFit {
  /** Idle CPU: total µs/s = fixedCpuUsPerSec + N × cpuUsPerWorkerSec. */
  fixedCpuUsPerSec: number;
  cpuUsPerWorkerSec: number;
  /** Settled RSS = baseMiB + N × kiBPerWorker. */
  baseMiB: number;
  kiBPerWorker: number;
}

/** The operator's views with many workers enrolled (not connected), and the dashboard's first paint in Chromium. */
export interface ScaleViews {
  n: number;
  enrollSecs: number;
  views: FleetRow['views'];
  firstPaint: { ms: number; pageBytes: number };
}

export interface FleetResult {
  scaleViews: ScaleViews | null;
  rows: FleetRow[];
  variants: Variants | null;
  profiles: Profiles | null;
  kill: KillResult[];
  /** Over all sizes (null with one): what each server costs with 0 workers and per added worker. */
  fit: { quic: CostFit | null; tcp: CostFit | null; tls: CostFit | null };
}

const SIM_WORKER = join(import.meta.dirname, 'sim-worker.ts');

interface Ctx {
  cfg: FleetConfig;
  procs: Procs;
  root: string;
  coordDir: string;
  sims: RpcChild<SimCommand>[];
  log: (line: string) => void;
  artifactBase: string;
}

/** `artifactBase`: path prefix for the profiles (`.cpuprofile`, `.heapprofile`). */
export async function runFleet(cfg: FleetConfig, log: (line: string) => void, artifactBase: string): Promise<FleetResult> {
  const procs = new Procs();
  const undo = procs.closeOnSignal();
  try {
    const root = await procs.tempDir('fleet');
    const sims = Array.from({ length: cfg.sims }, (_, i) => procs.fork<SimCommand>(SIM_WORKER, `sim ${i + 1}`));
    const ctx: Ctx = { cfg, procs, root, coordDir: join(root, 'coordinator'), sims, log, artifactBase };
    const result: FleetResult = { scaleViews: null, rows: [], variants: null, profiles: null, kill: [], fit: { quic: null, tcp: null, tls: null } };
    // A killed worker takes heartbeat_timeout_secs (90 s) to be noticed. Each
    // kill test has a small coordinator of its own, armed (started, its
    // workers killed) between two measurements and awaited at the end: an
    // idle coordinator holding four dead connections costs the windows
    // meanwhile nothing measurable, and the run saves the wait.
    const kills = [
      { label: 'default', intervalSecs: cfg.heartbeatIntervalSecs, timeoutSecs: cfg.heartbeatTimeoutSecs },
      ...(cfg.shortTimeout ? [{ label: 'short', ...cfg.shortTimeout }] : []),
    ];
    const armed: Promise<KillResult>[] = [];
    // Made before any coordinator starts, so the TLS servers can load it while one is starting.
    await mkdir(ctx.coordDir, { recursive: true, mode: 0o700 });
    await loadOrCreateCa(ctx.coordDir);
    for (const n of cfg.sizes) {
      const tlsReady = startTlsServer(ctx, n);
      // Awaited below; a failure meanwhile must not surface as an unhandled rejection.
      tlsReady.catch(() => undefined);
      const q = await quicPhase(ctx, n);
      if (q.extras) ({ variants: result.variants, profiles: result.profiles } = q.extras);
      const k = kills.shift();
      if (k) armed.push((await armKill({ ...killCtx(ctx), ...k })).noticed);
      const tls = await tlsPhase(ctx, n, tlsReady);
      result.rows.push({
        n,
        enrollSecs: q.enrollSecs,
        idleCpuUsPerSecAt0: q.idleCpuUsPerSecAt0,
        quic: q.measure,
        tcp: q.tcp,
        views: q.views,
        tls,
        ratio: {
          cpu: q.measure.cpuUsPerWorkerSec / tls.cpuUsPerWorkerSec,
          rss: q.measure.rssKiBPerWorker / tls.rssKiBPerWorker,
          tcpCpu: q.tcp.cpuUsPerWorkerSec / q.measure.cpuUsPerWorkerSec,
          tcpRss: q.tcp.rssKiBPerWorker / q.measure.rssKiBPerWorker,
        },
      });
    }
    for (const k of kills) armed.push((await armKill({ ...killCtx(ctx), ...k })).noticed);
    result.kill = await Promise.all(armed);
    // Last: it enrolls the simulators' identities anew, elsewhere.
    if (cfg.viewsAt !== null) result.scaleViews = await viewsAtScale(ctx, cfg.viewsAt);
    result.fit = { quic: costFit(result.rows.map((r) => r.quic)), tcp: costFit(result.rows.map((r) => r.tcp)), tls: costFit(result.rows.map((r) => r.tls)) };
    return result;
  } finally {
    undo();
    await procs.close();
  }
}

function killCtx(ctx: Ctx): Pick<KillOptions, 'procs' | 'root' | 'workers' | 'log'> {
  return { procs: ctx.procs, root: ctx.root, workers: ctx.cfg.probeWorkers, log: ctx.log };
}

function costFit(rows: Measure[]): CostFit | null {
  const cpu = fitLine(rows.map((m) => ({ x: m.workers, y: m.cpuUsPerWorkerSec * m.workers })));
  const rss = fitLine(rows.map((m) => ({ x: m.workers, y: m.rssMiB })));
  if (!cpu || !rss) return null;
  return { fixedCpuUsPerSec: cpu.intercept, cpuUsPerWorkerSec: cpu.slope, baseMiB: rss.intercept, kiBPerWorker: rss.slope * 1024 };
}

// ---------------------------------------------------------------- QUIC: the coordinator under test

interface Fleet {
  connect(keepAliveMs: number | null, transport?: 'quic' | 'tcp'): Promise<number>;
  disconnect(): Promise<void>;
}

async function quicPhase(
  ctx: Ctx,
  n: number,
): Promise<{ enrollSecs: number; idleCpuUsPerSecAt0: number; measure: FleetRow['quic']; tcp: Measure; views: FleetRow['views']; extras: { variants: Variants; profiles: Profiles } | null }> {
  const { cfg, procs, sims, log } = ctx;
  const label = `quic N=${n}`;
  log(`${label}: starting the coordinator`);
  const c = await fleetCoordinator(procs, {
    dataDir: ctx.coordDir,
    label: `N=${n}`,
    heartbeatIntervalSecs: cfg.heartbeatIntervalSecs,
    heartbeatTimeoutSecs: cfg.heartbeatTimeoutSecs,
  });
  try {
    const token = await createToken(ctx.coordDir, n);
    const enrollSecs = await enrollFleet(ctx, c.port, token, n);
    log(`${label}: enrolled in ${enrollSecs.toFixed(1)} s`);

    // settledMemory() by hand, to read the CPU with 0 workers while the memory reducer runs.
    await c.gc();
    const zero = await measureWindow(c, [], cfg.memorySettle.reducerSecs);
    const base = { sampledKiB: zero.rssMedianKiB, settled: await settledMemory(c, { reducerSecs: 0, unmapSecs: cfg.memorySettle.unmapSecs }) };

    const fleet = fleetOf(ctx, c, n);
    const connectSecs = await fleet.connect(null);
    log(`${label}: ${n} workers online in ${connectSecs.toFixed(1)} s; idle window ${cfg.windowSecs} s`);
    await steady(c, cfg);
    const w = await measureWindow(c, sims, cfg.windowSecs);
    const after = { sampledKiB: w.rssMedianKiB, settled: await settledMemory(c, cfg.memorySettle) };
    const measure = { ...perWorker(n, connectSecs, w), ...memoryPerWorker(n, base, after), warnings: c.warnings.count };
    log(`${label}: ${fmt(measure.cpuUsPerWorkerSec)} µs/worker/s, ${fmt(measure.rssKiBPerWorker)} KiB/worker`);
    // After the window, so the reads do not land in it.
    const views = await operatorViews(c, ctx.coordDir);
    log(`${label}: dashboard summary ${fmt(views.fleet.ms)} ms (${views.fleet.bytes} B), /metrics ${fmt(views.metrics.ms)} ms (${views.metrics.bytes} B)`);

    const extras = n === cfg.variantN ? await variantsAndProfiles(ctx, c, fleet, n, connectSecs) : null;
    await fleet.disconnect();

    // The same workers again, over TLS on TCP, against the same coordinator and 0-worker reading.
    const tcpLabel = `tcp N=${n}`;
    await c.gc();
    const tcpConnect = await fleet.connect(null, 'tcp');
    log(`${tcpLabel}: ${n} workers online in ${tcpConnect.toFixed(1)} s; idle window ${cfg.windowSecs} s`);
    await steady(c, cfg);
    const wt = await measureWindow(c, sims, cfg.windowSecs);
    const tcp = { ...perWorker(n, tcpConnect, wt), ...memoryPerWorker(n, base, { sampledKiB: wt.rssMedianKiB, settled: await settledMemory(c, cfg.memorySettle) }) };
    log(`${tcpLabel}: ${fmt(tcp.cpuUsPerWorkerSec)} µs/worker/s, ${fmt(tcp.rssKiBPerWorker)} KiB/worker`);
    await fleet.disconnect();
    return { enrollSecs, idleCpuUsPerSecAt0: zero.cpuUs / zero.wallSecs, measure, tcp, views, extras };
  } finally {
    await c.stop();
  }
}

/**
 * Waits until a freshly connected fleet idles as it will for days. Each
 * worker's first heartbeat, one interval after its welcome, releases what its
 * handshake left behind (about 70 KiB); collecting that, and the connection
 * storm's garbage, would otherwise land in the window (measured: a third more
 * CPU, most of it on V8's GC threads).
 */
async function steady(c: FleetCoordinator, cfg: FleetConfig): Promise<void> {
  await settledMemory(c, { ...cfg.memorySettle, reducerSecs: Math.max(cfg.memorySettle.reducerSecs, cfg.heartbeatIntervalSecs) });
}

/** Runs after the row's window, on the same coordinator with the same fleet connected. */
async function variantsAndProfiles(ctx: Ctx, c: FleetCoordinator, fleet: Fleet, n: number, connectSecs: number): Promise<{ variants: Variants; profiles: Profiles }> {
  const { cfg, sims, log } = ctx;
  const label = `quic N=${n}`;

  log(`${label}: Error.stackTraceLimit = 0, idle window ${cfg.shortWindowSecs} s`);
  await c.call({ type: 'stack-trace-limit', value: 0 });
  const stackTraceLimit0 = perWorker(n, connectSecs, await measureWindow(c, sims, cfg.shortWindowSecs));
  await c.call({ type: 'stack-trace-limit', value: 10 });

  log(`${label}: CPU profile over ${cfg.shortWindowSecs} s`);
  const cpuFile = `${ctx.artifactBase}.cpuprofile`;
  await c.call({ type: 'profile-start', intervalUs: cfg.profileIntervalUs });
  const profiled = await measureWindow(c, sims, cfg.shortWindowSecs);
  await c.call({ type: 'profile-stop', path: cpuFile });
  const cpu = {
    ...summarizeProfile(JSON.parse(await readFile(cpuFile, 'utf8')), 15),
    file: cpuFile,
    windowSecs: profiled.wallSecs,
    cpuUsPerWorkerSecProfiled: profiled.cpuUs / (n * profiled.wallSecs),
  };

  log(`${label}: reconnecting with a ${cfg.keepAliveMs} ms keep-alive, heap profiler on until the fleet is steady`);
  await fleet.disconnect();
  await c.gc();
  const heapFile = `${ctx.artifactBase}.heapprofile`;
  await c.call({ type: 'heap-start', intervalBytes: cfg.heapSamplingBytes });
  const kaConnect = await fleet.connect(cfg.keepAliveMs);
  await steady(c, cfg);
  await c.call({ type: 'heap-stop', path: heapFile });
  const heapSummary = summarizeHeapProfile(JSON.parse(await readFile(heapFile, 'utf8')), 15);
  const heap = { ...heapSummary, file: heapFile, kiBPerWorker: heapSummary.liveKiB / n };
  log(`${label}: keep-alive ${cfg.keepAliveMs} ms, idle window ${cfg.shortWindowSecs} s`);
  const keepAlive = { ...perWorker(n, kaConnect, await measureWindow(c, sims, cfg.shortWindowSecs)), keepAliveMs: cfg.keepAliveMs };
  return { variants: { n, stackTraceLimit0, keepAlive }, profiles: { cpu, heap } };
}

/** The simulators' workers as one fleet on coordinator `c`; connect resolves with seconds to the n-th "worker online". */
function fleetOf(ctx: Ctx, c: FleetCoordinator, n: number): Fleet {
  let online = 0;
  let offline = 0;
  return {
    async connect(keepAliveMs, transport = 'quic') {
      const t0 = Date.now();
      await Promise.all(ctx.sims.map((s) => s.call({ type: 'quic', keepAliveMs, concurrency: ctx.cfg.connectConcurrency, transport }, Online)));
      online += n;
      return ((await c.onlineAt(online)) - t0) / 1000;
    },
    async disconnect() {
      await Promise.all(ctx.sims.map((s) => s.call({ type: 'stop', concurrency: ctx.cfg.stopConcurrency }, Done)));
      offline += n;
      await c.offlineAt(offline);
    },
  };
}

/**
 * The dashboard and /metrics with `n` workers enrolled on a coordinator of
 * their own. Enrolled, not connected: two cores cannot hold 10,000 simulated
 * workers; the views read the registry either way (an online worker costs
 * them one more lookup in the sessions).
 */
async function viewsAtScale(ctx: Ctx, n: number): Promise<ScaleViews> {
  const dataDir = join(ctx.root, `views-${n}`);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const c = await fleetCoordinator(ctx.procs, { dataDir, label: `views N=${n}`, heartbeatIntervalSecs: ctx.cfg.heartbeatIntervalSecs, heartbeatTimeoutSecs: ctx.cfg.heartbeatTimeoutSecs });
  try {
    const enrollSecs = await enrollFleet(ctx, c.port, await createToken(dataDir, n), n, `views-${n}`);
    ctx.log(`views N=${n}: enrolled in ${enrollSecs.toFixed(1)} s`);
    const views = await operatorViews(c, dataDir);
    const paint = await firstPaint(c, dataDir);
    ctx.log(`views N=${n}: dashboard first paint ${fmt(paint.ms)} ms (${fmt(paint.pageBytes / 1024)} KiB), summary ${fmt(views.fleet.ms)} ms, /metrics ${fmt(views.metrics.ms)} ms`);
    return { n, enrollSecs, views, firstPaint: paint };
  } finally {
    await c.stop();
  }
}

async function enrollFleet(ctx: Ctx, port: number, token: string, n: number, under = 'workers'): Promise<number> {
  const started = performance.now();
  const dirs = Array.from({ length: n }, (_, i) => join(ctx.root, under, String(i)));
  await Promise.all(
    ctx.sims.map((s, j) =>
      s.call(
        {
          type: 'enroll',
          coordinator: { host: '127.0.0.1', port },
          token,
          dirs: dirs.filter((_, i) => i % ctx.sims.length === j),
          concurrency: ctx.cfg.enrollConcurrency,
        },
        Enrolled,
      ),
    ),
  );
  return (performance.now() - started) / 1000;
}

// ---------------------------------------------------------------- TLS: the baseline

interface TlsServer {
  rpc: RpcChild<TlsServerCommand>;
  port: number;
  target: { pid: number; stats(): Promise<Stats>; gc(): Promise<Stats> };
  base: { sampledKiB: number; settled: Stats };
}

/**
 * Forks the baseline server and takes its settled 0-connection reading. Runs
 * while the coordinator of the same size starts and enrolls (nothing is
 * measured then), and then idles at no cost until its turn.
 */
async function startTlsServer(ctx: Ctx, n: number): Promise<TlsServer> {
  const ca = await loadOrCreateCa(ctx.coordDir);
  const cert = await issueServerCert(ca.material, { ...serverNames('127.0.0.1'), validityDays: 2 });
  const rpc = ctx.procs.fork<TlsServerCommand>(join(import.meta.dirname, 'tls-server.ts'), `tls N=${n}`, { execArgv: ['--expose-gc'] });
  const { port } = await rpc.call(
    { type: 'listen', tls: { certPem: cert.certPem, keyPem: cert.keyPem, caPem: ca.material.certPem }, heartbeatIntervalSecs: ctx.cfg.heartbeatIntervalSecs },
    Listening,
  );
  const target = { pid: rpc.pid, stats: () => rpc.stats(), gc: () => rpc.gc() };
  const settled = await settledMemory(target, ctx.cfg.memorySettle);
  return { rpc, port, target, base: { sampledKiB: settled.rssKiB, settled } };
}

/** Uses the identities the simulators enrolled last: they chain to the same CA, which is all node:tls checks. */
async function tlsPhase(ctx: Ctx, n: number, ready: Promise<TlsServer>): Promise<Measure> {
  const { cfg, procs, sims, log } = ctx;
  const label = `tls N=${n}`;
  const { rpc, port, target, base } = await ready;
  try {
    const t0 = Date.now();
    await Promise.all(sims.map((s) => s.call({ type: 'tls', server: { host: '127.0.0.1', port }, concurrency: cfg.connectConcurrency }, Online)));
    const connectSecs = ((await rpc.call({ type: 'hellos', count: n }, HellosAt)).at - t0) / 1000;
    log(`${label}: ${n} connections in ${connectSecs.toFixed(1)} s; idle window ${cfg.shortWindowSecs} s`);
    await rpc.gc();
    await sleep(cfg.settleSecs * 1000);
    const w = await measureWindow(target, sims, cfg.shortWindowSecs);
    const after = { sampledKiB: w.rssMedianKiB, settled: await settledMemory(target, cfg.memorySettle) };
    const measure = { ...perWorker(n, connectSecs, w), ...memoryPerWorker(n, base, after) };
    await Promise.all(sims.map((s) => s.call({ type: 'stop', concurrency: cfg.stopConcurrency }, Done)));
    log(`${label}: ${fmt(measure.cpuUsPerWorkerSec, 1)} µs/worker/s, ${fmt(measure.rssKiBPerWorker, 1)} KiB/worker`);
    return measure;
  } finally {
    await procs.stop(rpc.child);
  }
}
