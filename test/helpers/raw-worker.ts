/**
 * A worker that speaks the control protocol by hand, for tests that play a
 * buggy or hostile one: it sends whatever frames the test writes, and hands
 * the test every frame the coordinator sends.
 *
 *   const w = await rawWorker(c, identity, { executors: ['onnx'], slots: 4 });
 *   const assign = await w.next('job.assign');
 *   await w.send({ type: 'job.result', jobId: assign.job.jobId, leaseId: assign.leaseId, outcome: … });
 *   expect((await w.next('error')).code).toBe('GG_ERR_FRAME_INVALID');
 */
import { COORDINATOR_SERVER_NAME, PROTOCOL_VERSION, type CoordinatorMessage } from '../../src/protocol/index.js';
import type { ControlConnection, TransportKind } from '../../src/transport/frame-channel.js';
import { connectQuic, type FrameChannel } from '../../src/transport/quic.js';
import { connectTls } from '../../src/transport/tls.js';
import { collectHardware } from '../../src/worker/hardware.js';
import type { WorkerIdentity } from '../../src/worker/identity.js';
import { within } from './within.js';

export interface RawWorker {
  conn: ControlConnection;
  send(frame: unknown): Promise<void>;
  /** The next frame of that type the coordinator sends (earlier ones of other types are skipped); rejects if the connection ends first. */
  next<T extends CoordinatorMessage['type']>(type: T): Promise<Extract<CoordinatorMessage, { type: T }>>;
  /** The next frame the coordinator sends, whatever its type; rejects if the connection ends first. */
  frame(): Promise<CoordinatorMessage>;
  close(): Promise<void>;
}

export function connectRaw(
  port: number,
  tls: { caPem: string; certPem?: string; keyPem?: string },
  opts: { maxFrameBytes?: number; transport?: TransportKind } = {},
): Promise<ControlConnection> {
  const common = { host: '127.0.0.1', port, serverName: COORDINATOR_SERVER_NAME, tls, connectTimeoutMs: 3000, maxIdleTimeoutMs: 3000, maxFrameBytes: opts.maxFrameBytes };
  return opts.transport === 'tcp' ? connectTls(common) : connectQuic(common);
}

let hardware: ReturnType<typeof collectHardware> | undefined;

export async function helloFrame(workerId: string, capabilities: { executors: string[]; slots: number } = { executors: [], slots: 0 }) {
  return {
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    workerId,
    name: 'raw',
    appVersion: 'test',
    hardware: await (hardware ??= collectHardware()),
    capabilities,
  };
}

/** The frames a coordinator sends, in order or by type; each within 10 s, or the wait fails naming it. */
export function frameReader(channel: FrameChannel): Pick<RawWorker, 'next' | 'frame'> {
  const frames = channel.frames()[Symbol.asyncIterator]();
  const read = async (what: string) => {
    const f = await frames.next();
    if (f.done) throw new Error(`the connection ended before ${what}`);
    return f.value as CoordinatorMessage;
  };
  return {
    next: (type) =>
      within(
        10_000,
        `a ${type} frame`,
        (async () => {
          for (;;) {
            const f = await read(`a ${type} frame`);
            if (f.type === type) return f as never;
          }
        })(),
      ),
    frame: () => within(10_000, 'another frame', read('another frame')),
  };
}

/** Connects as `identity`, says hello with `capabilities`, and waits for `welcome`. */
export async function rawWorker(
  c: { port: number },
  identity: WorkerIdentity,
  capabilities: { executors: string[]; slots: number },
  transport: TransportKind = 'quic',
): Promise<RawWorker> {
  const conn = await connectRaw(c.port, { caPem: identity.caPem, certPem: identity.certPem, keyPem: identity.keyPem }, { transport });
  const w: RawWorker = {
    conn,
    send: (frame) => conn.channel.send(frame as never),
    ...frameReader(conn.channel),
    close: () => conn.close(),
  };
  await w.send(await helloFrame(identity.workerId, capabilities));
  await w.next('welcome');
  return w;
}
