/**
 * The HTTPS model downloader against small real servers that misbehave:
 * silence, a stall mid-body, error answers, a wrong range.
 */
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCa, createKeyAndCsr, issueServerCert, signCsr } from '../../src/transport/pki.js';
import { httpsModelDownloader } from '../../src/worker/model-download.js';
import type { WorkerTls } from '../../src/transport/https-client.js';

const SHA = 'a'.repeat(64);
let tls: WorkerTls;
let serverTls: { certPem: string; keyPem: string };
const servers: Array<https.Server | TcpServer> = [];
const sockets = new Set<Socket>();

beforeAll(async () => {
  const ca = await createCa({ commonName: 'test CA' });
  serverTls = await issueServerCert(ca, { dnsNames: ['gogrid-coordinator'] });
  const { keyPem, csrPem } = await createKeyAndCsr('w-1');
  tls = { caPem: ca.certPem, keyPem, certPem: await signCsr(ca, csrPem, { workerId: 'w-1', validityDays: 1 }) };
});
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.clear();
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function listen<T extends https.Server | TcpServer>(server: T): Promise<string> {
  servers.push(server);
  server.on('connection', (s: Socket) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function httpsServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  return listen(https.createServer({ key: serverTls.keyPem, cert: serverTls.certPem }, handler));
}

describe('httpsModelDownloader', () => {
  it('gives up on a server that accepts the connection and never answers', async () => {
    const baseUrl = await listen(createTcpServer(() => undefined));
    const download = httpsModelDownloader({ baseUrl, tls: () => tls, idleTimeoutMs: 200 });
    await expect(download(SHA, { offset: 0 })).rejects.toMatchObject({ code: 'GG_ERR_COORDINATOR_UNREACHABLE' });
  });

  it('fails the body when the server stalls mid-way', async () => {
    const baseUrl = await httpsServer((_req, res) => {
      res.writeHead(200, { 'content-length': '1000000' });
      res.write(Buffer.alloc(1000));
    });
    const res = await httpsModelDownloader({ baseUrl, tls: () => tls, idleTimeoutMs: 200 })(SHA, { offset: 0 });
    expect([res.status, res.totalSize]).toEqual([200, 1_000_000]);
    let received = 0;
    const drain = async () => {
      for await (const chunk of res.body) received += chunk.length;
    };
    await expect(drain()).rejects.toMatchObject({ code: 'GG_ERR_COORDINATOR_UNREACHABLE' });
    expect(received).toBe(1000);
  });

  it('asks for the rest with a range and reports the whole size', async () => {
    let range: string | undefined;
    const baseUrl = await httpsServer((req, res) => {
      range = req.headers.range;
      res.writeHead(206, { 'content-range': 'bytes 600-999/1000', 'content-length': '400' });
      res.end(Buffer.alloc(400));
    });
    const progress: number[] = [];
    const res = await httpsModelDownloader({ baseUrl, tls: () => tls, onProgress: (p) => progress.push(p.receivedBytes) })(SHA, { offset: 600 });
    for await (const chunk of res.body) void chunk;
    expect(range).toBe('bytes=600-');
    expect([res.status, res.totalSize, progress.at(-1)]).toEqual([206, 1000, 1000]);
  });

  it('turns error answers into the matching GridError', async () => {
    const answers: Array<[number, Record<string, string>, string]> = [
      [404, { 'content-type': 'application/json' }, JSON.stringify({ error: { code: 'GG_ERR_MODEL_NOT_FOUND', message: 'no such model' } })],
      [403, { 'content-type': 'application/json' }, JSON.stringify({ error: { code: 'GG_ERR_WORKER_REVOKED', message: 'revoked' } })],
      [416, { 'content-range': 'bytes */10' }, ''],
      [206, { 'content-range': 'bytes 0-9/10' }, '0123456789'],
      [500, {}, 'oops'],
    ];
    let next = 0;
    const baseUrl = await httpsServer((_req, res) => {
      const [status, headers, body] = answers[next++]!;
      res.writeHead(status, headers);
      res.end(body);
    });
    const download = httpsModelDownloader({ baseUrl, tls: () => tls });
    const codeOf = (offset: number) => download(SHA, { offset }).then(() => 'resolved', (e: { code?: string }) => e.code);
    expect(await codeOf(0)).toBe('GG_ERR_MODEL_NOT_FOUND');
    expect(await codeOf(0)).toBe('GG_ERR_WORKER_REVOKED');
    expect(await codeOf(50)).toBe('GG_ERR_MODEL_HASH_MISMATCH');
    // Asked from 5, answered from 0: not what was asked for.
    expect(await codeOf(5)).toBe('GG_ERR_INTERNAL');
    expect(await codeOf(0)).toBe('GG_ERR_COORDINATOR_UNREACHABLE');
  });

  it('reports an unreachable coordinator', async () => {
    const baseUrl = await listen(createTcpServer());
    await new Promise((resolve) => servers.pop()!.close(resolve));
    await expect(httpsModelDownloader({ baseUrl, tls: () => tls })(SHA, { offset: 0 })).rejects.toMatchObject({ code: 'GG_ERR_COORDINATOR_UNREACHABLE' });
  });
});
