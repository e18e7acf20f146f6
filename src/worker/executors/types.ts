/**
 * The executor plugin interface: one per job kind (`onnx` now, `llm` next).
 * The agent never runs a model itself; it picks the executor by `job.kind`
 * and the executor's code runs in a child process (job-pool.ts), so a
 * crash, leak or hang in a native runtime cannot take the worker down.
 *
 *   const executor = executors.get(job.kind);
 *   if (!executor?.canRun(hardware)) refuse(…);
 *   const output = await pool.run(executor.kind, job, { modelPath, signal, timeoutMs, onProgress, threads });
 */
import type { HardwareReport, JobSpec } from '../../protocol/index.js';

export interface Executor {
  /** The job kind it runs, e.g. `onnx`. */
  readonly kind: string;
  /**
   * Runs several jobs at once in one process, on one loaded model (an LLM's
   * weights are too big to hold once per job), and stops a job in place when
   * it is canceled, rather than have its process killed: the model stays
   * loaded for the next one. @default false: one job per process, killed on cancel
   */
  readonly shared?: boolean;
  /**
   * Runs on the GPU its runtime found whether or not the job asks for one
   * (llama.cpp offloads layers), so the owner's policy taking the GPU away
   * concerns every job of the kind; the others use a GPU only when the job
   * names one (requirements.gpu). @default false
   */
  readonly gpuByDefault?: boolean;
  /** Whether this machine can run jobs of this kind at all (runtime present, platform supported). */
  canRun(hardware: HardwareReport): boolean;
  /**
   * Loads the native runtime as a job would, throwing where it cannot (a
   * missing system library); run once at worker start in a probe process
   * (runtime-probe.ts), so a kind is advertised only where it loads.
   * @default none: nothing to load ahead
   */
  load?(): Promise<void>;
  /**
   * Tries each GPU backend the runtime has for this platform by running a
   * tiny model on it; run once at worker start in a probe process of its own
   * (gpu-probe.ts), so only those that worked are advertised and used.
   * @default none: the kind finds its GPU itself (llm) or has none
   */
  probeBackends?(): Promise<BackendTrial[]>;
  /**
   * Runs one job inside the job process. Returns the output JSON; throws a
   * GridError (GG_ERR_INPUT_INVALID, GG_ERR_MODEL_UNSUPPORTED, …) for an
   * expected failure. Must honour `signal` where the runtime allows.
   */
  run(job: JobSpec, ctx: ExecutorContext): Promise<unknown>;
}

export interface ExecutorContext {
  /** A verified, content-addressed model file from the model cache. */
  modelPath: string;
  /** CPU threads the runtime may use (onnxruntime intra-op threads, llama.cpp threads). */
  threads: number;
  /** How many jobs this process may run at once (a shared executor's): 1 for the others. */
  slots: number;
  /**
   * This kind's GPU backends that passed the worker's probe, best first: the
   * executor picks from these by the job's requirements. Empty: the CPU only
   * (none works here, the job asks for none, or the owner's policy keeps jobs
   * off the GPU now).
   */
  gpuBackends: readonly string[];
  signal: AbortSignal;
  onProgress(progress: number, message?: string): void;
  /** Output as it is produced (an llm job's text), before the result that holds all of it. */
  onPartial?(piece: OutputPiece): void;
}

/** A piece of output as it is produced and, where the executor knows them, the tokens its text decodes from. */
export interface OutputPiece {
  text: string;
  tokens?: number[];
}

/** One GPU backend tried by `probeBackends`: whether it ran the test model right, and if not, why. */
export interface BackendTrial {
  backend: string;
  ok: boolean;
  detail: string | null;
}
