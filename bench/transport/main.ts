/**
 * What one control message costs on the wire, apart from everything else a
 * job costs: a worker sends a frame the size of a `job.result` and the
 * server answers with one the size of a `job.assign`, one exchange at a
 * time, over GoGrid's QUIC transport (src/transport, @matrixai/quic, mutual
 * TLS), over its TLS-on-TCP transport (the fallback for networks that drop
 * UDP: tls-server.ts on an HTTPS server, web-stream frame channels) and over
 * a plain node:tls 1.3 connection with the same frames and certificates
 * (the baseline, same run). The server runs in a child process
 * of its own, so its CPU is what a coordinator pays per message; the client's
 * is what a worker pays. Rounds alternate the three so drift on this
 * shared machine hits both. Writes bench/results/transport-<ISO date>.json.
 *
 *   npm run bench:transport                  # 7 rounds × 3,000 exchanges each way (~1 min)
 *   npm run bench:transport -- --quick       # 2 rounds × 500 (~10 s)
 *
 * Packets are the kernel's count on loopback (/proc/net/snmp: UDP datagrams,
 * TCP segments), both directions. Last, the time a worker whose UDP is
 * dropped takes to connect (fallbackMs). It is a benchmark, not a test.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer as httpsServer } from 'node:https';
import { connect as tlsConnect, createServer as tlsServer, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { encodeFrame, FrameDecoder } from '../../src/transport/frame.js';
import { createCa, createKeyAndCsr, issueServerCert, signCsr } from '../../src/transport/pki.js';
import { connectQuic, startQuicServer, type ControlPeer } from '../../src/transport/quic.js';
import { acceptControlOverTls, connectTls, HTTPS_ALPN } from '../../src/transport/tls.js';
import { dialPlan, dialRace } from '../../src/worker/dial.js';
import { WORKER_DEFAULTS } from '../../src/worker/worker-config.js';
import { loadAvg, machine, type Machine } from '../lib/machine.js';
import { packetsIn } from '../lib/procfs.js';
import { Procs } from '../lib/procs.js';
import { ownStats, serveRpc, StatsCommand, type RpcChild } from '../lib/rpc.js';
import { progressLog, resultBase, runMain, writeResult } from '../lib/results.js';
import { median, round } from '../lib/stats.js';

const SERVER_NAME = 'gogrid-coordinator';
/** quic and tcp: GoGrid's two transports; tls: the plain node:tls baseline. */
const Kind = z.enum(['quic', 'tcp', 'tls']);
type Kind = z.infer<typeof Kind>;
const Tls = z.object({ certPem: z.string(), keyPem: z.string(), caPem: z.string() });
const ServeCommand = z.discriminatedUnion('type', [StatsCommand, z.object({ type: z.literal('listen'), kind: Kind, tls: Tls })]);
type ServeCommand = z.infer<typeof ServeCommand>;
const Listening = z.object({ port: z.number().int() });

/** What the server answers each request with: about a `job.assign` of the jobs benchmark's MLP. */
const reply = (n: number) => ({ type: 'job.assign', n, leaseId: 'l'.repeat(26), job: { pad: 'a'.repeat(520) } });
/** What the client sends: about a `job.result`. */
const request = (n: number) => ({ type: 'job.result', n, leaseId: 'l'.repeat(26), outcome: { pad: 'r'.repeat(280) } });

// ---------------------------------------------------------------- the server (child process)

const echo = (peer: ControlPeer) => {
  void (async () => {
    const channel = await peer.acceptChannel();
    for await (const frame of channel.frames()) await channel.send(reply((frame as { n: number }).n));
  })();
};

async function listen(kind: Kind, tls: z.infer<typeof Tls>): Promise<{ port: number }> {
  if (kind === 'quic') {
    const server = await startQuicServer({ host: '127.0.0.1', port: 0, tls, maxIdleTimeoutMs: 600_000, onConnection: echo });
    return { port: server.port };
  }
  if (kind === 'tcp') {
    // As the coordinator's HTTPS server is set up for it (coordinator/http.ts).
    const server = httpsServer({ cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3', ALPNProtocols: HTTPS_ALPN });
    acceptControlOverTls(server, { maxIdleTimeoutMs: 600_000, onConnection: echo });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return { port: (server.address() as { port: number }).port };
  }
  const server = tlsServer({ cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (socket) => {
    const decoder = new FrameDecoder();
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) socket.write(encodeFrame(reply((frame as { n: number }).n)));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as { port: number }).port };
}

// ---------------------------------------------------------------- the client (this process)

interface Client {
  exchange(n: number): Promise<void>;
  close(): Promise<void>;
}

async function client(kind: Kind, port: number, ca: string, id: { certPem: string; keyPem: string }): Promise<Client> {
  if (kind !== 'tls') {
    const opts = { host: '127.0.0.1', port, serverName: SERVER_NAME, tls: { caPem: ca, ...id }, connectTimeoutMs: 5000, maxIdleTimeoutMs: 600_000 };
    const c = await (kind === 'quic' ? connectQuic(opts) : connectTls(opts));
    const frames = c.channel.frames()[Symbol.asyncIterator]();
    return {
      async exchange(n) {
        await c.channel.send(request(n));
        await frames.next();
      },
      close: () => c.close(),
    };
  }
  const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port, servername: SERVER_NAME, ca, cert: id.certPem, key: id.keyPem, minVersion: 'TLSv1.3' });
  socket.setNoDelay(true);
  await once(socket, 'secureConnect');
  const decoder = new FrameDecoder();
  let waiting: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    if (decoder.push(chunk).length > 0) waiting?.();
  });
  return {
    exchange(n) {
      return new Promise((resolve) => {
        waiting = resolve;
        socket.write(encodeFrame(request(n)));
      });
    },
    async close() {
      socket.end();
      await once(socket, 'close');
    },
  };
}

const packets = (kind: Kind) => packetsIn(kind === 'quic' ? 'udp' : 'tcp');

export interface TransportRound {
  kind: Kind;
  exchanges: number;
  /** Per exchange (one request and its reply). */
  wallUs: number;
  serverCpuUs: number;
  clientCpuUs: number;
  packets: number;
}

type ServerProc = RpcChild<ServeCommand>;

async function measureRound(kind: Kind, server: ServerProc, port: number, ca: string, id: { certPem: string; keyPem: string }, exchanges: number): Promise<TransportRound> {
  const c = await client(kind, port, ca, id);
  try {
    for (let i = 0; i < 200; i++) await c.exchange(i); // warm-up: JIT, first-use allocations
    const s0 = (await server.stats()).cpuUs;
    const c0 = process.cpuUsage();
    const p0 = packets(kind);
    const t0 = performance.now();
    for (let i = 0; i < exchanges; i++) await c.exchange(i);
    const wall = performance.now() - t0;
    const p1 = packets(kind);
    const c1 = process.cpuUsage(c0);
    const s1 = (await server.stats()).cpuUs;
    // The two stats calls are IPC, not transport; each costs the server well under the rounding here.
    return {
      kind,
      exchanges,
      wallUs: Math.round((wall * 1000) / exchanges),
      serverCpuUs: Math.round((s1 - s0) / exchanges),
      clientCpuUs: Math.round((c1.user + c1.system) / exchanges),
      packets: round((p1 - p0) / exchanges, 2),
    };
  } finally {
    await c.close();
  }
}

/**
 * How long a worker whose UDP is dropped takes to be connected: QUIC's head
 * start (WORKER_DEFAULTS.quicHeadStartMs) runs out against a UDP port that
 * swallows every datagram, then TLS on TCP connects. And the same once the
 * worker remembers TCP for this network (it dials TCP first).
 */
async function fallbackMs(tcpPort: number, ca: string, id: { certPem: string; keyPem: string }, trials: number): Promise<{ firstTimeMs: number[]; rememberedMs: number[] }> {
  const blackHole = createSocket('udp4');
  blackHole.bind(0, '127.0.0.1');
  await once(blackHole, 'listening');
  const udpPort = blackHole.address().port;
  const opts = { host: '127.0.0.1', serverName: SERVER_NAME, tls: { caPem: ca, ...id }, connectTimeoutMs: 3000, maxIdleTimeoutMs: 600_000 };
  const dial = (kind: 'quic' | 'tcp') => (kind === 'quic' ? connectQuic({ ...opts, port: udpPort }) : connectTls({ ...opts, port: tcpPort }));
  const time = async (remembered: 'tcp' | null) => {
    const t0 = performance.now();
    const conn = await dialRace(dialPlan('auto', remembered, WORKER_DEFAULTS.quicHeadStartMs), dial);
    const ms = Math.round(performance.now() - t0);
    await conn.close();
    return ms;
  };
  try {
    const firstTimeMs: number[] = [];
    const rememberedMs: number[] = [];
    for (let i = 0; i < trials; i++) {
      firstTimeMs.push(await time(null));
      rememberedMs.push(await time('tcp'));
    }
    // The QUIC attempts still waiting on the black hole give up within connectTimeoutMs.
    await sleep(opts.connectTimeoutMs);
    return { firstTimeMs, rememberedMs };
  } finally {
    blackHole.close();
  }
}

export interface TransportBench {
  suite: 'transport';
  startedAt: string;
  machine: Machine;
  config: { rounds: number; exchanges: number };
  rounds: TransportRound[];
  /** Medians over the rounds, and each GoGrid transport ÷ the plain TLS baseline. */
  summary: Record<Kind, Omit<TransportRound, 'kind' | 'exchanges'>> & { ratio: Record<'quic' | 'tcp', { serverCpu: number; clientCpu: number; wall: number }> };
  /** Time to a connection when UDP is dropped (fallbackMs): each trial, and the median. */
  fallback: { headStartMs: number; firstTimeMs: number[]; rememberedMs: number[]; medianFirstTimeMs: number; medianRememberedMs: number };
}

export async function runTransportBench(opts: { quick: boolean }, startedAt: Date, log: (line: string) => void): Promise<TransportBench> {
  const info = machine();
  const config = opts.quick ? { rounds: 2, exchanges: 500 } : { rounds: 7, exchanges: 3000 };
  const ca = await createCa({ commonName: 'Transport bench CA' });
  const serverId = await issueServerCert(ca, { dnsNames: [SERVER_NAME], ipAddresses: ['127.0.0.1'] });
  const worker = await createKeyAndCsr('worker');
  const workerId = { keyPem: worker.keyPem, certPem: await signCsr(ca, worker.csrPem, { workerId: 'bench-worker', validityDays: 1 }) };
  const procs = new Procs();
  const servers = new Map<Kind, { rpc: ServerProc; port: number }>();
  try {
    for (const kind of Kind.options) {
      const rpc = procs.fork<ServeCommand>(import.meta.filename, `${kind} server`, { args: ['serve'] });
      const { port } = await rpc.call({ type: 'listen', kind, tls: { ...serverId, caPem: ca.certPem } }, Listening);
      servers.set(kind, { rpc, port });
    }
    const rounds: TransportRound[] = [];
    for (let i = 1; i <= config.rounds; i++) {
      for (const kind of Kind.options) {
        const { rpc, port } = servers.get(kind)!;
        const r = await measureRound(kind, rpc, port, ca.certPem, workerId, config.exchanges);
        rounds.push(r);
        log(`round ${i}/${config.rounds} ${kind}: ${r.wallUs} µs per exchange, server ${r.serverCpuUs} µs CPU, client ${r.clientCpuUs} µs CPU, ${r.packets} packets`);
      }
    }
    const med = (kind: Kind) => {
      const of = rounds.filter((r) => r.kind === kind);
      return {
        wallUs: median(of.map((r) => r.wallUs)),
        serverCpuUs: median(of.map((r) => r.serverCpuUs)),
        clientCpuUs: median(of.map((r) => r.clientCpuUs)),
        packets: median(of.map((r) => r.packets)),
      };
    };
    log(`time to connect with UDP dropped (${WORKER_DEFAULTS.quicHeadStartMs} ms QUIC head start)`);
    const fb = await fallbackMs(servers.get('tcp')!.port, ca.certPem, workerId, opts.quick ? 2 : 5);
    const quic = med('quic');
    const tcp = med('tcp');
    const tls = med('tls');
    const ratio = (a: number, b: number) => round(a / Math.max(1, b), 1);
    const vsTls = (m: typeof tls) => ({ serverCpu: ratio(m.serverCpuUs, tls.serverCpuUs), clientCpu: ratio(m.clientCpuUs, tls.clientCpuUs), wall: ratio(m.wallUs, tls.wallUs) });
    return {
      suite: 'transport',
      startedAt: startedAt.toISOString(),
      machine: { ...info, loadAvgAtEnd: loadAvg() },
      config,
      rounds,
      summary: { quic, tcp, tls, ratio: { quic: vsTls(quic), tcp: vsTls(tcp) } },
      fallback: { headStartMs: WORKER_DEFAULTS.quicHeadStartMs, ...fb, medianFirstTimeMs: median(fb.firstTimeMs), medianRememberedMs: median(fb.rememberedMs) },
    };
  } finally {
    await procs.close();
  }
}

if (process.argv[2] === 'serve') {
  serveRpc(ServeCommand, async (cmd) => (cmd.type === 'stats' ? ownStats() : listen(cmd.kind, cmd.tls)));
} else {
  runMain('transport', async () => {
    const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
    const startedAt = new Date();
    const r = await runTransportBench({ quick: values.quick ?? false }, startedAt, progressLog());
    const file = `${resultBase('transport', startedAt, values.quick)}.json`;
    await writeResult(file, r);
    const { ratio } = r.summary;
    const line = (label: string, m: Omit<TransportRound, 'kind' | 'exchanges'>) =>
      `  ${label} server ${m.serverCpuUs} µs CPU, client ${m.clientCpuUs} µs CPU, ${m.wallUs} µs wall, ${m.packets} packets`;
    process.stdout.write(
      [
        `per exchange (request + reply), median of ${r.config.rounds} rounds × ${r.config.exchanges}:`,
        line('QUIC:            ', r.summary.quic),
        line('GoGrid TLS/TCP:  ', r.summary.tcp),
        line('plain node:tls:  ', r.summary.tls),
        `  QUIC ÷ plain TLS: server CPU ${ratio.quic.serverCpu}×, client CPU ${ratio.quic.clientCpu}×, wall ${ratio.quic.wall}×`,
        `  GoGrid TLS/TCP ÷ plain TLS: server CPU ${ratio.tcp.serverCpu}×, client CPU ${ratio.tcp.clientCpu}×, wall ${ratio.tcp.wall}×`,
        `UDP dropped: connected over TCP after ${r.fallback.medianFirstTimeMs} ms (QUIC head start ${r.fallback.headStartMs} ms), ${r.fallback.medianRememberedMs} ms once TCP is remembered`,
        `written to ${file}`,
      ].join('\n') + '\n',
    );
  });
}
