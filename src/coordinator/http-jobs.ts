/**
 * The jobs API. For admins (API key; registered inside buildHttpApi's
 * authenticated scope):
 *
 *   POST /v1/jobs                 SubmitJobRequest → JobInfo (201)
 *   POST /v1/jobs                 SubmitJobsRequest { jobs: [...] } → { jobs: JobInfo[] } (201), queued together
 *                                 either with `Idempotency-Key: K`: a retry with K queues nothing and answers the first's jobs
 *   GET  /v1/jobs?state=&limit=   → JobInfo[] (newest first, without outputs)
 *   GET  /v1/jobs/:id?wait=SECS   → JobInfo with output and history; waits up to SECS for a final state
 *   POST /v1/jobs/:id/cancel      → JobInfo
 *
 * For workers (client certificate, and the lease in `x-gogrid-lease`), for
 * inputs and outputs too large for a control frame:
 *
 *   GET  /v1/jobs/:id/input       → { input }
 *   POST /v1/jobs/:id/result      a job.result message → { accepted }
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  checkJobPayload,
  cleanText,
  GridError,
  IDEMPOTENCY_KEY_HEADER,
  IdempotencyKey,
  JobResult,
  JobState,
  LEASE_HEADER,
  MAX_PAYLOAD_BYTES,
  MODEL_FORMAT_OF_KIND,
  SubmitJobRequest,
  SubmitJobsRequest,
  TERMINAL_JOB_STATES,
  type JobInfo,
  type ModelFormat,
  type ModelInfo,
  type ModelRef,
  type SubmitJobsResponse,
} from '../protocol/index.js';
import type { Db } from './store/db.js';
import { getJob, getJobEvents, listJobs, payloadPieces, type JobEventRow, type JobRow } from './store/index.js';
import type { Dispatcher } from './dispatcher.js';
import { parseBody } from '../common/http-errors.js';
import { callerKeyId, workerFromCertificate } from './http-auth.js';
import { sha256Hex } from './enrollment.js';

export interface ModelCatalog {
  info(sha256: string): Promise<ModelInfo | null>;
}

const ListQuery = z.object({ state: JobState.optional(), limit: z.coerce.number().int().min(1).max(10_000).default(100) });
const WaitQuery = z.object({ wait: z.coerce.number().min(0).max(300).default(0) });

export function registerJobRoutes(app: FastifyInstance, deps: { db: Db; dispatcher: Dispatcher; models: ModelCatalog }): void {
  const { db, dispatcher, models } = deps;

  app.post('/v1/jobs', { bodyLimit: MAX_PAYLOAD_BYTES + 64 * 1024, onSend: closeAfterLargeAnswer }, async (req, reply): Promise<JobInfo | SubmitJobsResponse> => {
    const batch = typeof req.body === 'object' && req.body !== null && 'jobs' in req.body;
    const requests = batch ? parseBody(SubmitJobsRequest, req.body).jobs : [parseBody(SubmitJobRequest, req.body)];
    const field = (i: number) => (batch ? `jobs.${i}.` : '');
    for (const [i, r] of requests.entries()) checkInput(r.kind, r.input, field(i));
    const shas = [...new Set(requests.map((r) => r.model.sha256))];
    const found = new Map(await Promise.all(shas.map(async (sha256) => [sha256, await models.info(sha256)] as const)));
    const jobs = requests.map((request, i) => {
      const model = found.get(request.model.sha256);
      if (!model) {
        throw new GridError('GG_ERR_MODEL_NOT_FOUND', `${field(i)}model.sha256: no model ${request.model.sha256} is stored; add it with \`gogrid models add FILE\``);
      }
      checkFormat(request.kind, model, field(i));
      // A name an older version stored unchecked must not make every job of the model unreadable to its worker.
      return { request, model: { sha256: model.sha256, size: model.size, name: cleanText(model.name, true) } satisfies ModelRef };
    });
    const key = idempotencyKey(req);
    let rows: JobRow[];
    if (key === null) rows = await dispatcher.submitMany(jobs);
    else {
      const once = await dispatcher.submitOnce(jobs, { apiKeyId: callerKeyId(req), key, requestSha256: sha256Hex(JSON.stringify(req.body)) });
      rows = once.rows;
      // As the IETF draft on Idempotency-Key and Stripe answer a retry: the first request's jobs, marked as such.
      if (once.replayed) void reply.header('idempotent-replayed', 'true');
    }
    void reply.status(201);
    return batch ? { jobs: rows.map((r) => toJobInfo(r)) } : toJobInfo(rows[0]!);
  });

  app.get('/v1/jobs', { onSend: closeAfterLargeAnswer }, async (req) => {
    const q = parseBody(ListQuery, req.query, 'query');
    return (await listJobs(db, q)).map((r) => toJobInfo(r));
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', { onSend: closeAfterLargeAnswer }, async (req, reply) => {
    const { wait } = parseBody(WaitQuery, req.query, 'query');
    const row = await waitForEnd(req.params.id, wait * 1000);
    const info = toJobInfo(row, await getJobEvents(db, row.id));
    if (row.outputPieces === 0) return info;
    delete info.output;
    return reply.type(JSON_TYPE).send(jsonWithPieces(info, 'output', payloadPieces(db, row.id, 'output', row.outputPieces)));
  });

  app.post<{ Params: { id: string } }>('/v1/jobs/:id/cancel', async (req) => {
    const before = await dispatcher.cancel(req.params.id);
    const row = await getJob(db, req.params.id);
    if (!row) throw new GridError('GG_ERR_JOB_NOT_FOUND', `no job ${req.params.id}`);
    if (!before) throw new GridError('GG_ERR_BAD_REQUEST', `job ${row.id} already ${row.state}; nothing to cancel`);
    return toJobInfo(row);
  });

  /** The job once it is final, or as it is when `ms` run out. */
  async function waitForEnd(id: string, ms: number): Promise<JobRow> {
    const deadline = Date.now() + ms;
    for (;;) {
      const row = await getJob(db, id);
      if (!row) throw new GridError('GG_ERR_JOB_NOT_FOUND', `no job ${id}`);
      const left = deadline - Date.now();
      if (TERMINAL_JOB_STATES.includes(row.state) || left <= 0) return row;
      // Woken by this instance's dispatcher; the 1 s cap catches jobs that
      // finished through another instance sharing the database.
      await dispatcher.whenFinished(id, AbortSignal.timeout(Math.min(left, 1000)));
    }
  }
}

function idempotencyKey(req: FastifyRequest): string | null {
  const value = req.headers[IDEMPOTENCY_KEY_HEADER];
  if (value === undefined) return null;
  if (Array.isArray(value)) throw new GridError('GG_ERR_BAD_REQUEST', 'send one Idempotency-Key header, not several');
  return parseBody(IdempotencyKey, value, 'Idempotency-Key');
}

/**
 * Ends the connection after an answer larger than a socket's write buffer.
 * Node 20's server pauses its request parser when the next request arrives
 * while the previous answer is still draining; on TLS, the rest of a request
 * body that was already read (a second TLS record, so bodies over 16 KiB,
 * like a batch submit) then reaches the paused parser, which fails with
 * HPE_PAUSED and drops the connection: the client sees "socket hang up".
 * Seen with batch submits on keep-alive; a fresh connection costs a TLS
 * handshake per large answer, which such answers amortize.
 */
async function closeAfterLargeAnswer(_req: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> {
  if ((typeof payload === 'string' && payload.length > 16 * 1024) || payload instanceof Readable) void reply.header('connection', 'close');
  return payload;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/**
 * The JSON of `head` with `key` added, its value the JSON text in `pieces`,
 * sent as the pieces are read: a 64 MiB output is never whole in memory here.
 */
function jsonWithPieces(head: object, key: string, pieces: AsyncIterable<string>): Readable {
  const open = JSON.stringify(head).slice(0, -1);
  return Readable.from(
    (async function* () {
      yield `${open}${open === '{' ? '' : ','}${JSON.stringify(key)}:`;
      yield* pieces;
      yield '}';
    })(),
  );
}

/** Refuses an input that cannot work before it takes a queue slot; names the bad field (after `field`, e.g. `jobs.3.`). */
function checkInput(kind: string, input: unknown, field: string): void {
  const size = Buffer.byteLength(JSON.stringify(input));
  if (size > MAX_PAYLOAD_BYTES) throw new GridError('GG_ERR_BAD_REQUEST', `${field}input: ${size} bytes is over the ${MAX_PAYLOAD_BYTES}-byte limit`);
  const problem = checkJobPayload(kind, 'input', input);
  if (problem) throw new GridError('GG_ERR_BAD_REQUEST', `${field}${problem}`);
}

/** Refuses a job whose kind runs another model format than its model's (an `llm` job on an ONNX model). */
function checkFormat(kind: string, model: ModelInfo, field: string): void {
  const needed = MODEL_FORMAT_OF_KIND[kind];
  if (needed === undefined || model.format === needed) return;
  const has = model.format === null ? 'neither ONNX nor GGUF' : A_MODEL_OF[model.format];
  throw new GridError('GG_ERR_MODEL_UNSUPPORTED', `${field}model.sha256: a job of kind ${kind} runs ${A_MODEL_OF[needed]}, and ${model.sha256} is ${has}`);
}

const A_MODEL_OF: Record<ModelFormat, string> = { onnx: 'an ONNX model', gguf: 'a GGUF model' };

/** The routes a worker uses for inputs and results too large for a control frame. */
export const workerJobRoutes: FastifyPluginAsync<{ db: Db; dispatcher: Dispatcher; isWorkerAllowed: (workerId: string) => Promise<boolean> }> = async (
  app,
  deps,
) => {
  const { db, dispatcher } = deps;
  const lease = (req: FastifyRequest) => {
    const value = req.headers[LEASE_HEADER];
    if (typeof value !== 'string' || value === '') throw new GridError('GG_ERR_BAD_REQUEST', `send the lease id in ${LEASE_HEADER}`);
    return value;
  };

  app.get<{ Params: { id: string } }>('/v1/jobs/:id/input', async (req, reply) => {
    const workerId = await workerFromCertificate(req, deps.isWorkerAllowed);
    if (!dispatcher.holdsLease(workerId, req.params.id, lease(req))) {
      throw new GridError('GG_ERR_JOB_LEASE_STALE', `worker ${workerId} holds no current lease ${lease(req)} on job ${req.params.id}`);
    }
    const row = await getJob(db, req.params.id);
    if (!row) throw new GridError('GG_ERR_JOB_NOT_FOUND', `no job ${req.params.id}`);
    if (row.inputPieces === 0) return { input: row.input };
    return reply.type(JSON_TYPE).send(jsonWithPieces({}, 'input', payloadPieces(db, row.id, 'input', row.inputPieces)));
  });

  app.post<{ Params: { id: string } }>('/v1/jobs/:id/result', { bodyLimit: MAX_PAYLOAD_BYTES + 64 * 1024 }, async (req) => {
    const workerId = await workerFromCertificate(req, deps.isWorkerAllowed);
    const msg = parseBody(JobResult, req.body);
    if (msg.jobId !== req.params.id || msg.leaseId !== lease(req)) {
      throw new GridError('GG_ERR_BAD_REQUEST', 'the result names another job or lease than the request');
    }
    const accepted = await dispatcher.takeJobMessage(workerId, msg);
    if (!accepted) throw new GridError('GG_ERR_JOB_LEASE_STALE', `lease ${msg.leaseId} on job ${msg.jobId} is no longer current; result ignored`);
    return { accepted };
  });
};

export function toJobInfo(row: JobRow, events?: JobEventRow[]): JobInfo {
  return {
    id: row.id,
    kind: row.kind,
    model: row.model,
    state: row.state,
    attempt: row.attempt,
    maxAttempts: row.maxAttempts,
    priority: row.priority,
    timeoutMs: row.timeoutMs,
    requirements: row.requirements,
    workerId: row.workerId,
    progress: row.progress,
    waitingReason: row.state === 'queued' ? row.waitingReason : null,
    error: row.error,
    submittedAt: row.submittedAt.toISOString(),
    startedAt: row.startedAt?.toISOString() ?? null,
    finishedAt: row.finishedAt?.toISOString() ?? null,
    queueDeadline: row.queueDeadline?.toISOString() ?? null,
    ...(events ? { output: row.output ?? null, events: events.map((e) => ({ ...e, at: e.at.toISOString() })) } : {}),
  };
}
