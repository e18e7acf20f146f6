import { fork, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { QUICClient } from '@matrixai/quic';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isGridError } from '../../src/protocol/errors.js';
import { encodeFrame } from '../../src/transport/frame.js';
import { createCa, createKeyAndCsr, issueServerCert, readCert, signCsr, type CaMaterial } from '../../src/transport/pki.js';
import { baseConfig, clientCrypto, compileTiming, quicLogger } from '../../src/transport/quic-config.js';
import {
  connectQuic,
  startQuicServer,
  type QuicClientConnection,
  type QuicConnectOptions,
  type QuicPeer,
  type QuicServerHandle,
  type QuicServerOptions,
} from '../../src/transport/quic.js';

const SERVER_NAME = 'gogrid-coordinator';
const KILLABLE_CLIENT = fileURLToPath(new URL('./fixtures/quic-client.ts', import.meta.url));

interface Identity {
  certPem: string;
  keyPem: string;
}

let ca: CaMaterial;
let serverId: Identity;
let workerId: Identity;
let foreignId: Identity;

const servers: QuicServerHandle[] = [];
const clients: QuicClientConnection[] = [];
const cleanups: (() => Promise<void>)[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  ca = await createCa({ commonName: 'QUIC Test CA' });
  const otherCa = await createCa({ commonName: 'Other CA' });
  serverId = await issueServerCert(ca, { dnsNames: [SERVER_NAME], ipAddresses: ['127.0.0.1'] });
  const worker = await createKeyAndCsr('worker');
  workerId = { keyPem: worker.keyPem, certPem: await signCsr(ca, worker.csrPem, { workerId: 'worker-1', validityDays: 1 }) };
  const foreign = await createKeyAndCsr('intruder');
  foreignId = { keyPem: foreign.keyPem, certPem: await signCsr(otherCa, foreign.csrPem, { workerId: 'worker-1', validityDays: 1 }) };
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  await Promise.all(cleanups.splice(0).map((f) => f().catch(() => undefined)));
  await Promise.all(servers.splice(0).map((s) => s.stop({ force: true })));
});

/** Collects accepted peers so a test can await the next one. */
function acceptor(): { onConnection: (peer: QuicPeer) => void; next(): Promise<QuicPeer>; count(): number } {
  const ready: QuicPeer[] = [];
  const waiting: ((peer: QuicPeer) => void)[] = [];
  let count = 0;
  return {
    onConnection(peer) {
      count++;
      const waiter = waiting.shift();
      if (waiter) waiter(peer);
      else ready.push(peer);
    },
    next() {
      const peer = ready.shift();
      return peer ? Promise.resolve(peer) : new Promise((resolve) => waiting.push(resolve));
    },
    count: () => count,
  };
}

async function server(overrides: Partial<QuicServerOptions> & Pick<QuicServerOptions, 'onConnection'>): Promise<QuicServerHandle> {
  const s = await startQuicServer({
    host: '127.0.0.1',
    port: 0,
    tls: { certPem: serverId.certPem, keyPem: serverId.keyPem, caPem: ca.certPem },
    maxIdleTimeoutMs: 5000,
    ...overrides,
  });
  servers.push(s);
  return s;
}

async function connect(port: number, overrides: Partial<QuicConnectOptions> = {}): Promise<QuicClientConnection> {
  const c = await connectQuic({
    host: '127.0.0.1',
    port,
    serverName: SERVER_NAME,
    tls: { caPem: ca.certPem, ...workerId },
    connectTimeoutMs: 3000,
    maxIdleTimeoutMs: 5000,
    ...overrides,
  });
  clients.push(c);
  return c;
}

/** A client that writes raw bytes on the control stream, to control how frames are split. */
async function rawClient(port: number): Promise<{ write(bytes: Uint8Array): Promise<void> }> {
  const client = await QUICClient.createQUICClient(
    {
      host: '127.0.0.1',
      port,
      serverName: SERVER_NAME,
      crypto: clientCrypto,
      logger: quicLogger(undefined),
      config: {
        ...baseConfig(compileTiming({ maxIdleTimeoutMs: 5000 }, 'client')),
        ca: ca.certPem,
        cert: workerId.certPem,
        key: workerId.keyPem,
      },
    },
    { timer: 3000 },
  );
  cleanups.push(() => client.destroy({ force: true }));
  const writer = client.connection.newStream('bidi').writable.getWriter();
  return { write: (bytes) => writer.write(bytes) };
}

async function take(frames: AsyncIterator<unknown>, n: number): Promise<unknown[]> {
  const out: unknown[] = [];
  while (out.length < n) {
    const r = await frames.next();
    if (r.done) throw new Error(`stream ended after ${out.length} of ${n} frames`);
    out.push(r.value);
  }
  return out;
}

async function errorCodeOf(p: Promise<unknown>): Promise<string | null> {
  return p.then(
    () => null,
    (e: unknown) => (isGridError(e) ? e.code : `not a GridError: ${String(e)}`),
  );
}

async function drain(frames: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const f of frames) out.push(f);
  return out;
}

/** Open UDP handles, once libuv has had a couple of turns to finish closing the ones just closed. */
async function udpHandlesLeft(): Promise<number> {
  const count = (): number => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
  for (let turn = 0; turn < 10 && count() > 0; turn++) await new Promise((resolve) => setImmediate(resolve));
  return count();
}

describe('QUIC transport over loopback', () => {
  it('carries frames both ways over mTLS and shows the server the client certificate', async () => {
    const peers = acceptor();
    const maxFrameBytes = 64 * 1024;
    const s = await server({ onConnection: peers.onConnection, maxFrameBytes });
    const conn = await connect(s.port, { maxFrameBytes });

    // {"type":"bulk","data":"…"} is 25 bytes of JSON around the data: this body is exactly at the limit.
    const big = { type: 'bulk', data: 'x'.repeat(maxFrameBytes - 25) };
    expect(encodeFrame(big, maxFrameBytes).length).toBe(4 + maxFrameBytes);
    const sent = [{ type: 'hello', n: 1 }, { type: 'a', n: 2 }, big, { type: 'b', unicode: 'zß水🚀' }, { type: 'c', n: 5 }];
    for (const f of sent) await conn.channel.send(f);

    const peer = await peers.next();
    expect(peer.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(peer.peerCertificate).not.toBeNull();
    expect(readCert(peer.peerCertificate!).subjectCommonName).toBe('worker-1');
    expect(s.connectionCount()).toBe(1);

    const channel = await peer.acceptChannel();
    const serverFrames = channel.frames()[Symbol.asyncIterator]();
    expect(await take(serverFrames, sent.length)).toEqual(sent);

    const replies = [{ type: 'welcome' }, big, { type: 'job.assign', id: 'j1' }];
    for (const f of replies) await channel.send(f);
    const clientFrames = conn.channel.frames()[Symbol.asyncIterator]();
    expect(await take(clientFrames, replies.length)).toEqual(replies);

    // A graceful client close ends the server's frames and closes the connection.
    await conn.close();
    expect(await serverFrames.next()).toEqual({ done: true, value: undefined });
    await peer.closed;
    expect(s.connectionCount()).toBe(0);
  });

  it('reassembles frames split across writes at any byte boundary', async () => {
    const peers = acceptor();
    const s = await server({ onConnection: peers.onConnection });
    const raw = await rawClient(s.port);
    const a = encodeFrame({ type: 'one', pad: 'p'.repeat(3000) });
    const b = encodeFrame({ type: 'two' });
    const bytes = Buffer.concat([a, b]);
    // Cut inside the first header, inside the first body, and across the frame boundary.
    for (const [from, to] of [[0, 2], [2, 1000], [1000, a.length + 1], [a.length + 1, bytes.length]] as const) {
      await raw.write(bytes.subarray(from, to));
    }
    const channel = await (await peers.next()).acceptChannel();
    expect(await take(channel.frames()[Symbol.asyncIterator](), 2)).toEqual([
      { type: 'one', pad: 'p'.repeat(3000) },
      { type: 'two' },
    ]);
  });

  it('fails frames() with GG_ERR_FRAME_TOO_LARGE when the peer announces an oversized frame', async () => {
    const peers = acceptor();
    const s = await server({ onConnection: peers.onConnection, maxFrameBytes: 1024 });
    const conn = await connect(s.port, { maxFrameBytes: 1024 * 1024 });
    await conn.channel.send({ type: 'ok' });
    await conn.channel.send({ type: 'huge', data: 'y'.repeat(4096) });
    const peer = await peers.next();
    const channel = await peer.acceptChannel();
    const frames = channel.frames()[Symbol.asyncIterator]();
    expect(await take(frames, 1)).toEqual([{ type: 'ok' }]);
    expect(await errorCodeOf(frames.next())).toBe('GG_ERR_FRAME_TOO_LARGE');
    // The sender enforces its own limit before writing anything.
    expect(await errorCodeOf(channel.send({ data: 'z'.repeat(2000) }))).toBe('GG_ERR_FRAME_TOO_LARGE');
    // The write side still works, so the server can explain before it hangs up.
    await channel.send({ type: 'error', code: 'GG_ERR_FRAME_TOO_LARGE' });
    await peer.close({ errorCode: 1, reason: 'GG_ERR_FRAME_TOO_LARGE' });
    expect(await drain(conn.channel.frames())).toEqual([{ type: 'error', code: 'GG_ERR_FRAME_TOO_LARGE' }]);
  });

  it('fails frames() with GG_ERR_FRAME_INVALID on a body that is not JSON', async () => {
    const peers = acceptor();
    const s = await server({ onConnection: peers.onConnection });
    const raw = await rawClient(s.port);
    const body = Buffer.from('{not json');
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length);
    await raw.write(Buffer.concat([header, body]));
    const channel = await (await peers.next()).acceptChannel();
    expect(await errorCodeOf(drain(channel.frames()))).toBe('GG_ERR_FRAME_INVALID');
  });

  // Pinned behaviour: the refused client's connect RESOLVES (TLS 1.3 lets the
  // client finish before the server checks its certificate); the refusal
  // surfaces as frames() throwing GG_ERR_UNAUTHENTICATED, and the server never
  // calls onConnection at all.
  it.each([
    ['no certificate', (): Partial<Identity> => ({})],
    ['a certificate from another CA', (): Partial<Identity> => foreignId],
  ])('refuses a client with %s', async (_label, identity) => {
    const peers = acceptor();
    const s = await server({ onConnection: peers.onConnection });
    const conn = await connect(s.port, { tls: { caPem: ca.certPem, ...identity() } });
    // The send may land in the buffer before the refusal arrives, or fail after it.
    await conn.channel.send({ type: 'hello' }).catch(() => undefined);
    expect(await errorCodeOf(drain(conn.channel.frames()))).toBe('GG_ERR_UNAUTHENTICATED');
    await conn.closed;
    expect(peers.count()).toBe(0);
    expect(s.connectionCount()).toBe(0);
  });

  it('rejects a server whose certificate does not match the server name', async () => {
    const s = await server({ onConnection: () => undefined });
    expect(await errorCodeOf(connect(s.port, { serverName: 'someone-else' }))).toBe('GG_ERR_UNAUTHENTICATED');
  });

  it('says a clock is off, retryably, when a certificate is not yet valid at its time', async () => {
    // The server's certificate as issued three days from now (notBefore two days ahead, after the backdating):
    // what a worker whose clock runs two days behind sees.
    const ahead = await issueServerCert(ca, { dnsNames: [SERVER_NAME], now: new Date(Date.now() + 3 * 86_400_000) });
    const s = await server({ onConnection: () => undefined, tls: { certPem: ahead.certPem, keyPem: ahead.keyPem, caPem: ca.certPem } });
    const err = await connect(s.port).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'GG_ERR_CLOCK_SKEW', retryable: true, message: expect.stringMatching(/not yet valid at this machine's time .*check the clock/) });
  });

  it('refuses a maxIdleTimeoutMs of 0, which would never notice a dead peer', async () => {
    expect(await errorCodeOf(server({ onConnection: () => undefined, maxIdleTimeoutMs: 0 }))).toBe('GG_ERR_CONFIG_INVALID');
    expect(await errorCodeOf(connect(1, { maxIdleTimeoutMs: 1000, keepAliveIntervalMs: 1000 }))).toBe('GG_ERR_CONFIG_INVALID');
  });

  it('rejects a connect to a port where nothing listens within the connect timeout', async () => {
    const probe = createSocket('udp4');
    await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
    const deadPort = probe.address().port;
    await new Promise<void>((resolve) => probe.close(resolve));

    const started = Date.now();
    expect(await errorCodeOf(connect(deadPort, { connectTimeoutMs: 500 }))).toBe('GG_ERR_COORDINATOR_UNREACHABLE');
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('delivers the last frame before the server closes with an application error', async () => {
    const peers = acceptor();
    const s = await server({ onConnection: peers.onConnection });
    const conn = await connect(s.port);
    await conn.channel.send({ type: 'hello' });
    const peer = await peers.next();
    const channel = await peer.acceptChannel();
    await channel.send({ type: 'error', code: 'GG_ERR_WORKER_REVOKED' });
    await peer.close({ errorCode: 7, reason: 'GG_ERR_WORKER_REVOKED' });
    expect(await drain(conn.channel.frames())).toEqual([{ type: 'error', code: 'GG_ERR_WORKER_REVOKED' }]);
    await conn.closed;
    expect(await errorCodeOf(conn.channel.send({ type: 'late' }))).toBe('GG_ERR_CONNECTION_CLOSED');
  });

  it.each([
    ['throws', (): void => {
      throw new Error('handler bug');
    }],
    ['rejects', async (): Promise<void> => {
      throw new Error('async handler bug');
    }],
  ])('closes the connection and keeps running when onConnection %s', async (_label, handler) => {
    const peers = acceptor();
    const s = await server({
      onConnection: (peer) => {
        peers.onConnection(peer);
        return handler();
      },
    });
    const conn = await connect(s.port);
    await conn.channel.send({ type: 'hello' });
    expect(await drain(conn.channel.frames())).toEqual([]);
    await conn.closed;
    await (await peers.next()).closed;
    expect(s.connectionCount()).toBe(0);
  });

  it('notices a client process killed without closing within maxIdleTimeoutMs', async () => {
    const maxIdleTimeoutMs = 1500;
    const peers = acceptor();
    const s = await server({ onConnection: peers.onConnection, maxIdleTimeoutMs });
    const child = fork(KILLABLE_CLIENT, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    child.send({ port: s.port, caPem: ca.certPem, ...workerId, maxIdleTimeoutMs });
    const [message] = (await once(child, 'message')) as [unknown];
    expect(message).toBe('connected');

    const peer = await peers.next();
    const frames = drain((await peer.acceptChannel()).frames());
    let closed = false;
    void peer.closed.then(() => (closed = true));

    // The client's keep-alives hold an idle connection open past the idle timeout.
    await new Promise((resolve) => setTimeout(resolve, maxIdleTimeoutMs + 500));
    expect(closed).toBe(false);
    expect(s.connectionCount()).toBe(1);

    const killed = Date.now();
    child.kill('SIGKILL');
    await peer.closed;
    // By the idle timeout, give or take a busy machine; a dead peer never noticed runs into the bound.
    expect(Date.now() - killed).toBeLessThan(3 * maxIdleTimeoutMs);
    expect(await frames).toEqual([expect.objectContaining({ type: 'hello' })]);
    expect(s.connectionCount()).toBe(0);
  });

  it('stop() closes connected clients and leaves no UDP socket behind', async () => {
    const peers = acceptor();
    const s = await server({ onConnection: peers.onConnection });
    const conn = await connect(s.port);
    await conn.channel.send({ type: 'hello' });
    await (await peers.next()).acceptChannel();
    await s.stop();
    await conn.closed;
    await conn.close();
    servers.splice(servers.indexOf(s), 1);
    clients.splice(clients.indexOf(conn), 1);
    // Runs last: every earlier test's sockets are closed by now too.
    expect(await udpHandlesLeft()).toBe(0);
  });
});
