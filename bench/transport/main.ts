/**
 * What one control message costs on the wire, apart from everything else a
 * job costs: a worker sends a frame the size of a `job.result` and the
 * server answers with one the size of a `job.assign`, one exchange at a
 * time, over GoGrid's QUIC transport (src/transport, @matrixai/quic, mutual
 * TLS) and over a plain node:tls 1.3 connection with the same frames and
 * certificates (the baseline, same run). The server runs in a child process
 * of its own, so its CPU is what a coordinator pays per message; the client's
 * is what a worker pays. Rounds alternate QUIC and TLS so drift on this
 * shared machine hits both. Writes bench/results/transport-<ISO date>.json.
 *
 *   npm run bench:transport                  # 7 rounds × 3,000 exchanges each way (~1 min)
 *   npm run bench:transport -- --quick       # 2 rounds × 500 (~10 s)
 *
 * Packets are the kernel's count on loopback (/proc/net/snmp: UDP datagrams,
 * TCP segments), both directions. It is a benchmark, not a test.
 */
import { once } from 'node:events';
import { connect as tlsConnect, createServer as tlsServer, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { encodeFrame, FrameDecoder } from '../../src/transport/frame.js';
import { createCa, createKeyAndCsr, issueServerCert, signCsr } from '../../src/transport/pki.js';
import { connectQuic, startQuicServer } from '../../src/transport/quic.js';
import { loadAvg, machine, type Machine } from '../lib/machine.js';
import { packetsIn } from '../lib/procfs.js';
import { Procs } from '../lib/procs.js';
import { ownStats, serveRpc, StatsCommand, type RpcChild } from '../lib/rpc.js';
import { progressLog, resultBase, runMain, writeResult } from '../lib/results.js';
import { median, round } from '../lib/stats.js';

const SERVER_NAME = 'gogrid-coordinator';
const Kind = z.enum(['quic', 'tls']);
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

async function listen(kind: Kind, tls: z.infer<typeof Tls>): Promise<{ port: number }> {
  if (kind === 'quic') {
    const server = await startQuicServer({
      host: '127.0.0.1',
      port: 0,
      tls,
      maxIdleTimeoutMs: 600_000,
      onConnection: (peer) => {
        void (async () => {
          const channel = await peer.acceptChannel();
          for await (const frame of channel.frames()) await channel.send(reply((frame as { n: number }).n));
        })();
      },
    });
    return { port: server.port };
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
  if (kind === 'quic') {
    const c = await connectQuic({ host: '127.0.0.1', port, serverName: SERVER_NAME, tls: { caPem: ca, ...id }, connectTimeoutMs: 5000, maxIdleTimeoutMs: 600_000 });
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

export interface TransportBench {
  suite: 'transport';
  startedAt: string;
  machine: Machine;
  config: { rounds: number; exchanges: number };
  rounds: TransportRound[];
  /** Medians over the rounds, and QUIC ÷ TLS of each. */
  summary: Record<Kind, Omit<TransportRound, 'kind' | 'exchanges'>> & { ratio: { serverCpu: number; clientCpu: number; wall: number } };
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
    const quic = med('quic');
    const tls = med('tls');
    const ratio = (a: number, b: number) => round(a / Math.max(1, b), 1);
    return {
      suite: 'transport',
      startedAt: startedAt.toISOString(),
      machine: { ...info, loadAvgAtEnd: loadAvg() },
      config,
      rounds,
      summary: { quic, tls, ratio: { serverCpu: ratio(quic.serverCpuUs, tls.serverCpuUs), clientCpu: ratio(quic.clientCpuUs, tls.clientCpuUs), wall: ratio(quic.wallUs, tls.wallUs) } },
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
    const { quic, tls, ratio } = r.summary;
    process.stdout.write(
      [
        `per exchange (request + reply), median of ${r.config.rounds} rounds × ${r.config.exchanges}:`,
        `  QUIC: server ${quic.serverCpuUs} µs CPU, client ${quic.clientCpuUs} µs CPU, ${quic.wallUs} µs wall, ${quic.packets} packets`,
        `  TLS:  server ${tls.serverCpuUs} µs CPU, client ${tls.clientCpuUs} µs CPU, ${tls.wallUs} µs wall, ${tls.packets} packets`,
        `  QUIC ÷ TLS: server CPU ${ratio.serverCpu}×, client CPU ${ratio.clientCpu}×, wall ${ratio.wall}×`,
        `written to ${file}`,
      ].join('\n') + '\n',
    );
  });
}
