/**
 * The coordinator's HTTPS API bodies, shared by the server (fastify routes)
 * and its clients (the worker's enrollment, the `gogrid` admin commands).
 * The `--json` output of `gogrid workers`, `gogrid token list` and `gogrid keys list` is exactly
 * these shapes, so they are part of the documented, stable interface.
 *
 *   const workers = WorkerList.parse(await api.get('/v1/workers'));
 */
import { z } from 'zod';
import { GPU_BACKENDS, HardwareReport, JobRequirements, ModelRef } from './messages.js';
import { AdminOverride } from './policy.js';
import { json, line, prose } from './text.js';
import { TOKEN_ID_PATTERN, TOKEN_SECRET_PATTERN } from './token.js';

const isoDate = z.iso.datetime();

/**
 * Every failed API call answers with this body and the code's HTTP status.
 * `type` and `param` are there for OpenAI's clients (the OpenAI-compatible
 * routes share the shape): the error class for the status, and the bad field.
 */
export const ApiErrorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), type: z.string().optional(), param: z.string().nullable().optional() }),
});

// ---------------------------------------------------------------- enrollment (no API key: the token is the credential)

export const CaResponse = z.object({ caPem: z.string() });

export const EnrollRequest = z.object({
  tokenId: z.string().regex(TOKEN_ID_PATTERN),
  tokenSecret: z.string().regex(TOKEN_SECRET_PATTERN),
  csrPem: prose(16_384).min(1),
  /** The id the worker already has in its data dir; used unless another worker holds it. */
  proposedWorkerId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  name: line(256).min(1),
});

export const EnrollResponse = z.object({
  /** Authoritative: the worker stores this id (it differs from the proposed one only on a clash). */
  workerId: z.string(),
  certPem: z.string(),
  caPem: z.string(),
});

// ---------------------------------------------------------------- tokens

export const CreateTokenRequest = z.object({
  /** Seconds until the token expires. */
  ttlSecs: z.number().int().positive().max(365 * 24 * 3600).default(24 * 3600),
  maxUses: z.number().int().positive().max(100_000).default(1),
  description: line(256).default(''),
});

export const TokenInfo = z.object({
  id: z.string(),
  description: z.string(),
  createdAt: isoDate,
  expiresAt: isoDate,
  maxUses: z.number().int(),
  uses: z.number().int(),
  revokedAt: isoDate.nullable(),
  /** Derived: `active` while usable, else why not. */
  status: z.enum(['active', 'expired', 'used_up', 'revoked']),
});

export const CreatedToken = z.object({ token: z.string(), info: TokenInfo });
export const TokenList = z.array(TokenInfo);

// ---------------------------------------------------------------- API keys

/**
 * `admin` may call every route; `inference` only the OpenAI-compatible ones;
 * `metrics` only `GET /metrics`, for a Prometheus server's configuration
 * (ROUTES_OF_SCOPE in coordinator/http-auth.ts).
 */
export const ApiKeyScope = z.enum(['admin', 'inference', 'metrics']);

export const CreateApiKeyRequest = z.object({
  scope: ApiKeyScope,
  name: line(256).default(''),
});

export const ApiKeyInfo = z.object({
  id: z.string(),
  name: z.string(),
  scope: ApiKeyScope,
  createdAt: isoDate,
  /** To within a minute: a key's use is recorded at most once a minute. */
  lastUsedAt: isoDate.nullable(),
  revokedAt: isoDate.nullable(),
  status: z.enum(['active', 'revoked']),
});

/** `key` is shown this once; the coordinator keeps only its sha256. */
export const CreatedApiKey = z.object({ key: z.string(), info: ApiKeyInfo });
export const ApiKeyList = z.array(ApiKeyInfo);

// ---------------------------------------------------------------- workers

export const WorkerState = z.enum(['online', 'offline', 'paused', 'revoked']);

export const WorkerInfo = z.object({
  id: z.string(),
  name: z.string(),
  state: WorkerState,
  /** Why the worker is paused, in words; null unless state is `paused`. */
  pausedReason: z.string().nullable(),
  lastSeen: isoDate.nullable(),
  enrolledAt: isoDate,
  appVersion: z.string().nullable(),
  hardware: HardwareReport.nullable(),
  certNotAfter: isoDate,
  /** What carried its last session: `quic`, or `tcp` where its network drops UDP; null before its first since version 12 of the store. */
  transport: z.enum(['quic', 'tcp']).nullable().default(null),
  /** The labels its owner set, as of its last session (jobs can require them). */
  labels: z.array(z.string()).default([]),
});

export const WorkerList = z.array(WorkerInfo);

// ---------------------------------------------------------------- jobs

export const JOB_STATES = ['queued', 'leased', 'running', 'succeeded', 'failed', 'canceled'] as const;
export const JobState = z.enum(JOB_STATES);
export const TERMINAL_JOB_STATES: readonly JobState[] = ['succeeded', 'failed', 'canceled'];

/** A job waits a week for a worker unless it says otherwise: long enough for desktops that are free only at night and on weekends. */
export const DEFAULT_QUEUE_TIMEOUT_MS = 7 * 24 * 3600 * 1000;
export const MAX_QUEUE_TIMEOUT_MS = 365 * 24 * 3600 * 1000;

export const SubmitJobRequest = z.object({
  kind: line(32).min(1).default('onnx'),
  /** The model by content hash; it must already be stored (`gogrid models add`). */
  model: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256') }),
  input: json().refine((v) => v !== undefined, 'required'),
  requirements: JobRequirements.default({}),
  timeoutMs: z.number().int().positive().max(7 * 24 * 3600 * 1000).default(60_000),
  /**
   * How long the job may wait in the queue for a worker; past it, it fails
   * with GG_ERR_NO_WORKER_AVAILABLE and the reason it was waiting.
   * @default DEFAULT_QUEUE_TIMEOUT_MS
   */
  queueTimeoutMs: z.number().int().positive().max(MAX_QUEUE_TIMEOUT_MS).optional(),
  maxAttempts: z.number().int().min(1).max(100).default(3),
  /** Higher runs first. */
  priority: z.number().int().min(-1000).max(1000).default(0),
}).superRefine((job, ctx) => {
  // A misspelt backend would otherwise wait a week for a worker that cannot exist.
  const backend = job.requirements.gpu?.backend;
  const known = GPU_BACKENDS[job.kind];
  if (backend === undefined || backend === 'any' || !known || known.includes(backend)) return;
  ctx.addIssue({ code: 'custom', path: ['requirements', 'gpu', 'backend'], message: `${job.kind} jobs run on ${known.join(', ')} or any, not "${backend}"` });
});

/** The most jobs one `POST /v1/jobs` may carry in `{ jobs: [...] }`. */
export const MAX_SUBMIT_BATCH = 1000;

/**
 * `POST /v1/jobs` with several jobs: queued together (all or none, in one
 * statement), in the order given; a bad job fails the request naming its
 * index (`jobs.3.model.sha256: …`). The whole body has the same size limit
 * as a single submit, so large inputs go one job per request.
 */
export const SubmitJobsRequest = z.object({ jobs: z.array(SubmitJobRequest).min(1).max(MAX_SUBMIT_BATCH) });

/**
 * The `Idempotency-Key` header of `POST /v1/jobs`: any text a client picks
 * (a UUID is usual), sent again unchanged when it retries the same request.
 * Visible ASCII, as HTTP header values are safely only that.
 */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
export const IdempotencyKey = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, 'visible ASCII characters only (a UUID, say)');

export const JobError = z.object({ code: z.string(), message: z.string() });

export const JobEvent = z.object({
  at: isoDate,
  state: JobState,
  attempt: z.number().int(),
  workerId: z.string().nullable(),
  detail: z.string().nullable(),
});

export const JobInfo = z.object({
  id: z.string(),
  kind: z.string(),
  model: ModelRef,
  state: JobState,
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  priority: z.number().int(),
  timeoutMs: z.number().int(),
  requirements: JobRequirements,
  workerId: z.string().nullable(),
  progress: z.number().nullable(),
  /** Why a queued job is not running yet, in words. */
  waitingReason: z.string().nullable(),
  /** The last failure (also set while a retried job is queued again). */
  error: JobError.nullable(),
  submittedAt: isoDate,
  startedAt: isoDate.nullable(),
  finishedAt: isoDate.nullable(),
  /** Still queued then, the job fails; null for jobs from before queue timeouts. Absent from older coordinators. */
  queueDeadline: isoDate.nullable().optional(),
  /** Only in single-job reads. */
  output: z.unknown().optional(),
  events: z.array(JobEvent).optional(),
});
export const JobList = z.array(JobInfo);

// ---------------------------------------------------------------- the fleet at a glance (dashboard)

const count = z.number().int().nonnegative();

/** GET /v1/fleet and each event of GET /v1/fleet/events: what the dashboard shows, computed once for every viewer. */
export const FleetSummary = z.object({
  at: isoDate,
  workers: z.object({ online: count, paused: count, offline: count, revoked: count }),
  jobs: z.object({ queued: count, leased: count, running: count, succeeded: count, failed: count, canceled: count }),
  /** Jobs finished per minute over the last hour, oldest first, with the median run time of those that succeeded; minutes without any are left out. */
  throughput: z.array(z.object({ minute: isoDate, succeeded: count, failed: count, runMsP50: z.number().nullable() })),
  /** Run time (start to finish) of the jobs that succeeded in the last hour. */
  runTimeMs: z.object({ p50: z.number().nullable(), p95: z.number().nullable(), jobs: count }),
  /** The latest failures, newest first. */
  failures: z.array(z.object({ id: z.string(), finishedAt: isoDate.nullable(), workerId: z.string().nullable(), code: z.string(), message: z.string() })),
});

/** GET /v1/fleet/workers?offset=&limit=: one page of the workers, and how many there are. */
export const WorkerPage = z.object({ total: count, offset: count, workers: z.array(WorkerInfo) });
/** The answer to a batch submit: the jobs in the order submitted. */
export const SubmitJobsResponse = z.object({ jobs: JobList });

// ---------------------------------------------------------------- models

/** What a model file is, read from its first bytes at `models add`; a job's kind needs one of them (MODEL_FORMAT_OF_KIND). */
export const ModelFormat = z.enum(['onnx', 'gguf']);

/** The model format each job kind runs; a kind not listed takes any model. */
export const MODEL_FORMAT_OF_KIND: Readonly<Record<string, ModelFormat>> = { onnx: 'onnx', llm: 'gguf' };

/**
 * Job kinds whose runtime sizes itself to the memory left free (llama.cpp):
 * a worker's job memory cap does not apply to them, neither where the worker
 * enforces it nor where the scheduler compares a job's needs with it.
 */
export const SELF_SIZING_KINDS: ReadonlySet<string> = new Set(['llm']);

/** What a GGUF file says about itself, read from its header when it is added. */
export const GgufInfo = z.object({
  /** `general.architecture`, e.g. `llama`, `qwen2`. */
  architecture: z.string(),
  /** The sum of every tensor's element count. */
  parameterCount: z.number().int().nonnegative(),
  /** The context length the model was trained for, in tokens; null when the file does not say. */
  contextLength: z.number().int().positive().nullable(),
  /** `general.file_type` by name (`Q4_K_M`, `F16`, …); null when the file does not say. */
  quantization: z.string().nullable(),
  /** Whether the file carries a chat template (`tokenizer.chat_template`). */
  chatTemplate: z.boolean(),
});

const SHA256_LIKE = /^[0-9a-f]{64}$/i;

/**
 * A model's name or alias, what OpenAI clients send as `model`: one line, no
 * longer than 256, not 64 hex digits (that reads as a sha256). Names and
 * aliases of all models are unique together, compared without case.
 */
export const ModelName = line(256, { trim: true })
  .min(1)
  .refine((s) => !SHA256_LIKE.test(s), '64 hex digits would read as a sha256; choose another name');

/** Whether two model names are the same name: they are compared without case. */
export function sameModelName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** A model stored on the coordinator (`POST /v1/models`, `GET /v1/models[/MODEL/info]`). */
export const ModelInfo = z.object({
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256'),
  size: z.number().int().nonnegative(),
  /** What clients call it (default: the file name without extension); empty when it has none. */
  name: z.string().max(256),
  /** Other names it answers to. */
  aliases: z.array(z.string().max(256)).default([]),
  /** Null only for a file stored before formats were checked that is neither. */
  format: ModelFormat.nullable().default(null),
  /** Null unless the format is `gguf`. */
  gguf: GgufInfo.nullable().default(null),
  addedAt: isoDate,
});
/**
 * `GET /v1/models`: OpenAI's model list, so its clients find the names they
 * may send as `model` (`id` is the model's name); each entry is also the
 * grid's ModelInfo. (Before issue #13 this route answered a bare array of ModelInfo.)
 */
export const ModelListEntry = ModelInfo.extend({ id: z.string(), object: z.literal('model'), created: z.number().int(), owned_by: z.string() });
export const ModelList = z.object({ object: z.literal('list'), data: z.array(ModelListEntry) });

/** One value or a repeated query parameter, as a list. */
const repeated = <T extends z.ZodType>(item: T) => z.union([item, z.array(item)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

/** `POST /v1/models?name=NAME&alias=A&alias=B`; the body is the raw bytes (`application/octet-stream`). */
export const ModelUploadQuery = z.object({ name: ModelName.optional(), alias: repeated(ModelName).default([]) });
/** Optional on upload: the sha256 the bytes must have, else 400 GG_ERR_MODEL_HASH_MISMATCH and nothing is stored. */
export const MODEL_SHA256_HEADER = 'x-gogrid-sha256';
/** `PUT /v1/models/SHA256/name`. */
export const ModelRenameRequest = z.object({ name: ModelName });
/** `POST /v1/models/SHA256/aliases`. */
export const ModelAliasRequest = z.object({ alias: ModelName });

export type ApiErrorBody = z.infer<typeof ApiErrorBody>;
export type JobState = z.infer<typeof JobState>;
export type SubmitJobRequest = z.infer<typeof SubmitJobRequest>;
export type SubmitJobsRequest = z.infer<typeof SubmitJobsRequest>;
export type SubmitJobsResponse = z.infer<typeof SubmitJobsResponse>;
export type JobError = z.infer<typeof JobError>;
export type JobEvent = z.infer<typeof JobEvent>;
export type JobInfo = z.infer<typeof JobInfo>;
export type FleetSummary = z.infer<typeof FleetSummary>;
export type WorkerPage = z.infer<typeof WorkerPage>;
export type ModelFormat = z.infer<typeof ModelFormat>;
export type GgufInfo = z.infer<typeof GgufInfo>;
export type ModelInfo = z.infer<typeof ModelInfo>;
export type ModelList = z.infer<typeof ModelList>;
export type EnrollRequest = z.infer<typeof EnrollRequest>;
export type EnrollResponse = z.infer<typeof EnrollResponse>;
export type CreateTokenRequest = z.infer<typeof CreateTokenRequest>;
export type TokenInfo = z.infer<typeof TokenInfo>;
export type CreatedToken = z.infer<typeof CreatedToken>;
export type ApiKeyScope = z.infer<typeof ApiKeyScope>;
export type CreateApiKeyRequest = z.infer<typeof CreateApiKeyRequest>;
export type ApiKeyInfo = z.infer<typeof ApiKeyInfo>;
export type CreatedApiKey = z.infer<typeof CreatedApiKey>;
export type WorkerState = z.infer<typeof WorkerState>;
export type WorkerInfo = z.infer<typeof WorkerInfo>;

// ---------------------------------------------------------------- administrators' policy overrides

/** GET/PUT/DELETE /v1/workers/:id/policy: the worker's own override, the fleet's, and the one it applies. */
export const WorkerPolicyResponse = z.object({
  workerId: z.string(),
  worker: AdminOverride.nullable(),
  fleet: AdminOverride.nullable(),
  effective: AdminOverride,
});
export type WorkerPolicyResponse = z.infer<typeof WorkerPolicyResponse>;

/** GET/PUT/DELETE /v1/policy: the override for every worker without its own. */
export const FleetPolicyResponse = z.object({ fleet: AdminOverride.nullable() });
export type FleetPolicyResponse = z.infer<typeof FleetPolicyResponse>;
