/**
 * A fleet simulator process for `npm run bench`: many workers in one Node
 * process, driven by the fleet suite over bench/lib/rpc.ts.
 *
 *   const sim = procs.fork<SimCommand>(join(import.meta.dirname, 'sim-worker.ts'), 'sim 1');
 *   await sim.call({ type: 'enroll', coordinator: { host, port }, token, dirs, concurrency: 8 }, Enrolled);
 *   await sim.call({ type: 'quic', keepAliveMs: null, concurrency: 16 }, Online);
 *   await sim.call({ type: 'stop', concurrency: 32 }, Done);
 *
 * Workers are the shipped WorkerAgent with its defaults, over QUIC sharing
 * one UDP socket (AgentOptions.socket) or over TLS on TCP; only the probes
 * are fixed (one hardware report per process, a constant load) so that the
 * simulator spends its CPU on the protocol, not on systeminformation. The TLS
 * mode is the baseline: the same hello and heartbeat frames over node:tls.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { pino } from 'pino';
import { QUICSocket } from '@matrixai/quic';
import { encodeFrame, FrameDecoder } from '../../src/transport/frame.js';
import { COORDINATOR_SERVER_NAME, PROTOCOL_VERSION, type HardwareReport, type WorkerMessageInput } from '../../src/protocol/index.js';
import { quicLogger } from '../../src/transport/quic-config.js';
import { WorkerAgent, type AgentProbes } from '../../src/worker/agent.js';
import { enroll } from '../../src/worker/enroll.js';
import { collectHardware } from '../../src/worker/hardware.js';
import type { WorkerIdentity } from '../../src/worker/identity.js';
import { ownStats, serveRpc } from '../lib/rpc.js';
import { SimCommand } from './commands.js';

const silent = pino({ level: 'silent' });
const APP_VERSION = '0.0.0-bench';
const LOAD = { cpu: 0.05, freeMemoryBytes: 8 * 2 ** 30 };

interface Enrolled {
  dir: string;
  identity: WorkerIdentity;
}

let enrolled: Enrolled[] = [];
let hardware: Promise<HardwareReport> | undefined;
/** Closes whatever the last `quic` or `tls` command opened, at most `concurrency` at once. */
let stopAll: ((concurrency: number) => Promise<void>) | undefined;

const probes: AgentProbes = {
  hardware: () => (hardware ??= collectHardware()),
  load: () => Promise.resolve(LOAD),
};

/** Runs `task` over `items` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await task(items[i]!, i);
    }
  });
  await Promise.all(lanes);
}

async function doEnroll(cmd: Extract<SimCommand, { type: 'enroll' }>): Promise<{ count: number; ms: number }> {
  const started = performance.now();
  const results = new Array<Enrolled>(cmd.dirs.length);
  await pool(cmd.dirs, cmd.concurrency, async (dir, i) => {
    const identity = await enroll({ dataDir: dir, coordinator: cmd.coordinator, token: cmd.token, timeoutMs: 60_000 });
    results[i] = { dir, identity };
  });
  enrolled = results;
  return { count: enrolled.length, ms: performance.now() - started };
}

async function runQuic(cmd: Extract<SimCommand, { type: 'quic' }>): Promise<{ count: number; welcomeAt: number[] }> {
  // One socket for all: the coordinator sees the same packets either way
  // (measured: no difference in its CPU), and the simulator needs no file
  // descriptor per worker.
  const socket = cmd.transport === 'quic' ? new QUICSocket({ logger: quicLogger(undefined) }) : undefined;
  await socket?.start({ host: '127.0.0.1', port: 0 });
  const agents: WorkerAgent[] = [];
  const welcomeAt = new Array<number>(enrolled.length).fill(0);
  stopAll = async (concurrency) => {
    // All at once, the close packets of hundreds of connections overflow the
    // coordinator's UDP receive buffer; a lost close is only noticed at the
    // idle timeout (heartbeat_timeout_secs) and the next phase would wait for it.
    await pool(agents, concurrency, (a) => a.stop());
    await socket?.stop({ force: true });
  };
  await pool(enrolled, cmd.concurrency, async ({ dir, identity }, i) => {
    const agent = new WorkerAgent({
      dataDir: dir,
      identity,
      appVersion: APP_VERSION,
      logger: silent,
      probes,
      keepAliveIntervalMs: cmd.keepAliveMs,
      // Under a connection storm on two shared cores a handshake can take seconds.
      connectTimeoutMs: 30_000,
      socket,
      transport: cmd.transport,
    });
    agents.push(agent);
    agent.on('welcome', () => (welcomeAt[i] = Date.now()));
    const outcome = Promise.race([agent.waitFor('online'), agent.waitFor('failed')]);
    agent.start();
    const state = await outcome;
    if (state.state === 'failed') throw new Error(`worker ${identity.workerId} failed: ${state.detail ?? 'unknown'}`);
  });
  return { count: agents.length, welcomeAt };
}

function frameOf(msg: WorkerMessageInput): Uint8Array {
  return encodeFrame(msg);
}

/** Sends hello, waits for the server's welcome, then heartbeats at the interval it names, as the agent does. */
function tlsWorker(server: { host: string; port: number }, identity: WorkerIdentity, hw: HardwareReport): Promise<{ socket: TLSSocket; stop: () => void }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: server.host,
      port: server.port,
      servername: COORDINATOR_SERVER_NAME,
      ca: identity.caPem,
      cert: identity.certPem,
      key: identity.keyPem,
      minVersion: 'TLSv1.3',
    });
    const decoder = new FrameDecoder();
    let timer: NodeJS.Timeout | undefined;
    const stop = () => {
      clearInterval(timer);
      socket.destroy();
    };
    socket.once('secureConnect', () =>
      socket.write(
        frameOf({
          type: 'hello',
          protocolVersion: PROTOCOL_VERSION,
          workerId: identity.workerId,
          name: identity.name,
          appVersion: APP_VERSION,
          hardware: hw,
          cachedModels: [],
          capabilities: { executors: [], slots: 0 },
        }),
      ),
    );
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        const secs = (frame as { heartbeatIntervalSecs?: unknown }).heartbeatIntervalSecs;
        if (timer || typeof secs !== 'number') continue;
        timer = setInterval(() => {
          socket.write(frameOf({ type: 'heartbeat', status: 'idle', pausedReason: null, load: LOAD, runningJobs: [] }));
        }, secs * 1000);
        resolve({ socket, stop });
      }
    });
    socket.once('error', (e) => {
      stop();
      reject(e);
    });
    socket.once('close', () => clearInterval(timer));
  });
}

async function runTls(cmd: Extract<SimCommand, { type: 'tls' }>): Promise<{ count: number; welcomeAt: number[] }> {
  const hw = await probes.hardware();
  const conns: { stop: () => void }[] = [];
  const welcomeAt = new Array<number>(enrolled.length).fill(0);
  stopAll = async () => {
    for (const c of conns) c.stop();
  };
  await pool(enrolled, cmd.concurrency, async ({ identity }, i) => {
    conns.push(await tlsWorker(cmd.server, identity, hw));
    welcomeAt[i] = Date.now();
  });
  return { count: conns.length, welcomeAt };
}

serveRpc(SimCommand, async (cmd) => {
  switch (cmd.type) {
    case 'stats':
      return ownStats();
    case 'enroll':
      return doEnroll(cmd);
    case 'quic':
      return runQuic(cmd);
    case 'tls':
      return runTls(cmd);
    case 'stop':
      await stopAll?.(cmd.concurrency);
      stopAll = undefined;
      return {};
  }
});
