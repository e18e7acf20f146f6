/**
 * Which worker gets which job: a pure function of the queue and the workers'
 * state, so every rule is tested as a table. The dispatcher does the I/O.
 *
 *   const plan = planAssignments(queuedJobs, workerViews);
 *   plan.assignments // [{ jobId, workerId }] — lease these
 *   plan.waiting     // [{ jobId, reason }]  — "… has no working cuda backend for onnx jobs (3 workers)"
 *
 * Rules: requirements must fit; among the workers that fit and have a free
 * slot and are not paused, prefer one the job has not failed on before (a
 * crash or an out-of-memory there is likely to come again; it is still
 * used when no other fits), then, for a GPU job that may fall back to the
 * CPU, one with the GPU it asks for, then one that has the model loaded (a warm job
 * process holds it: an LLM skips seconds of loading), then one that caches
 * it on disk, then one whose free memory or a GPU's VRAM holds it, then the
 * least loaded (running / slots, then CPU load), then the lowest id so the
 * choice is deterministic. Jobs are served in queue order (priority, age).
 */
import { SELF_SIZING_KINDS, workingGpuBackends, type HardwareReport, type JobRequirements } from '../protocol/index.js';

export interface SchedulableJob {
  id: string;
  kind: string;
  model: { sha256: string; size?: number };
  requirements: JobRequirements;
  /** Workers an earlier attempt was lost or failed on (a crash, out of memory, a timeout): another is preferred. */
  failedOn?: readonly string[];
}

export interface SchedulableWorker {
  id: string;
  hardware: HardwareReport;
  /** Job kinds its executors run. */
  executors: readonly string[];
  labels: readonly string[];
  slots: number;
  running: number;
  /** The VRAM its leased jobs declared (`minVramMiB`), together: what of its GPU this side has already given out. */
  placedVramMiB: number;
  /** Paused (by its owner's policy or an admin) or draining: takes no new jobs. */
  paused: boolean;
  /** Why its owner's policy keeps jobs off its GPU now (it still takes CPU jobs); null when they may use it. */
  gpuOff: string | null;
  cachedModels: ReadonlySet<string>;
  /** Models its warm job processes hold loaded. */
  loadedModels: ReadonlySet<string>;
  /** Whole-machine CPU use 0..1, when reported. */
  cpuLoad: number | null;
  freeMemoryBytes: number | null;
  /** Free memory of its GPU with the most, MiB, as last reported (NVIDIA's only); null where unknown. */
  freeVramMiB: number | null;
}

export interface Plan {
  assignments: { jobId: string; workerId: string }[];
  waiting: { jobId: string; reason: string }[];
}

/** Null when the worker could run the job (slots and pauses aside); else why not, as a phrase about the worker. */
export function misfit(job: SchedulableJob, w: SchedulableWorker): string | null {
  const r = job.requirements;
  if (!w.executors.includes(job.kind)) return `runs no ${job.kind} jobs`;
  if (r.os?.length && !r.os.includes(w.hardware.os.platform)) return `is ${w.hardware.os.platform}, not ${r.os.join(' or ')}`;
  if (r.arch?.length && !r.arch.includes(w.hardware.os.arch)) return `is ${w.hardware.os.arch}, not ${r.arch.join(' or ')}`;
  if (r.minFreeMemoryBytes !== undefined) {
    const total = w.hardware.memory.totalBytes;
    if (total === null) return 'does not report its memory';
    if (total < r.minFreeMemoryBytes) return `has ${gib(total)} of memory, less than the ${gib(r.minFreeMemoryBytes)} needed`;
    // A job process over the worker's cap is killed there.
    const cap = w.hardware.memory.jobLimitBytes;
    if (!SELF_SIZING_KINDS.has(job.kind) && cap != null && cap < r.minFreeMemoryBytes) {
      return `caps a job at ${gib(cap)} of memory (GOGRID_JOB_MEMORY_LIMIT_MIB there), less than the ${gib(r.minFreeMemoryBytes)} needed`;
    }
  }
  const gpu = gpuMisfit(job, w);
  if (gpu !== null && !r.gpu?.fallback) return gpu;
  const missing = (r.labels ?? []).filter((l) => !w.labels.includes(l));
  if (missing.length > 0) return `lacks the label${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`;
  return null;
}

/**
 * Why the worker has no GPU for the job, or null: the backends that count
 * are those its runtime for the job's kind found working at start (llama.cpp's
 * for llm jobs, onnxruntime's execution providers for onnx jobs), never a
 * vendor's name. A worker older than those probes runs them on the CPU only.
 */
function gpuMisfit(job: SchedulableJob, w: SchedulableWorker): string | null {
  const gpu = job.requirements.gpu;
  if (!gpu) return null;
  const named = gpu.backend === undefined || gpu.backend === 'any' ? undefined : gpu.backend;
  const usable = workingGpuBackends(job.kind, w.hardware).filter((b) => named === undefined || b === named);
  if (usable.length === 0) return named ? `has no working ${named} backend for ${job.kind} jobs` : `has no GPU its ${job.kind} runtime can use`;
  if (gpu.minVramMiB !== undefined && vramMiB(job.kind, w.hardware, usable) < gpu.minVramMiB) return `has no GPU with ${gpu.minVramMiB} MiB of VRAM`;
  return null;
}

/** The most VRAM one GPU behind those backends has; 0 where unknown. */
function vramMiB(kind: string, hw: HardwareReport, backends: readonly string[]): number {
  if (kind === 'llm') return hw.llm?.vramMiB ?? 0;
  return Math.max(0, ...hw.gpus.filter((g) => g.backends.some((b) => backends.includes(b))).map((g) => g.vramMiB ?? 0));
}

/** A job that must run on a GPU, on a worker whose owner keeps jobs off it now. */
function gpuWaits(job: SchedulableJob, w: SchedulableWorker): boolean {
  return w.gpuOff !== null && job.requirements.gpu !== undefined && !job.requirements.gpu.fallback;
}

/**
 * The VRAM the job takes of this worker's GPU: what it declared, where it
 * will run on the GPU there (a job allowed the CPU that finds no GPU runs
 * on the CPU); 0 for the others.
 */
function vramTaken(job: SchedulableJob, w: SchedulableWorker): number {
  const need = job.requirements.gpu?.minVramMiB ?? 0;
  return need > 0 && gpuMisfit(job, w) === null && w.gpuOff === null ? need : 0;
}

/** Whether the worker can take the job right now (on top of `misfit` being null). */
function hasRoomNow(job: SchedulableJob, w: SchedulableWorker, running: number, placedVramMiB: number): boolean {
  if (w.paused || running >= w.slots || gpuWaits(job, w)) return false;
  // Two jobs that together do not fit one GPU are not sent to it at once.
  const vram = vramTaken(job, w);
  if (vram > 0 && placedVramMiB + vram > vramMiB(job.kind, w.hardware, workingGpuBackends(job.kind, w.hardware))) return false;
  // Nor to one whose VRAM other programs hold, as far as the worker can tell.
  if (vram > 0 && w.freeVramMiB !== null && w.freeVramMiB < vram) return false;
  const need = job.requirements.minFreeMemoryBytes;
  return need === undefined || w.freeMemoryBytes === null || w.freeMemoryBytes >= need;
}

export function planAssignments(jobs: readonly SchedulableJob[], workers: readonly SchedulableWorker[]): Plan {
  const running = new Map(workers.map((w) => [w.id, w.running]));
  const placed = new Map(workers.map((w) => [w.id, w.placedVramMiB]));
  const plan: Plan = { assignments: [], waiting: [] };
  for (const job of jobs) {
    const fitting = workers.filter((w) => misfit(job, w) === null);
    const ready = fitting.filter((w) => hasRoomNow(job, w, running.get(w.id)!, placed.get(w.id)!));
    if (ready.length === 0) {
      plan.waiting.push({ jobId: job.id, reason: whyWaiting(job, workers, fitting) });
      continue;
    }
    const best = ready.reduce((a, b) => (better(job, b, a, running) ? b : a));
    running.set(best.id, running.get(best.id)! + 1);
    placed.set(best.id, placed.get(best.id)! + vramTaken(job, best));
    plan.assignments.push({ jobId: job.id, workerId: best.id });
  }
  return plan;
}

/** Why no connected worker could ever take the job as things stand (busy and paused ones count as able); null if one could. */
export function unservable(job: SchedulableJob, workers: readonly SchedulableWorker[]): string | null {
  const fitting = workers.filter((w) => misfit(job, w) === null);
  return fitting.length > 0 ? null : whyWaiting(job, workers, fitting);
}

/** True when `a` is a better choice than `b` for the job. */
function better(job: SchedulableJob, a: SchedulableWorker, b: SchedulableWorker, running: Map<string, number>): boolean {
  const { sha256 } = job.model;
  const fresh = (w: SchedulableWorker) => !job.failedOn?.includes(w.id);
  // A job that may fall back to the CPU still goes to a GPU first.
  const onGpu = (w: SchedulableWorker) => job.requirements.gpu === undefined || (gpuMisfit(job, w) === null && w.gpuOff === null);
  for (const has of [fresh, onGpu, (w: SchedulableWorker) => w.loadedModels.has(sha256), (w: SchedulableWorker) => w.cachedModels.has(sha256), (w: SchedulableWorker) => holds(w, job)]) {
    const [hasA, hasB] = [has(a), has(b)];
    if (hasA !== hasB) return hasA;
  }
  const loadA = running.get(a.id)! / a.slots;
  const loadB = running.get(b.id)! / b.slots;
  if (loadA !== loadB) return loadA < loadB;
  const cpuA = a.cpuLoad ?? 0.5;
  const cpuB = b.cpuLoad ?? 0.5;
  if (cpuA !== cpuB) return cpuA < cpuB;
  return a.id < b.id;
}

/**
 * Whether the model fits in the worker's free memory or the VRAM of a GPU the
 * job will run on, as last reported; unknown sizes fit nowhere in particular.
 * An LLM's GPU is the one llama.cpp found, with the VRAM it saw free, where
 * the worker probed it: a GPU llama.cpp cannot use holds nothing for it. An
 * ONNX job's is one behind a backend onnxruntime found working, for a job
 * that asks for a GPU at all.
 */
function holds(w: SchedulableWorker, job: SchedulableJob): boolean {
  const { size } = job.model;
  if (size === undefined) return false;
  if (w.freeMemoryBytes !== null && w.freeMemoryBytes >= size) return true;
  const fits = (mib: number | null) => mib !== null && mib * 2 ** 20 >= size;
  const llm = job.kind === 'llm' ? w.hardware.llm : undefined;
  if (llm) return fits(llm.freeVramMiB);
  // A worker older than the llama.cpp probe: any GPU may be the one.
  if (job.kind === 'llm') return w.hardware.gpus.some((g) => fits(g.vramMiB));
  if (!job.requirements.gpu) return false;
  const usable = workingGpuBackends(job.kind, w.hardware);
  return w.hardware.gpus.some((g) => g.backends.some((b) => usable.includes(b)) && fits(g.vramMiB));
}

function whyWaiting(job: SchedulableJob, workers: readonly SchedulableWorker[], fitting: readonly SchedulableWorker[]): string {
  if (workers.length === 0) return 'no worker is connected';
  if (fitting.length === 0) {
    const counts = new Map<string, number>();
    for (const w of workers) {
      const why = misfit(job, w)!;
      counts.set(why, (counts.get(why) ?? 0) + 1);
    }
    const parts = [...counts].sort((a, b) => b[1] - a[1]).map(([why, n]) => `${why} (${n} ${n === 1 ? 'worker' : 'workers'})`);
    return `no connected worker can run this job: ${parts.join('; ')}`;
  }
  const noun = fitting.length === 1 ? 'eligible worker is' : `${fitting.length} eligible workers are`;
  if (fitting.every((w) => w.paused)) return `the ${noun} paused`;
  const gpuOff = fitting.filter((w) => !w.paused && gpuWaits(job, w));
  if (fitting.every((w) => w.paused || gpuWaits(job, w))) {
    return `the ${noun} ${gpuOff.length === fitting.length ? '' : 'paused or '}keeping jobs off ${fitting.length === 1 ? 'its' : 'their'} GPU now (${gpuOff[0]!.gpuOff})`;
  }
  return `waiting for a free slot: the ${noun} busy or short of free memory${job.requirements.gpu?.minVramMiB ? ' or VRAM' : ''}`;
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}
