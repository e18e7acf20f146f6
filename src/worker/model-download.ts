/**
 * Fetches model bytes for the model cache: `GET /v1/models/SHA256` on the
 * coordinator over HTTPS, authenticated by the worker's own mTLS client
 * certificate, from an offset when resuming.
 *
 *   const download = httpsModelDownloader({ baseUrl: 'https://10.0.0.5:8443', tls: () => identity });
 *   const res = await download(sha256, { offset: 0, signal });
 *   for await (const chunk of res.body) …
 *
 * The cache only sees the `ModelDownloader` function type, so tests can
 * inject faults and another mirror can serve the bytes: they are verified
 * against the sha256 either way.
 */
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { ApiErrorBody, ERROR_CODES, GridError, type ErrorCode } from '../protocol/index.js';
import { coordinatorTls, type WorkerTls } from '../transport/https-client.js';

export interface DownloadResponse {
  /** 206 when the server honoured `offset`; 200 means the body starts at byte 0. */
  status: 200 | 206;
  body: AsyncIterable<Uint8Array>;
  /** The size of the whole model, not of this body. */
  totalSize: number;
}

export type ModelDownloader = (sha256: string, opts: { offset: number; signal?: AbortSignal }) => Promise<DownloadResponse>;

export interface HttpsDownloaderOptions {
  /** The coordinator, e.g. `https://10.0.0.5:8443`. */
  baseUrl: string;
  /** Read at every request, so a certificate renewed meanwhile is used from the next download on. */
  tls: () => WorkerTls;
  /**
   * No bytes for this long (while connecting or during the body) fails the download; what arrived is kept for resume.
   * @default 30_000
   */
  idleTimeoutMs?: number;
  /** Called for each chunk with the bytes of the model received so far (counting `offset`). */
  onProgress?: (p: { sha256: string; receivedBytes: number; totalSize: number }) => void;
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+)$/;

export function httpsModelDownloader(opts: HttpsDownloaderOptions): ModelDownloader {
  const idleTimeoutMs = opts.idleTimeoutMs ?? 30_000;
  return (sha256, { offset, signal }) =>
    new Promise<DownloadResponse>((resolve, reject) => {
      const url = new URL(`${opts.baseUrl.replace(/\/+$/, '')}/v1/models/${sha256}`);
      let response: IncomingMessage | undefined;
      const req = https.request({
        host: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port || 443,
        path: url.pathname,
        ...coordinatorTls(opts.tls()),
        signal,
        headers: { accept: 'application/octet-stream', ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
      });
      req.setTimeout(idleTimeoutMs, () => {
        const err = new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `model download from ${url.host} stalled for ${idleTimeoutMs} ms`);
        // Once the body is flowing the response is what the cache reads from.
        response?.destroy(err);
        req.destroy(err);
      });
      req.on('error', (e) => reject(toDownloadError(e, url)));
      req.on('response', (res) => {
        response = res;
        accept(res, sha256, offset).then(
          (r) => resolve(opts.onProgress ? { ...r, body: counted(r.body, sha256, r.status === 206 ? offset : 0, r.totalSize, opts.onProgress) } : r),
          (e: unknown) => {
            res.destroy();
            reject(e);
          },
        );
      });
      req.end();
    });
}

async function accept(res: IncomingMessage, sha256: string, offset: number): Promise<DownloadResponse> {
  const status = res.statusCode ?? 0;
  if (status === 200) {
    const length = Number(res.headers['content-length']);
    if (!Number.isSafeInteger(length)) throw new GridError('GG_ERR_INTERNAL', `the model server sent ${sha256} without a content-length`);
    return { status: 200, body: res, totalSize: length };
  }
  if (status === 206) {
    const m = CONTENT_RANGE.exec(res.headers['content-range'] ?? '');
    if (!m || Number(m[1]) !== offset) {
      throw new GridError('GG_ERR_INTERNAL', `asked for ${sha256} from byte ${offset}, got content-range "${res.headers['content-range'] ?? ''}"`);
    }
    return { status: 206, body: res, totalSize: Number(m[3]) };
  }
  if (status === 416) {
    // We only ask for a range below the size the job named, so the server's copy is a different file.
    throw new GridError('GG_ERR_MODEL_HASH_MISMATCH', `the model server has fewer than ${offset} bytes of ${sha256}; the partial download was discarded`);
  }
  throw await errorFrom(res, sha256).catch((e: unknown) => e);
}

async function errorFrom(res: IncomingMessage, sha256: string): Promise<GridError> {
  let text = '';
  for await (const chunk of res as AsyncIterable<Buffer>) {
    text += chunk.toString('utf8');
    if (text.length > 64 * 1024) break;
  }
  let parsed: ApiErrorBody | null = null;
  try {
    const r = ApiErrorBody.safeParse(JSON.parse(text));
    parsed = r.success ? r.data : null;
  } catch {
    parsed = null;
  }
  const status = res.statusCode ?? 0;
  if (parsed && parsed.error.code in ERROR_CODES) return new GridError(parsed.error.code as ErrorCode, parsed.error.message);
  if (status === 404) return new GridError('GG_ERR_MODEL_NOT_FOUND', `the model server has no model ${sha256}`);
  return new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `model download of ${sha256} answered HTTP ${status}`);
}

async function* counted(
  body: AsyncIterable<Uint8Array>,
  sha256: string,
  start: number,
  totalSize: number,
  onProgress: NonNullable<HttpsDownloaderOptions['onProgress']>,
): AsyncIterable<Uint8Array> {
  let receivedBytes = start;
  for await (const chunk of body) {
    receivedBytes += chunk.length;
    onProgress({ sha256, receivedBytes, totalSize });
    yield chunk;
  }
}

function toDownloadError(e: Error, url: URL): Error {
  if (e instanceof GridError || e.name === 'AbortError') return e;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  if (code.startsWith('ERR_TLS') || code.includes('CERT') || code === 'EPROTO') {
    return new GridError('GG_ERR_UNAUTHENTICATED', `TLS with the model server ${url.host} failed: ${e.message}`, { cause: e });
  }
  return new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `cannot download from ${url.host}: ${code || e.message}`, { cause: e });
}
