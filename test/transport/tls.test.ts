/**
 * The control protocol over TLS on TCP, on a real HTTPS server that also
 * answers HTTP on the same port (as the coordinator's does), and through a
 * real HTTP CONNECT proxy.
 */
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer, get as httpsGet, type RequestOptions } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GridError } from '../../src/protocol/errors.js';
import { printable } from '../../src/protocol/index.js';
import { hostileString } from '../helpers/hostile.js';
import type { ControlConnection, ControlPeer } from '../../src/transport/frame-channel.js';
import { createCa, createKeyAndCsr, issueServerCert, signCsr, type CaMaterial } from '../../src/transport/pki.js';
import { connectProxy } from '../helpers/connect-proxy.js';
import { acceptControlOverTls, connectTls, HTTPS_ALPN, proxyFor, type TlsConnectOptions, type TlsControlHandle } from '../../src/transport/tls.js';

const SERVER_NAME = 'gogrid-coordinator';

let ca: CaMaterial;
let serverId: { certPem: string; keyPem: string };
let workerId: { certPem: string; keyPem: string };
let foreignId: { certPem: string; keyPem: string };
let otherCa: CaMaterial;

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanups.splice(0).reverse()) await f().catch(() => undefined);
});

beforeAll(async () => {
  ca = await createCa({ commonName: 'TLS Test CA' });
  otherCa = await createCa({ commonName: 'Other CA' });
  serverId = await issueServerCert(ca, { dnsNames: [SERVER_NAME], ipAddresses: ['127.0.0.1'] });
  const worker = await createKeyAndCsr('worker');
  workerId = { keyPem: worker.keyPem, certPem: await signCsr(ca, worker.csrPem, { workerId: 'worker-1', validityDays: 1 }) };
  const foreign = await createKeyAndCsr('intruder');
  foreignId = { keyPem: foreign.keyPem, certPem: await signCsr(otherCa, foreign.csrPem, { workerId: 'worker-1', validityDays: 1 }) };
});

/** An HTTPS server set up as the coordinator's (client certificate asked for, not required), answering "http" to requests. */
async function httpsServer(alpn: string[] = HTTPS_ALPN, opts: { idleMs?: number } = {}) {
  const server = createHttpsServer(
    { key: serverId.keyPem, cert: serverId.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3', ALPNProtocols: alpn },
    (_req, res) => res.end('http'),
  );
  const peers: ControlPeer[] = [];
  const waiting: ((p: ControlPeer) => void)[] = [];
  const control: TlsControlHandle = acceptControlOverTls(server, {
    maxIdleTimeoutMs: opts.idleMs ?? 5000,
    onConnection: (peer) => {
      const w = waiting.shift();
      if (w) w(peer);
      else peers.push(peer);
    },
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    await control.stop({ force: true });
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return {
    server,
    control,
    port: (server.address() as AddressInfo).port,
    nextPeer: () => (peers.length > 0 ? Promise.resolve(peers.shift()!) : new Promise<ControlPeer>((resolve) => waiting.push(resolve))),
  };
}

async function connect(port: number, overrides: Partial<TlsConnectOptions> = {}): Promise<ControlConnection> {
  const conn = await connectTls({
    host: '127.0.0.1',
    port,
    serverName: SERVER_NAME,
    tls: { caPem: ca.certPem, ...workerId },
    connectTimeoutMs: 3000,
    maxIdleTimeoutMs: 5000,
    ...overrides,
  });
  cleanups.push(() => conn.close());
  return conn;
}

async function failure(p: Promise<unknown>): Promise<GridError> {
  const e = await p.then(
    () => expect.fail('it connected'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GridError);
  return e as GridError;
}

function httpsText(port: number): Promise<{ alpn: string | false | null; body: string }> {
  return new Promise((resolve, reject) => {
    // Offered as curl offers them (Node's https passes the option on to tls.connect; its types leave it out).
    const options: RequestOptions & { ALPNProtocols: string[] } = { host: '127.0.0.1', port, path: '/', servername: SERVER_NAME, ca: ca.certPem, agent: false, ALPNProtocols: ['h2', 'http/1.1'] };
    httpsGet(options, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ alpn: (res.socket as TLSSocket).alpnProtocol, body }));
    }).on('error', reject);
  });
}

describe('the control protocol over TLS on the HTTPS port', () => {
  it('carries frames both ways with the worker verified, while HTTP on the same port goes on', async () => {
    const s = await httpsServer();
    const conn = await connect(s.port);
    expect(conn.transport).toBe('tcp');
    await conn.channel.send({ type: 'hello', n: 1 });
    const peer = await s.nextPeer();
    expect(peer.transport).toBe('tcp');
    expect(peer.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(peer.peerCertificate).not.toBeNull();
    const serverSide = await peer.acceptChannel();
    const inbound = serverSide.frames()[Symbol.asyncIterator]();
    expect((await inbound.next()).value).toEqual({ type: 'hello', n: 1 });
    // A frame larger than one TLS record (16 KiB) arrives whole.
    const big = { type: 'welcome', pad: 'x'.repeat(100_000) };
    await serverSide.send(big);
    const outbound = conn.channel.frames()[Symbol.asyncIterator]();
    expect((await outbound.next()).value).toEqual(big);
    expect(await httpsText(s.port)).toEqual({ alpn: 'http/1.1', body: 'http' });
    expect(s.control.connectionCount()).toBe(1);
    // The server's close ends the client's frames, and the connection.
    await peer.close();
    expect(await outbound.next()).toMatchObject({ done: true });
    await Promise.all([conn.closed, peer.closed]);
    expect(s.control.connectionCount()).toBe(0);
  });

  it('hands on a worker without a certificate, or with one from another CA, with no certificate: the session layer refuses it', async () => {
    const s = await httpsServer();
    await connect(s.port, { tls: { caPem: ca.certPem } });
    expect((await s.nextPeer()).peerCertificate).toBeNull();
    await connect(s.port, { tls: { caPem: ca.certPem, ...foreignId } });
    expect((await s.nextPeer()).peerCertificate).toBeNull();
  });

  it('closes a connection that stays silent past the idle timeout (a killed worker sends no FIN)', async () => {
    const s = await httpsServer(HTTPS_ALPN, { idleMs: 300 });
    const conn = await connect(s.port);
    const peer = await s.nextPeer();
    await peer.closed;
    await conn.closed;
  });

  it('refuses a server whose certificate is not from our CA, naming the name it checked', async () => {
    const s = await httpsServer();
    const e = await failure(connect(s.port, { tls: { caPem: otherCa.certPem, ...workerId } }));
    expect(e.code).toBe('GG_ERR_UNAUTHENTICATED');
    expect(e.message).toContain(`for the name "${SERVER_NAME}"`);
  });

  it('says a server that does not speak gogrid/1 on TCP is too old, rather than sending it frames', async () => {
    const s = await httpsServer(['http/1.1']);
    const e = await failure(connect(s.port));
    expect(e.code).toBe('GG_ERR_PROTOCOL_VERSION_UNSUPPORTED');
    expect(e.message).toMatch(/ALPN gogrid\/1/);
  });

  it('says nobody listens, and gives up at its deadline on a port that never answers', async () => {
    const s = await httpsServer();
    const port = s.port;
    await cleanups.pop()!();
    expect(await failure(connect(port))).toMatchObject({ code: 'GG_ERR_COORDINATOR_UNREACHABLE', message: expect.stringContaining('ECONNREFUSED') });
    // A TCP server that accepts and never answers the TLS hello.
    const held: Socket[] = [];
    const silent = createNetServer((socket) => held.push(socket));
    silent.listen(0, '127.0.0.1');
    await once(silent, 'listening');
    cleanups.push(() => new Promise((resolve) => silent.close(resolve)));
    cleanups.push(async () => held.forEach((socket) => socket.destroy()));
    const started = performance.now();
    const e = await failure(connect((silent.address() as AddressInfo).port, { connectTimeoutMs: 300 }));
    expect(e).toMatchObject({ code: 'GG_ERR_COORDINATOR_UNREACHABLE', message: expect.stringContaining('within 300 ms') });
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('says a port that answers without TLS is not a coordinator', async () => {
    const plain = createHttpServer((_req, res) => res.end());
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    cleanups.push(() => new Promise((resolve) => plain.close(resolve)));
    const e = await failure(connect((plain.address() as AddressInfo).port));
    expect(e).toMatchObject({ code: 'GG_ERR_COORDINATOR_UNREACHABLE', message: expect.stringContaining('not with TLS') });
    plain.closeAllConnections();
  });
});

describe('through an HTTP CONNECT proxy', () => {
  it('connects through it, with user and password when the URL has them; a refusal names the proxy and its answer', async () => {
    const s = await httpsServer();
    const open = await connectProxy();
    cleanups.push(() => open.close());
    const conn = await connect(s.port, { proxy: open.url() });
    await conn.channel.send({ type: 'hello' });
    expect((await s.nextPeer()).peerCertificate).not.toBeNull();
    expect(open.asked).toEqual([`127.0.0.1:${s.port}`]);

    const guarded = await connectProxy({ credentials: 'ann:p@ss w' });
    cleanups.push(() => guarded.close());
    await connect(s.port, { proxy: guarded.url('ann:p%40ss%20w@') });
    const e = await failure(connect(s.port, { proxy: guarded.url('ann:wrong@') }));
    expect(e).toMatchObject({ code: 'GG_ERR_COORDINATOR_UNREACHABLE', message: expect.stringMatching(/the proxy 127\.0\.0\.1:\d+ would not connect to 127\.0\.0\.1:\d+: HTTP 407/) });
  });

  it('is read from HTTPS_PROXY and NO_PROXY as curl reads them; only http:// proxies', () => {
    const saved = { ...process.env };
    try {
      for (const k of ['HTTPS_PROXY', 'https_proxy', 'ALL_PROXY', 'all_proxy', 'NO_PROXY', 'no_proxy', 'HTTP_PROXY', 'http_proxy']) delete process.env[k];
      expect(proxyFor('grid.example.com', 8443)).toBeNull();
      process.env.HTTPS_PROXY = 'http://proxy.corp:3128';
      expect(proxyFor('grid.example.com', 8443)?.href).toBe('http://proxy.corp:3128/');
      expect(proxyFor('::1', 8443)?.host).toBe('proxy.corp:3128');
      process.env.NO_PROXY = '.example.com,10.0.0.5';
      expect(proxyFor('grid.example.com', 8443)).toBeNull();
      expect(proxyFor('10.0.0.5', 8443)).toBeNull();
      expect(proxyFor('grid.example.org', 8443)).not.toBeNull();
      process.env.HTTPS_PROXY = 'socks5://proxy.corp:1080';
      expect(() => proxyFor('grid.example.org', 8443)).toThrow(/socks5:\/\/ proxies are not supported/);
      // Whatever the variable holds: a proxy URL, or GG_ERR_CONFIG_INVALID in one clean line, never another error.
      delete process.env.NO_PROXY;
      fc.assert(
        fc.property(hostileString, (value) => {
          process.env.HTTPS_PROXY = value.replace(/\0/g, '');
          try {
            expect(proxyFor('grid.example.org', 8443) ?? new URL('http://none')).toBeInstanceOf(URL);
          } catch (e) {
            expect(e).toBeInstanceOf(GridError);
            expect((e as GridError).code).toBe('GG_ERR_CONFIG_INVALID');
            // eslint-disable-next-line no-control-regex
            expect(printable((e as GridError).message)).not.toMatch(/[\u0000-\u001f\u007f\n]/);
          }
        }),
        { numRuns: 300 },
      );
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });
});
