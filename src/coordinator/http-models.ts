/**
 * Model routes of the coordinator's HTTPS API, as a fastify plugin:
 *
 *   POST   /v1/models?name=N&alias=A…      (API key) body: the raw bytes → ModelInfo
 *   GET    /v1/models                      (API key, inference keys too) → ModelList, OpenAI's list shape
 *   GET    /v1/models/:model/info          (API key) → ModelInfo; MODEL is a sha256, name or alias
 *   PUT    /v1/models/:model/name          (API key) { name } → ModelInfo
 *   POST   /v1/models/:model/aliases       (API key) { alias } → ModelInfo
 *   DELETE /v1/models/:model/aliases/:alias (API key) → ModelInfo
 *   GET    /v1/models/:sha256              (worker client certificate, or API key) → the bytes, with ranges
 *
 *   app.register(modelRoutes, { dir: modelsDir(dataDir), requireApiKey, isWorkerAllowed: activeWorkerCheck(db) });
 *
 * The download route is what workers hit for every model they do not cache,
 * so it stays lean: one stat, one `createReadStream`, headers set by hand.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { GridError, MODEL_SHA256_HEADER, ModelAliasRequest, ModelRenameRequest, ModelUploadQuery, type ApiErrorBody, type ModelInfo, type ModelList } from '../protocol/index.js';
import type { Db } from './store/db.js';
import { getWorker } from './store/index.js';
import {
  addModelAlias,
  addModelFromStream,
  checkNamesFree,
  DEFAULT_MAX_MODEL_BYTES,
  findModelFile,
  isSha256Hex,
  listModels,
  ModelTooLargeError,
  prepareModelDir,
  removeModelAlias,
  renameModel,
  resolveModel,
} from './models.js';
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
    const { name, alias: aliases } = parseBody(ModelUploadQuery, req.query, 'query');
    const expected = req.headers[MODEL_SHA256_HEADER];
    if (expected !== undefined && (typeof expected !== 'string' || !isSha256Hex(expected.toLowerCase()))) {
      throw new GridError('GG_ERR_BAD_REQUEST', `${MODEL_SHA256_HEADER}: expected a hex sha256`);
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxUploadBytes) return refuseUnread(reply, 413, errorPayload('GG_ERR_BAD_REQUEST', tooLargeMessage(maxUploadBytes)));
    if (!(req.body instanceof Readable)) {
      throw new GridError('GG_ERR_BAD_REQUEST', 'send the model bytes as the body, with content-type: application/octet-stream');
    }
    // Known before the upload when the client names the hash (the CLI does):
    // a name taken by another model fails before gigabytes travel. Checked
    // again when the model is stored.
    if (expected !== undefined) {
      try {
        await checkNamesFree(dir, [name ?? '', ...aliases].filter(Boolean), expected.toLowerCase());
      } catch (error) {
        if (error instanceof GridError) return refuseUnread(reply, error.status, errorPayload(error.code, error.message));
        throw error;
      }
    }
    // A refused upload must still be answered, so stopping early must not
    // destroy the request (and with it the socket).
    const source = req.body.iterator({ destroyOnReturn: false }) as AsyncIterable<Uint8Array>;
    let info: ModelInfo;
    try {
      info = await addModelFromStream(dir, source, { name, aliases, expectedSha256: expected?.toLowerCase(), maxBytes: maxUploadBytes });
    } catch (error) {
      if (error instanceof ModelTooLargeError) return refuseUnread(reply, 413, errorPayload('GG_ERR_BAD_REQUEST', tooLargeMessage(maxUploadBytes)));
      // The registry's 502 is for bytes a worker downloaded; here the client sent them.
      if (error instanceof GridError && error.code === 'GG_ERR_MODEL_HASH_MISMATCH') return reply.code(400).send(errorPayload(error.code, error.message));
      throw error;
    }
    req.log.info({ sha256: info.sha256, size: info.size, name: info.name, format: info.format }, 'model added');
    return info;
  });

  app.get('/v1/models', { onRequest: requireApiKey }, async (): Promise<ModelList> => ({
    object: 'list',
    data: (await listModels(dir)).map((m) => ({ id: m.name, object: 'model', created: Math.floor(Date.parse(m.addedAt) / 1000), owned_by: 'gogrid', ...m })),
  }));

  app.get<{ Params: { model: string } }>('/v1/models/:model/info', { onRequest: requireApiKey }, async (req): Promise<ModelInfo> => found(req.params.model));

  app.put<{ Params: { model: string } }>('/v1/models/:model/name', { onRequest: requireApiKey }, async (req): Promise<ModelInfo> => {
    const { name } = parseBody(ModelRenameRequest, req.body);
    return renameModel(dir, (await found(req.params.model)).sha256, name);
  });

  app.post<{ Params: { model: string } }>('/v1/models/:model/aliases', { onRequest: requireApiKey }, async (req): Promise<ModelInfo> => {
    const { alias } = parseBody(ModelAliasRequest, req.body);
    return addModelAlias(dir, (await found(req.params.model)).sha256, alias);
  });

  app.delete<{ Params: { model: string; alias: string } }>('/v1/models/:model/aliases/:alias', { onRequest: requireApiKey }, async (req): Promise<ModelInfo> =>
    removeModelAlias(dir, (await found(req.params.model)).sha256, req.params.alias),
  );

  /** The model a sha256, name or alias names, or GG_ERR_MODEL_NOT_FOUND. */
  async function found(ref: string): Promise<ModelInfo> {
    const info = await resolveModel(dir, ref);
    if (!info) throw new GridError('GG_ERR_MODEL_NOT_FOUND', `no model ${isSha256Hex(ref) ? ref : `named "${ref}"`} on this coordinator; \`gogrid models\` lists them`);
    return info;
  }

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

function tooLargeMessage(maxBytes: number): string {
  return `model is larger than the maximum of ${maxBytes} bytes`;
}

/** Answers an upload whose body is left unread: closing is cheaper than draining up to 64 GiB. */
function refuseUnread(reply: FastifyReply, status: number, payload: ApiErrorBody): FastifyReply {
  return reply.code(status).header('connection', 'close').send(payload);
}
