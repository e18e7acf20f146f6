/**
 * Model routes of the coordinator's HTTPS API, as a fastify plugin:
 *
 *   POST /v1/models?name=NAME   (API key) body: the raw bytes → ModelInfo
 *   GET  /v1/models             (API key) → ModelList
 *   GET  /v1/models/:sha256/info (API key) → ModelInfo
 *   GET  /v1/models/:sha256     (worker client certificate, or API key) → the bytes, with ranges
 *
 *   app.register(modelRoutes, { dir: modelsDir(dataDir), requireApiKey, isWorkerAllowed: activeWorkerCheck(db) });
 *
 * The download route is what workers hit for every model they do not cache,
 * so it stays lean: one stat, one `createReadStream`, headers set by hand.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { GridError, MODEL_SHA256_HEADER, ModelUploadQuery, type ModelInfo, type ModelList } from '../protocol/index.js';
import type { Db } from './store/db.js';
import { getWorker } from './store/index.js';
import { addModelFromStream, DEFAULT_MAX_MODEL_BYTES, findModelFile, getModelInfo, isSha256Hex, listModels, ModelTooLargeError, prepareModelDir } from './models.js';
import { parseRange } from './http-range.js';
import { workerFromCertificate } from './http-auth.js';
import { errorPayload, parseBody } from '../common/http-errors.js';

export interface ModelRoutesOptions {
  /** The model store directory, `modelsDir(dataDir)`. */
  dir: string;
  /** The admin API key check of buildHttpApi; throws GG_ERR_UNAUTHENTICATED. */
  requireApiKey: (req: FastifyRequest) => Promise<void>;
  /** Whether the worker named by a valid client certificate may download (enrolled and not revoked). */
  isWorkerAllowed: (workerId: string) => Promise<boolean>;
  /** @default DEFAULT_MAX_MODEL_BYTES (64 GiB) */
  maxUploadBytes?: number;
}

/** `isWorkerAllowed` from the workers table: a certificate outlives a revocation, the table does not. */
export function activeWorkerCheck(db: Db): (workerId: string) => Promise<boolean> {
  return async (workerId) => {
    const row = await getWorker(db, workerId);
    return row !== null && row.state !== 'revoked';
  };
}

// Read in large pieces: the TLS layer splits them into records anyway, and
// fewer, bigger reads cost less per byte than the 64 KiB default.
const READ_CHUNK = 1024 * 1024;

export const modelRoutes: FastifyPluginAsync<ModelRoutesOptions> = async (app, opts) => {
  const { dir, requireApiKey } = opts;
  const maxUploadBytes = opts.maxUploadBytes ?? DEFAULT_MAX_MODEL_BYTES;
  await prepareModelDir(dir);

  // The body reaches the handler as the request stream itself, so a model is
  // never held in memory and the server-wide 1 MiB body limit does not apply.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  app.post('/v1/models', { onRequest: requireApiKey }, async (req, reply) => {
    const { name } = parseBody(ModelUploadQuery, req.query, 'query');
    const expected = req.headers[MODEL_SHA256_HEADER];
    if (expected !== undefined && (typeof expected !== 'string' || !isSha256Hex(expected.toLowerCase()))) {
      throw new GridError('GG_ERR_BAD_REQUEST', `${MODEL_SHA256_HEADER}: expected a hex sha256`);
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxUploadBytes) return tooLarge(reply, maxUploadBytes);
    if (!(req.body instanceof Readable)) {
      throw new GridError('GG_ERR_BAD_REQUEST', 'send the model bytes as the body, with content-type: application/octet-stream');
    }
    // A refused upload must still be answered, so stopping early must not
    // destroy the request (and with it the socket).
    const source = req.body.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>;
    let info: ModelInfo;
    try {
      info = await addModelFromStream(dir, source, { name, expectedSha256: expected?.toLowerCase(), maxBytes: maxUploadBytes });
    } catch (error) {
      if (error instanceof ModelTooLargeError) return tooLarge(reply, maxUploadBytes);
      // The registry's 502 is for bytes a worker downloaded; here the client sent them.
      if (error instanceof GridError && error.code === 'GG_ERR_MODEL_HASH_MISMATCH') return reply.code(400).send(errorPayload(error.code, error.message));
      throw error;
    }
    req.log.info({ sha256: info.sha256, size: info.size, name: info.name }, 'model added');
    return info;
  });

  app.get('/v1/models', { onRequest: requireApiKey }, async (): Promise<ModelList> => listModels(dir));

  app.get<{ Params: { sha256: string } }>('/v1/models/:sha256/info', { onRequest: requireApiKey }, async (req): Promise<ModelInfo> => {
    const info = await getModelInfo(dir, checkedSha256(req.params.sha256));
    if (!info) throw notFound(req.params.sha256);
    return info;
  });

  // HEAD is its own route: fastify's automatic one would read the whole file to discard it.
  app.get<{ Params: { sha256: string } }>('/v1/models/:sha256', { exposeHeadRoute: false, onRequest: authorizeDownload }, (req, reply) => serveModel(req, reply, false));
  app.head<{ Params: { sha256: string } }>('/v1/models/:sha256', { onRequest: authorizeDownload }, (req, reply) => serveModel(req, reply, true));

  async function serveModel(req: FastifyRequest<{ Params: { sha256: string } }>, reply: FastifyReply, headOnly: boolean): Promise<FastifyReply> {
    const sha256 = checkedSha256(req.params.sha256);
    const file = await findModelFile(dir, sha256);
    if (!file) throw notFound(sha256);
    // The content never changes under its name, so the hash is a strong ETag
    // and a resumed download needs no If-Range check.
    void reply.header('etag', `"${sha256}"`).header('accept-ranges', 'bytes').header('cache-control', 'private, max-age=31536000, immutable');
    const range = parseRange(req.headers.range, file.size);
    if (range.kind === 'unsatisfiable') {
      return reply.code(416).header('content-range', `bytes */${file.size}`).send(errorPayload('GG_ERR_BAD_REQUEST', `range ${req.headers.range} is outside the model's ${file.size} bytes`));
    }
    const { start, end } = range.kind === 'partial' ? range : { start: 0, end: file.size - 1 };
    if (range.kind === 'partial') void reply.code(206).header('content-range', `bytes ${start}-${end}/${file.size}`);
    void reply.header('content-type', 'application/octet-stream').header('content-length', String(end - start + 1));
    if (headOnly || file.size === 0) return reply.send();
    return reply.send(createReadStream(file.path, { start, end, highWaterMark: READ_CHUNK }));
  }

  /** A worker's own client certificate, checked against the coordinator CA by TLS, or an admin API key. */
  async function authorizeDownload(req: FastifyRequest): Promise<void> {
    if (req.headers.authorization !== undefined) return requireApiKey(req);
    await workerFromCertificate(req, opts.isWorkerAllowed);
  }
};

function checkedSha256(s: string): string {
  if (!isSha256Hex(s)) throw new GridError('GG_ERR_BAD_REQUEST', `${s}: expected a lowercase hex sha256`);
  return s;
}

function notFound(sha256: string): GridError {
  return new GridError('GG_ERR_MODEL_NOT_FOUND', `no model ${sha256} on this coordinator; add it with "gogrid models add FILE"`);
}

function tooLarge(reply: FastifyReply, maxBytes: number): FastifyReply {
  // The rest of the body is not read: closing is cheaper than draining up to 64 GiB.
  return reply.code(413).header('connection', 'close').send(errorPayload('GG_ERR_BAD_REQUEST', `model is larger than the maximum of ${maxBytes} bytes`));
}
