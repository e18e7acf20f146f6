/**
 * Raw HTTPS requests for tests of the model routes: any method, headers and
 * body (a Buffer, or chunks sent without a content-length), optionally with a
 * client certificate; the answer comes back as bytes.
 */
import https from 'node:https';
import { COORDINATOR_SERVER_NAME } from '../../src/protocol/index.js';

export interface RawRequest {
  url: string;
  method?: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
  headers?: Record<string, string>;
  /** A Buffer is sent with a content-length; an array of chunks is sent chunked. */
  body?: Buffer | Buffer[];
  ca: string;
  cert?: string;
  key?: string;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): unknown;
}

export function rawRequest(r: RawRequest): Promise<RawResponse> {
  const url = new URL(r.url);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        method: r.method ?? 'GET',
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        servername: COORDINATOR_SERVER_NAME,
        ca: r.ca,
        cert: r.cert,
        key: r.key,
        agent: false,
        headers: { ...(Buffer.isBuffer(r.body) ? { 'content-length': String(r.body.length) } : {}), ...r.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) as unknown });
        });
      },
    );
    req.on('error', reject);
    if (Array.isArray(r.body)) for (const chunk of r.body) req.write(chunk);
    req.end(Buffer.isBuffer(r.body) ? r.body : undefined);
  });
}
