import { QUICSocket } from '@matrixai/quic';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCa, createKeyAndCsr, issueServerCert, signCsr, type CaMaterial } from '../../src/transport/pki.js';
import { quicLogger } from '../../src/transport/quic-config.js';
import { connectQuic, startQuicServer, type QuicClientConnection, type QuicPeer, type QuicServerHandle } from '../../src/transport/quic.js';

const SERVER_NAME = 'gogrid-coordinator';

let ca: CaMaterial;
let server: { certPem: string; keyPem: string };
let worker: { certPem: string; keyPem: string };
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  ca = await createCa({ commonName: 'Shared Socket Test CA' });
  server = await issueServerCert(ca, { dnsNames: [SERVER_NAME] });
  const w = await createKeyAndCsr('worker');
  worker = { keyPem: w.keyPem, certPem: await signCsr(ca, w.csrPem, { workerId: 'worker-1', validityDays: 1 }) };
});

afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

/** An echo server that records each peer's address. */
async function echoServer(): Promise<{ handle: QuicServerHandle; peers: QuicPeer[] }> {
  const peers: QuicPeer[] = [];
  const handle = await startQuicServer({
    host: '127.0.0.1',
    port: 0,
    maxIdleTimeoutMs: 5000,
    tls: { ...server, caPem: ca.certPem },
    onConnection: async (peer) => {
      peers.push(peer);
      const channel = await peer.acceptChannel();
      for await (const frame of channel.frames()) await channel.send(frame);
    },
  });
  cleanups.push(() => handle.stop({ force: true }));
  return { handle, peers };
}

async function connect(port: number, socket: QUICSocket): Promise<QuicClientConnection> {
  const conn = await connectQuic({
    host: '127.0.0.1',
    port,
    serverName: SERVER_NAME,
    tls: { caPem: ca.certPem, ...worker },
    connectTimeoutMs: 5000,
    maxIdleTimeoutMs: 5000,
    socket,
  });
  cleanups.push(() => conn.close());
  return conn;
}

async function roundTrip(conn: QuicClientConnection, value: unknown): Promise<unknown> {
  await conn.channel.send(value);
  const next = await conn.channel.frames()[Symbol.asyncIterator]().next();
  return next.value;
}

describe('connectQuic with a shared socket', () => {
  it('runs several connections over one UDP socket, which outlives each of them', async () => {
    const { handle, peers } = await echoServer();
    const socket = new QUICSocket({ logger: quicLogger(undefined) });
    await socket.start({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => socket.stop({ force: true }));

    const a = await connect(handle.port, socket);
    const b = await connect(handle.port, socket);
    expect(await roundTrip(a, { n: 1 })).toEqual({ n: 1 });
    expect(await roundTrip(b, { n: 2 })).toEqual({ n: 2 });
    // Both came from the shared socket's port, not from sockets of their own.
    expect(peers.map((p) => p.remoteAddress)).toEqual([`127.0.0.1:${socket.port}`, `127.0.0.1:${socket.port}`]);

    await a.close();
    expect(socket.closed).toBe(false);
    const c = await connect(handle.port, socket);
    expect(await roundTrip(c, { n: 3 })).toEqual({ n: 3 });
  });
});
