/**
 * The messages between the worker and a job process over Node's IPC channel.
 * Each side parses everything it receives with these schemas; nothing crosses
 * the process boundary unparsed.
 *
 *   child.send({ type: 'run', kind: 'onnx', job, modelPath, threads: 2 } satisfies ToJobProcess);
 *   const msg = FromJobProcess.parse(raw); // in the worker
 *
 * Every message after `run` names its job: a warm process runs many jobs in
 * turn, and a shared one (an LLM's) several at once (job-pool.ts); a report
 * on a job the process was not given is a bug.
 */
import { z } from 'zod';
import { ERROR_CODE_LIST } from '../../protocol/errors.js';
import { JobSpec } from '../../protocol/messages.js';

// ---------------------------------------------------------------- worker → job process

/** Run one job with the executor of `kind`. */
export const RunMessage = z.object({
  type: z.literal('run'),
  kind: z.string().min(1).max(32),
  job: JobSpec,
  modelPath: z.string().min(1),
  threads: z.number().int().positive(),
  /** How many jobs this process may be given at once: a shared executor sizes its model's context for them. */
  slots: z.number().int().positive(),
  /** The kind's GPU backends that passed the worker's probe, best first. */
  gpuBackends: z.array(z.string().min(1).max(32)).max(16).default([]),
});

/** Stop that job where it is (a shared process): it ends with GG_ERR_JOB_CANCELED and the process stays, warm. */
export const CancelMessage = z.object({ type: z.literal('cancel'), jobId: z.string() });

export const ToJobProcess = z.discriminatedUnion('type', [RunMessage, CancelMessage]);

// ---------------------------------------------------------------- job process → worker

/** How far the job is, 0..1, with an optional line for a person. */
export const ProgressMessage = z.object({
  type: z.literal('progress'),
  jobId: z.string(),
  progress: z.number().min(0).max(1),
  message: z.string().max(1000).optional(),
});

/** Output as the executor produces it (an llm job's text), ahead of the result. */
export const PartialMessage = z.object({ type: z.literal('partial'), jobId: z.string(), text: z.string(), tokens: z.array(z.number().int().nonnegative()).optional() });

/** The executor's output JSON. */
export const ResultMessage = z.object({ type: z.literal('result'), jobId: z.string(), output: z.unknown() });

/** The executor threw: a GridError keeps its code; anything else (a bug) arrives as GG_ERR_INTERNAL. */
export const FailedMessage = z.object({
  type: z.literal('failed'),
  jobId: z.string(),
  code: z.enum(ERROR_CODE_LIST),
  message: z.string().max(4000),
});

export const FromJobProcess = z.discriminatedUnion('type', [ProgressMessage, PartialMessage, ResultMessage, FailedMessage]);

export type RunMessage = z.infer<typeof RunMessage>;
export type ToJobProcess = z.infer<typeof ToJobProcess>;
export type FromJobProcess = z.infer<typeof FromJobProcess>;
