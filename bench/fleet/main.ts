/**
 * The fleet suite's entry (`npm run bench:fleet`; `npm run bench` runs it
 * before the jobs suite): writes bench/results/fleet-<ISO date>.json, the
 * coordinator's CPU and heap profiles beside it, and prints a summary table.
 *
 *   npm run bench:fleet                    # N = 100, 500, 1000, 2000 at the default 30 s heartbeat (~17 min)
 *   npm run bench:fleet -- --quick         # smoke run: N = 50, 1 s heartbeat (< 1 min)
 *   npm run bench:fleet -- --sizes 100,500 # other fleet sizes
 *   npm run bench:fleet -- --views 0       # without the operator's views at 10,000 enrolled workers (~4 min)
 *
 * It is a benchmark, not a test: nothing fails on slow numbers. See BENCHMARKS.md.
 */
import { parseArgs } from 'node:util';
import { loadAvg, machine } from '../lib/machine.js';
import { progressLog, resultBase, runMain, writeResult } from '../lib/results.js';
import { fmt } from '../lib/stats.js';
import { fleetConfig, runFleet, type FleetConfig, type FleetResult } from './phases.js';

function parseSizes(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const sizes = text.split(',').map((s) => Number(s.trim()));
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--sizes wants whole numbers like 100,500 (got "${text}")`);
  return sizes;
}

function table(cfg: FleetConfig, r: FleetResult): string {
  // Messages in per worker per heartbeat interval: 1.0 when every heartbeat arrived in the window.
  const arrived = (m: { messagesInPerWorkerSec: number }) => fmt(m.messagesInPerWorkerSec * cfg.heartbeatIntervalSecs, 2);
  const rows: string[][] = [
    ['N', 'connect s', 'QUIC µs/w/s', 'TLS µs/w/s', 'CPU ×TLS', 'QUIC KiB/w', 'TLS KiB/w', 'RSS ×TLS', 'QUIC µs/msg', 'msgs/w/hb', 'coord. % core', 'coord. RSS MiB'],
    ...r.rows.map((x) => [
      String(x.n),
      `${fmt(x.quic.connectSecs, 1)} (TLS ${fmt(x.tls.connectSecs, 1)})`,
      fmt(x.quic.cpuUsPerWorkerSec),
      fmt(x.tls.cpuUsPerWorkerSec, 1),
      fmt(x.ratio.cpu, 1),
      fmt(x.quic.rssKiBPerWorker),
      fmt(x.tls.rssKiBPerWorker, 1),
      fmt(x.ratio.rss, 1),
      fmt(x.quic.cpuUsPerMessage),
      `${arrived(x.quic)} (TLS ${arrived(x.tls)})`,
      fmt(x.quic.cpuPctOfCore, 1),
      `${fmt(x.quic.rssMiB)} (0 w: ${fmt(x.quic.rssBaseMiB)})`,
    ]),
  ];
  const { quic: fq, tls: ft } = r.fit;
  if (fq && ft) {
    rows.push([
      'fit',
      '',
      fmt(fq.cpuUsPerWorkerSec),
      fmt(ft.cpuUsPerWorkerSec, 1),
      fmt(fq.cpuUsPerWorkerSec / ft.cpuUsPerWorkerSec, 1),
      fmt(fq.kiBPerWorker),
      fmt(ft.kiBPerWorker, 1),
      fmt(fq.kiBPerWorker / ft.kiBPerWorker, 1),
      '',
      '',
      `${fmt(fq.fixedCpuUsPerSec / 1e4, 1)} + N × …`,
      `${fmt(fq.baseMiB)} + N × …`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const lines = rows.map((row) => row.map((c, i) => c.padStart(widths[i]!)).join('  '));
  const out = [`heartbeat ${cfg.heartbeatIntervalSecs} s, idle window ${cfg.windowSecs} s${cfg.quick ? ' (QUICK: shortened heartbeat, not comparable with a full run)' : ''}`, ...lines];
  out.push('', 'the same workers over TLS on TCP (the fallback for networks that drop UDP), same coordinator:');
  for (const x of r.rows) {
    out.push(
      `  N=${x.n}: ${fmt(x.tcp.cpuUsPerWorkerSec)} µs/w/s (${fmt(x.ratio.tcpCpu, 2)}× QUIC), ${fmt(x.tcp.rssKiBPerWorker)} KiB/w (${fmt(x.ratio.tcpRss, 2)}× QUIC), ` +
        `${fmt(x.tcp.cpuUsPerMessage)} µs/msg, online in ${fmt(x.tcp.connectSecs, 1)} s`,
    );
  }
  out.push('', 'what the operator\'s views cost, the QUIC fleet connected (median of 5 reads; coordinator CPU per read):');
  for (const x of r.rows) {
    const view = (name: string, c: { ms: number; bytes: number; cpuUs: number }) => `${name} ${fmt(c.ms)} ms, ${fmt(c.bytes / 1024, 1)} KiB, ${fmt(c.cpuUs / 1000, 1)} ms CPU`;
    out.push(`  N=${x.n}: ${view('dashboard summary', x.views.fleet)}; ${view('a page of workers', x.views.workersPage)}; ${view('/metrics', x.views.metrics)}`);
  }
  const sv = r.scaleViews;
  if (sv) {
    const view = (c: { ms: number; bytes: number; cpuUs: number }) => `${fmt(c.ms)} ms, ${fmt(c.bytes / 1024, 1)} KiB, ${fmt(c.cpuUs / 1000, 1)} ms CPU`;
    out.push(
      `  N=${sv.n} enrolled (not connected): dashboard first paint ${fmt(sv.firstPaint.ms)} ms (${fmt(sv.firstPaint.pageBytes / 1024)} KiB); summary ${view(sv.views.fleet)}; a page of workers ${view(sv.views.workersPage)}; /metrics ${view(sv.views.metrics)}`,
    );
  }
  const v = r.variants;
  if (v) {
    const def = r.rows.find((x) => x.n === v.n)!.quic;
    const vs = (x: { cpuUsPerWorkerSec: number; messagesInPerWorkerSec: number }) =>
      `${fmt(x.cpuUsPerWorkerSec)} µs/w/s (${fmt(x.cpuUsPerWorkerSec / def.cpuUsPerWorkerSec, 2)}× default), ${arrived(x)} msgs/w/hb`;
    out.push(
      '',
      `variants at N=${v.n}, same coordinator: default ${vs(def)}, ${fmt(def.mainThreadPct)} % of it on the main thread`,
      `  Error.stackTraceLimit = 0:  ${vs(v.stackTraceLimit0)}`,
      `  QUIC keep-alive ${v.keepAlive.keepAliveMs} ms:    ${vs(v.keepAlive)}`,
    );
  }
  for (const k of r.kill) {
    out.push(`killed worker noticed after ${k.detectSecs.map((s) => fmt(s, 1)).join(', ')} s (heartbeat ${k.heartbeatIntervalSecs} s, timeout ${k.heartbeatTimeoutSecs} s)`);
  }
  const p = r.profiles;
  if (p) {
    out.push('', `coordinator CPU profile, main thread, top self time (${fmt(p.cpu.busyMs)} ms busy of ${fmt(p.cpu.wallMs)} ms):`);
    for (const f of p.cpu.topFrames.slice(0, 10)) out.push(`  ${fmt(f.selfPct, 1).padStart(5)} %  ${f.name}  ${f.where}`);
    out.push(`  by package: ${p.cpu.byPackage.slice(0, 8).map((x) => `${x.name} ${fmt(x.selfPct)} %`).join(', ')}`);
    out.push('', `coordinator heap kept per connected worker (sampled): ${fmt(p.heap.kiBPerWorker, 1)} KiB; by package:`);
    out.push(`  ${p.heap.byPackage.slice(0, 8).map((x) => `${x.name} ${fmt(x.pct)} %`).join(', ')}`);
  }
  return out.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, sizes: { type: 'string' }, views: { type: 'string' } } });
  const views = values.views === undefined ? undefined : values.views === '0' ? null : parseSizes(values.views)![0];
  const cfg = fleetConfig({ quick: values.quick ?? false, sizes: parseSizes(values.sizes), viewsAt: views });
  const startedAt = new Date();
  const info = machine();
  const base = resultBase('fleet', startedAt, cfg.quick);
  const log = progressLog();
  log(`fleet benchmark: sizes ${cfg.sizes.join(', ')}, heartbeat ${cfg.heartbeatIntervalSecs} s${cfg.quick ? ' (quick: shortened heartbeat and windows)' : ''}`);
  const result = await runFleet(cfg, log, base);
  const finishedAt = new Date();
  const record = {
    suite: 'fleet',
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationSecs: (finishedAt.getTime() - startedAt.getTime()) / 1000,
    machine: { ...info, loadAvgAtEnd: loadAvg() },
    config: cfg,
    ...result,
  };
  await writeResult(`${base}.json`, record);
  process.stdout.write(`${table(cfg, result)}\n\nwrote ${base}.json\n`);
}

runMain('fleet', main);
