/**
 * A small JSON-over-HTTPS client for the coordinator's API, pinned to the
 * coordinator's own CA. Node 20's global fetch cannot take a custom CA or a
 * client certificate without importing undici's Agent, which is not a public
 * module on Node 20, so this sits on `node:https` directly.
 *
 *   const body = await requestJson({ url: 'https://127.0.0.1:8443/v1/workers', ca: caPem, headers: { authorization } });
 */
import type { ClientRequestArgs } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { proxyFor, proxyTunnel } from './proxy.js';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { ApiErrorBody, COORDINATOR_SERVER_NAME, GridError, isGridError, type ErrorCode, ERROR_CODES } from '../protocol/index.js';

/** A worker's mTLS material: the coordinator's CA and its own certificate and key (PEM). A WorkerIdentity is one. */
export interface WorkerTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * The TLS options of every `https.request` to the coordinator: its CA pinned,
 * its certificate checked for COORDINATOR_SERVER_NAME whatever address was
 * dialled, and the worker's client certificate when given; through the
 * HTTP proxy that HTTPS_PROXY names for it, if any (proxy.ts). No agent: a
 * pooled connection would go on presenting a certificate renewed since.
 */
export function coordinatorTls(tls: Partial<WorkerTls>): https.RequestOptions {
  return { servername: COORDINATOR_SERVER_NAME, ca: tls.caPem, cert: tls.certPem, key: tls.keyPem, agent: undefined, createConnection: connectMaybeProxied };
}

/** A request's TLS socket, straight or through the proxy; Node calls this with the request's options when it has no agent. */
function connectMaybeProxied(args: ClientRequestArgs, done: (err: Error | null, socket: Duplex) => void): Duplex | undefined {
  // The TLS options set above and by the caller; Node passes them through untyped. Picked, not spread:
  // a request's `path` would make tls.connect dial a Unix socket of that name.
  const { servername, ca, cert, key, rejectUnauthorized } = args as ClientRequestArgs & ConnectionOptions;
  const host = args.hostname ?? args.host ?? 'localhost';
  const port = Number(args.port ?? 443);
  const tlsOptions: ConnectionOptions = { host, port, servername, ca, cert, key, rejectUnauthorized, ALPNProtocols: ['http/1.1'] };
  const proxy = proxyFor(host, port);
  if (proxy === null) return tlsConnect(tlsOptions);
  // The request's own timeout covers the rest; this bounds a proxy that never answers CONNECT.
  proxyTunnel(proxy, host, port, AbortSignal.timeout(30_000)).then(
    (raw) => done(null, tlsConnect({ ...tlsOptions, socket: raw })),
    (e: unknown) => done(e instanceof Error ? e : new Error(String(e)), undefined as never),
  );
  return undefined;
}

export interface HttpsRequest {
  url: string;
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** JSON, or a raw byte stream sent as application/octet-stream (uploads). */
  body?: unknown;
  /** Byte length of a stream body, when known (sent as content-length). */
  bodyLength?: number;
  headers?: Record<string, string>;
  /** PEM of the CA the server certificate must chain to, for routes without a client certificate. Omit only with `insecureNoVerify`. */
  ca?: string;
  /** The worker's CA and client certificate (mTLS), for the routes that take one; instead of `ca`. */
  tls?: WorkerTls;
  /** Skip server verification: only for fetching the CA whose fingerprint the caller then checks itself. */
  insecureNoVerify?: boolean;
  timeoutMs?: number;
  /** Largest response body accepted. */
  maxBytes?: number;
}

export interface HttpsResponse {
  status: number;
  body: unknown;
  peerCertificate: PeerCertificate | null;
}

/** Sends one request; a non-2xx answer with an API error body becomes a GridError with the server's code. */
export async function requestJson(req: HttpsRequest): Promise<unknown> {
  const res = await sendRequest(req);
  if (res.status >= 200 && res.status < 300) return res.body;
  const parsed = ApiErrorBody.safeParse(res.body);
  if (parsed.success) {
    const code = parsed.data.error.code;
    throw new GridError(code in ERROR_CODES ? (code as ErrorCode) : 'GG_ERR_INTERNAL', parsed.data.error.message);
  }
  throw new GridError('GG_ERR_INTERNAL', `coordinator answered HTTP ${res.status} without an error body`);
}

export function sendRequest(req: HttpsRequest): Promise<HttpsResponse> {
  const url = new URL(req.url);
  if (url.protocol !== 'https:') {
    return Promise.reject(new GridError('GG_ERR_CONFIG_INVALID', `API URL must start with https:// (got ${req.url})`));
  }
  const stream = isByteStream(req.body) ? req.body : undefined;
  const payload = req.body === undefined || stream ? undefined : Buffer.from(JSON.stringify(req.body));
  const maxBytes = req.maxBytes ?? 16 * 1024 * 1024;
  return new Promise<HttpsResponse>((resolve, reject) => {
    const r = https.request(
      {
        method: req.method ?? (payload || stream ? 'POST' : 'GET'),
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || 443,
        path: url.pathname + url.search,
        ...coordinatorTls(req.tls ?? { caPem: req.ca }),
        rejectUnauthorized: !req.insecureNoVerify,
        timeout: req.timeoutMs ?? 10_000,
        headers: {
          accept: 'application/json',
          ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}),
          ...(stream ? { 'content-type': 'application/octet-stream', ...(req.bodyLength !== undefined ? { 'content-length': String(req.bodyLength) } : {}) } : {}),
          ...req.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const peer = (res.socket as TLSSocket).getPeerCertificate?.(false) ?? null;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) {
            res.destroy(new GridError('GG_ERR_BAD_REQUEST', `response exceeds ${maxBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown = null;
          if (text.length > 0) {
            try {
              body = JSON.parse(text);
            } catch {
              reject(new GridError('GG_ERR_INTERNAL', `coordinator answered HTTP ${res.statusCode} with a non-JSON body`));
              return;
            }
          }
          resolve({ status: res.statusCode ?? 0, body, peerCertificate: peer && 'raw' in peer ? peer : null });
        });
      },
    );
    r.on('timeout', () => r.destroy(new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `no answer from ${url.host} within ${req.timeoutMs ?? 10_000} ms`)));
    r.on('error', (e) => reject(toNetworkError(e, url)));
    if (stream) {
      stream.on('error', (e) => r.destroy(e));
      stream.pipe(r);
    } else {
      r.end(payload);
    }
  });
}

function isByteStream(body: unknown): body is NodeJS.ReadableStream {
  return typeof body === 'object' && body !== null && typeof (body as NodeJS.ReadableStream).pipe === 'function';
}

/** Socket error codes that mean "not reachable now" (retryable), not "reached, and refused". */
export const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT']);

function toNetworkError(e: Error, url: URL): Error {
  if (isGridError(e)) return e;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  if (UNREACHABLE_CODES.has(code)) {
    return new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `cannot reach the coordinator at ${url.host}: ${code}`, { cause: e });
  }
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'EPROTO') {
    return new GridError('GG_ERR_UNAUTHENTICATED', `TLS with ${url.host} failed: ${e.message}`, { cause: e });
  }
  return e;
}
