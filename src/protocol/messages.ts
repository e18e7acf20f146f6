/**
 * Every message on the control stream, as zod schemas; the TypeScript types
 * are inferred from them. Both sides parse each incoming frame with
 * `parseWorkerMessage` / `parseCoordinatorMessage` and nothing else.
 *
 *   const msg = parseWorkerMessage(JSON.parse(text)); // throws GridError on bad input
 *   if (msg.type === 'hello') …
 */
import { z } from 'zod';
import { GridError } from './errors.js';
import { AdminOverride } from './policy.js';
import { generated, json, line, prose } from './text.js';
import { firstZodProblem } from './zod-problems.js';

/** Bumped on any incompatible change to the messages below. */
export const PROTOCOL_VERSION = 1;
/** Versions this build accepts from a peer. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [1];
/** The longest error message a frame carries (UTF-16 units). */
export const MAX_ERROR_MESSAGE = 4000;
/** QUIC ALPN identifier. */
export const ALPN = 'gogrid/1';
/** Every coordinator certificate carries this DNS name, so clients verify it whatever address they dial (QUIC and HTTPS alike). */
export const COORDINATOR_SERVER_NAME = 'gogrid-coordinator';

const id = line(128).min(1);
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256');
const nonNegInt = z.number().int().nonnegative();

// ---------------------------------------------------------------- hardware

export const GpuInfo = z.object({
  vendor: line(256).nullable(),
  model: line(256).nullable(),
  /** Dedicated memory in MiB, when the OS reports it. */
  vramMiB: nonNegInt.nullable(),
  /** Compute backends a runtime could use on it (cuda, metal, vulkan, directml…), when known. */
  backends: z.array(line(32)).max(16).default([]),
});

/**
 * What the LLM runtime (llama.cpp, through node-llama-cpp) found on the
 * worker, probed in a process of its own at start: the GPU backend it loaded
 * with devices to offload layers to, or none (the CPU only). Not guessed
 * from a vendor name: a backend whose library or driver does not load, or
 * that finds no device, is not here.
 */
export const LlmRuntimeReport = z.object({
  /** The backend layers are offloaded to; null: llama.cpp runs on the CPU only here. */
  gpu: z.enum(['cuda', 'vulkan', 'metal']).nullable(),
  /** The devices that backend found, as the driver names them. */
  devices: z.array(line(256)).max(64),
  /** VRAM of those devices together (for Metal, the memory the GPU may use), and how much was free at the probe; null without a GPU. */
  vramMiB: nonNegInt.nullable(),
  freeVramMiB: nonNegInt.nullable(),
});

/**
 * The GPU backends a job may name in `requirements.gpu.backend`, per job
 * kind, best first (where a worker has several, `any` takes the first):
 * onnxruntime's execution providers, and the backends llama.cpp offloads to.
 */
export const GPU_BACKENDS: Readonly<Record<string, readonly string[]>> = {
  onnx: ['cuda', 'dml', 'coreml', 'webgpu'],
  llm: ['cuda', 'metal', 'vulkan'],
};

/**
 * One GPU backend a job kind's runtime tried on the worker at start, by
 * running a tiny model on it: only those with `ok` are used, and a job that
 * names another is not sent there.
 */
export const BackendProbe = z.object({
  kind: line(32),
  backend: line(32),
  ok: z.boolean(),
  /** Why it is not used (the runtime's error, or "a software device"); null when ok. */
  detail: prose(500).nullable(),
});

export const HardwareReport = z.object({
  cpu: z.object({
    manufacturer: line(256).nullable(),
    brand: line(256).nullable(),
    /** Physical cores; null where the OS hides it (some VMs). */
    physicalCores: nonNegInt.nullable(),
    /** Logical processors (threads). */
    threads: nonNegInt.nullable(),
    speedGHz: z.number().nonnegative().nullable(),
  }),
  memory: z.object({
    totalBytes: nonNegInt.nullable(),
    /** The memory limit of the worker's cgroup (a container, a systemd unit's MemoryMax), where it has one. Absent from older workers. */
    limitBytes: nonNegInt.nullable().optional(),
    /** What one job process may use before it is stopped (GG_ERR_WORKER_OUT_OF_MEMORY); null: no limit. Not for LLM jobs, which llama.cpp sizes to the free memory. */
    jobLimitBytes: nonNegInt.nullable().optional(),
  }),
  gpus: z.array(GpuInfo).max(64),
  /** Absent from workers older than the probe, or without an LLM executor; null where the probe failed. */
  llm: LlmRuntimeReport.nullable().optional(),
  /** GPU backends of the other runtimes (onnxruntime's execution providers), tried at start. Absent from older workers, which ran those jobs on the CPU only. */
  backends: z.array(BackendProbe).max(32).optional(),
  os: z.object({
    platform: line(64),
    distro: line(256).nullable(),
    release: line(256).nullable(),
    arch: line(64),
    hostname: line(256).nullable(),
  }),
});
/**
 * The GPU backends a worker's runtime for `kind` found working, best first:
 * llama.cpp's for llm jobs, onnxruntime's probed providers for the others.
 * Never a vendor's name: a worker older than those probes has none. What the
 * scheduler matches a job's GPU against, and what the worker's job processes
 * may choose from.
 */
export function workingGpuBackends(kind: string, hw: Pick<HardwareReport, 'llm' | 'backends'>): string[] {
  if (kind === 'llm') return hw.llm?.gpu ? [hw.llm.gpu] : [];
  return (hw.backends ?? []).filter((b) => b.kind === kind && b.ok).map((b) => b.backend);
}


// ---------------------------------------------------------------- jobs (used from the jobs issue on)

export const ModelRef = z.object({ sha256: sha256Hex, size: nonNegInt, name: line(256) });

export const JobRequirements = z.object({
  minFreeMemoryBytes: nonNegInt.optional(),
  gpu: z
    .object({
      /** One of GPU_BACKENDS[kind], or `any` (the same as leaving it out): the best the worker has. */
      backend: line(32).optional(),
      minVramMiB: nonNegInt.optional(),
      /**
       * The job may run on the CPU where no GPU backend it can use is free or
       * works (it is placed on a GPU first); the output says which it ran on.
       * Without it, a GPU job never runs on the CPU. @default false
       */
      fallback: z.boolean().optional(),
    })
    .optional(),
  os: z.array(line(64)).max(16).optional(),
  arch: z.array(line(64)).max(16).optional(),
  labels: z.array(line(64)).max(64).optional(),
});

/**
 * Job inputs and outputs up to this size (as JSON) travel inside control
 * frames; larger ones go over HTTPS (GET /v1/jobs/:id/input, POST
 * /v1/jobs/:id/result), since the frame limit is 1 MiB and QUIC moves bulk
 * bytes slowly here.
 */
export const MAX_INLINE_PAYLOAD_BYTES = 512 * 1024;
/** The largest input or output a job may have at all. */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
/** HTTP header naming the lease a worker's input or result request is for. */
export const LEASE_HEADER = 'x-gogrid-lease';

/** The most text one `job.partial` carries; the worker sends more often than this fills. */
export const MAX_PARTIAL_CHARS = 64 * 1024;
/**
 * The most output a repeated attempt continues from (`JobSpec.resumeFrom`):
 * text and token ids, with an inline input, still fit a frame even escaped.
 * A job that streamed more starts again from the beginning.
 */
export const MAX_RESUME_CHARS = 32 * 1024;

/** Token ids of a model's vocabulary, as an llm executor reports them with its text. */
const TokenIds = z.array(nonNegInt);

/**
 * What an earlier attempt of a job streamed before it was lost: its text and,
 * where the executor reported them, the tokens that text decodes from. The
 * tokens let the next attempt continue exactly where the last one stopped:
 * text tokenized again can split differently and change what follows.
 */
export const ResumeFrom = z.object({
  text: generated(MAX_RESUME_CHARS),
  tokens: TokenIds.max(MAX_RESUME_CHARS).optional(),
});
export type ResumeFrom = z.infer<typeof ResumeFrom>;

export const JobSpec = z.object({
  jobId: id,
  kind: line(32).min(1),
  model: ModelRef,
  /** The input itself, or null when `inputByReference` says to fetch it. */
  input: json(),
  inputByReference: z.boolean().default(false),
  requirements: JobRequirements.default({}),
  timeoutMs: z.number().int().positive(),
  attempt: z.number().int().positive(),
  /**
   * What an earlier attempt already produced (its `job.partial` output)
   * before it was lost: the executor continues after it rather than starting
   * again, and its output begins with it. Only executors that stream get one.
   */
  resumeFrom: ResumeFrom.optional(),
});

export const RunningJob = z.object({
  jobId: id,
  leaseId: id,
  /** 0..1 when the executor reports it. */
  progress: z.number().min(0).max(1).nullable(),
});

export const WorkerStatus = z.enum(['idle', 'working', 'paused', 'draining']);

// ---------------------------------------------------------------- worker → coordinator

export const Hello = z.object({
  type: z.literal('hello'),
  protocolVersion: z.number().int(),
  /** Informational: the coordinator identifies the worker by its certificate and checks this matches. */
  workerId: id,
  name: line(256).min(1),
  appVersion: line(64),
  hardware: HardwareReport,
  cachedModels: z.array(sha256Hex).max(10_000).default([]),
  /** The worker's state as it connects, so a worker paused by its owner gets no job before its first heartbeat. */
  status: WorkerStatus.default('idle'),
  pausedReason: prose(500).nullable().default(null),
  gpuOff: prose(500).nullable().default(null),
  capabilities: z.object({
    executors: z.array(line(32)).max(32),
    slots: z.number().int().min(0).max(256),
    /** Set by the worker's owner; jobs can require them. */
    labels: z.array(line(64)).max(64).default([]),
    /** It heartbeats every `busyHeartbeatIntervalSecs` (welcome) while it runs jobs, so the coordinator may judge it by the busy timeout. */
    busyHeartbeats: z.boolean().default(false),
    /** It wants `heartbeat.ack`, to notice a coordinator that died without closing the connection in seconds, not at the idle timeout. */
    heartbeatAcks: z.boolean().default(false),
  }),
});

export const Heartbeat = z.object({
  type: z.literal('heartbeat'),
  status: WorkerStatus,
  /** Why the worker is paused, in words a person understands; null when not paused. */
  pausedReason: prose(500).nullable().default(null),
  /**
   * Why jobs may not use its GPU now (its owner's policy: "GPU jobs wait
   * until you are away"), while it runs CPU jobs; null when they may. The
   * coordinator sends it no job that needs a GPU meanwhile.
   */
  gpuOff: prose(500).nullable().default(null),
  load: z.object({
    /** Whole-machine CPU use, 0..1, when known. */
    cpu: z.number().min(0).max(1).nullable(),
    freeMemoryBytes: nonNegInt.nullable(),
    /** Free memory of the GPU with the most, MiB, where the worker can read it (nvidia-smi); absent where unknown. */
    freeVramMiB: nonNegInt.nullable().optional(),
  }),
  runningJobs: z.array(RunningJob).max(256).default([]),
  /** The verified models in the worker's cache, sent when the set changed since the last report. */
  cachedModels: z.array(sha256Hex).max(10_000).optional(),
  /** The models its warm job processes hold loaded (the next job on one skips the load), sent when the set changed. */
  loadedModels: z.array(sha256Hex).max(256).optional(),
  /** Jobs it takes at once now, when a limit (the owner's or the administrator's) changed it since hello. */
  slots: z.number().int().min(0).max(256).optional(),
});

export const JobProgress = z.object({
  type: z.literal('job.progress'),
  jobId: id,
  leaseId: id,
  progress: z.number().min(0).max(1),
  message: prose(1000).optional(),
});

/**
 * Output a job produces while it runs (an llm job's text as it is
 * generated), coalesced by the worker. `offset` is where `text` starts in the
 * attempt's whole output, so a receiver that already has some of it (from an
 * earlier attempt) takes only what is new.
 */
export const JobPartial = z.object({
  type: z.literal('job.partial'),
  jobId: id,
  leaseId: id,
  offset: nonNegInt,
  text: generated(MAX_PARTIAL_CHARS),
  /** The tokens `text` decodes from, all of them, when the executor knows them (an llm job's). */
  tokens: TokenIds.max(MAX_PARTIAL_CHARS).optional(),
});

/**
 * The worker gives a job back before finishing it (its owner needs the
 * machine, it is quitting): the coordinator requeues the job at once instead
 * of waiting for the lease to expire, and the attempt does not count against
 * max attempts, since the job did nothing wrong.
 */
export const JobRelease = z.object({ type: z.literal('job.release'), jobId: id, leaseId: id, reason: prose(500) });

export const JobInputResponse = z.object({ input: json() });

export const JobResult = z.object({
  type: z.literal('job.result'),
  jobId: id,
  leaseId: id,
  /**
   * Milliseconds from the job's start on the worker to this result. A job
   * that ends soon after it starts sends no `job.progress` first; the
   * coordinator then records its start as this long before the result came.
   */
  runMs: nonNegInt.optional(),
  outcome: z.discriminatedUnion('ok', [
    z.object({ ok: z.literal(true), output: json() }),
    z.object({
      ok: z.literal(false),
      error: z.object({ code: line(64), message: prose(MAX_ERROR_MESSAGE), retryable: z.boolean() }),
    }),
  ]),
});

// ---------------------------------------------------------------- coordinator → worker

export const Welcome = z.object({
  type: z.literal('welcome'),
  protocolVersion: z.number().int(),
  workerId: id,
  heartbeatIntervalSecs: z.number().positive(),
  heartbeatTimeoutSecs: z.number().positive(),
  /**
   * While it runs jobs, a worker that can (`capabilities.busyHeartbeats`)
   * heartbeats this often, and is taken for lost after `busyHeartbeatTimeoutSecs`
   * without one: its jobs go on elsewhere in seconds, not at the heartbeat
   * timeout. Absent from older coordinators.
   */
  busyHeartbeatIntervalSecs: z.number().positive().optional(),
  busyHeartbeatTimeoutSecs: z.number().positive().optional(),
  /** Each heartbeat will be answered with `heartbeat.ack` (the worker asked for it); absent from older coordinators, which never answer. */
  heartbeatAcks: z.boolean().optional(),
  /** The administrator's pause, preset or limits for this worker; it applies across reconnects. */
  adminPolicy: AdminOverride.default({}),
});

export const JobAssign = z.object({
  type: z.literal('job.assign'),
  job: JobSpec,
  /** Fencing token: results carrying an older lease are rejected. */
  leaseId: id,
  leaseExpiresAt: z.iso.datetime(),
});

export const JobCancel = z.object({ type: z.literal('job.cancel'), jobId: id, leaseId: id, reason: prose(1000) });
/** The administrator changed this worker's override (pause, preset, limits); replaces the one from `welcome`. */
export const WorkerPolicy = z.object({ type: z.literal('worker.policy'), adminPolicy: AdminOverride });
/** Finish running jobs, take no new ones. */
export const WorkerDrain = z.object({ type: z.literal('worker.drain') });
/** A heartbeat arrived (for workers with `capabilities.heartbeatAcks`): the coordinator is alive. */
export const HeartbeatAck = z.object({ type: z.literal('heartbeat.ack') });
/** A fresh client certificate for the worker's existing key pair (the private key never leaves the worker). */
export const CertRenew = z.object({ type: z.literal('cert.renew'), certPem: prose(16_384) });

// ---------------------------------------------------------------- both directions

export const ErrorFrame = z.object({
  type: z.literal('error'),
  /** A GG_ERR_* code from protocol/errors.ts (kept open so a newer peer's codes still parse). */
  code: line(64),
  message: prose(MAX_ERROR_MESSAGE),
  /** The sender closes the connection after a fatal error. */
  fatal: z.boolean(),
});

export const WorkerMessage = z.discriminatedUnion('type', [Hello, Heartbeat, JobProgress, JobPartial, JobResult, JobRelease, ErrorFrame]);
export const CoordinatorMessage = z.discriminatedUnion('type', [
  Welcome,
  JobAssign,
  JobCancel,
  WorkerPolicy,
  WorkerDrain,
  CertRenew,
  HeartbeatAck,
  ErrorFrame,
]);

export type GpuInfo = z.infer<typeof GpuInfo>;
export type BackendProbe = z.infer<typeof BackendProbe>;
export type LlmRuntimeReport = z.infer<typeof LlmRuntimeReport>;
export type HardwareReport = z.infer<typeof HardwareReport>;
export type ModelRef = z.infer<typeof ModelRef>;
export type JobRequirements = z.infer<typeof JobRequirements>;
export type JobSpec = z.infer<typeof JobSpec>;
export type RunningJob = z.infer<typeof RunningJob>;
export type WorkerStatus = z.infer<typeof WorkerStatus>;
export type Hello = z.infer<typeof Hello>;
export type Heartbeat = z.infer<typeof Heartbeat>;
export type Welcome = z.infer<typeof Welcome>;
export type JobResult = z.infer<typeof JobResult>;
export type JobRelease = z.infer<typeof JobRelease>;
export type ErrorFrame = z.infer<typeof ErrorFrame>;
export type WorkerMessage = z.infer<typeof WorkerMessage>;
export type CoordinatorMessage = z.infer<typeof CoordinatorMessage>;
/** What a sender writes: defaults may be left out. */
export type WorkerMessageInput = z.input<typeof WorkerMessage>;
export type CoordinatorMessageInput = z.input<typeof CoordinatorMessage>;

const WORKER_TYPES = new Set<string>(WorkerMessage.options.map((o) => o.shape.type.value));
const COORDINATOR_TYPES = new Set<string>(CoordinatorMessage.options.map((o) => o.shape.type.value));

function parseWith<T>(schema: z.ZodType<T>, known: Set<string>, value: unknown): T {
  const type = typeof value === 'object' && value !== null ? (value as { type?: unknown }).type : undefined;
  if (typeof type !== 'string' || !known.has(type)) {
    throw new GridError('GG_ERR_MESSAGE_UNKNOWN', `unknown message type ${JSON.stringify(type ?? null).slice(0, 80)}`);
  }
  const result = schema.safeParse(value);
  if (!result.success) throw new GridError('GG_ERR_FRAME_INVALID', `invalid ${type} message: ${firstZodProblem(result.error)}`);
  return result.data;
}

export function parseWorkerMessage(value: unknown): WorkerMessage {
  return parseWith(WorkerMessage, WORKER_TYPES, value);
}

export function parseCoordinatorMessage(value: unknown): CoordinatorMessage {
  return parseWith(CoordinatorMessage, COORDINATOR_TYPES, value);
}
