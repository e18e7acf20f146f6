/**
 * How job processes share the CPU with the machine's owner: at `low`
 * priority a job takes only what the owner's programs leave (issue #5).
 *
 *   const plan = priorityPlan('low', process.platform);   // { nice: 19, ownSession: true } on Linux with autogroups
 *   const proc = fork(entry, [], { detached: plan.ownSession, env: { ...process.env, ...priorityEnv(plan) } });
 *   applyPriority(proc.pid, plan);                         // at once, before the process gets far
 *   reniceOwnThreads();                                    // first thing inside the job process
 *
 * Linux gotchas, measured on this kernel (bench/polite/main.ts):
 * - nice is per thread: setpriority(pid) changes only the main thread, and
 *   threads node started before that call keep nice 0. The worker's call
 *   usually lands first (spawn returns right after exec), but a busy machine
 *   can run the child ahead, so the job process also renices the threads it
 *   has (reniceOwnThreads); later ones (onnxruntime's pool) inherit 19.
 * - With autogroups (`/proc/sys/kernel/sched_autogroup_enabled` = 1, the
 *   default on desktop kernels) nice only ranks threads within one session:
 *   a nice-19 job in the worker's session still took 42–45 % of a core from a
 *   busy program of another session (a normal one 53 %). So the job process
 *   gets a session of its own (`detached`, i.e. setsid) and that session's
 *   autogroup is niced to 19 too: then it took 1.4 %.
 * - Un-nicing that autogroup needs no privilege either, but the kernel allows
 *   one autogroup change per 100 ms machine-wide (EAGAIN), so it is set once
 *   at start and never touched again.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { constants, setPriority } from 'node:os';

/** `low`: below everything the owner runs; `normal`: as the worker itself. */
export type JobPriority = 'low' | 'normal';

/**
 * `low`, unless GOGRID_JOB_PRIORITY=normal: for a test suite on a crowded
 * machine, where the job processes are the work and a nice-19 one may wait
 * seconds for its turn. Any other value keeps `low`.
 */
export function defaultJobPriority(): JobPriority {
  return process.env['GOGRID_JOB_PRIORITY'] === 'normal' ? 'normal' : 'low';
}

export interface PriorityPlan {
  /** The value for os.setPriority, or null to leave it as inherited. */
  nice: number | null;
  /** Start the process in a session (and so an autogroup) of its own, niced as a whole. */
  ownSession: boolean;
}

/** Tells the job process which niceness to give the threads it already has. */
const NICE_ENV = 'GOGRID_JOB_NICE';

/**
 * Windows has priority classes, not nice values: os.setPriority maps 19
 * (PRIORITY_LOW) to IDLE_PRIORITY_CLASS, which may starve a job for good on a
 * busy machine; below normal is what the issue asks for.
 */
export function priorityPlan(priority: JobPriority, platform: NodeJS.Platform, autogroups = autogroupsEnabled()): PriorityPlan {
  if (priority === 'normal') return { nice: null, ownSession: false };
  if (platform === 'win32') return { nice: constants.priority.PRIORITY_BELOW_NORMAL, ownSession: false };
  return { nice: constants.priority.PRIORITY_LOW, ownSession: platform === 'linux' && autogroups };
}

export function priorityEnv(plan: PriorityPlan): Record<string, string> {
  return plan.nice === null ? {} : { [NICE_ENV]: String(plan.nice) };
}

/** Lowers a just-started process; returns why it could not, or null. Raising one's own niceness needs no privilege. */
export function applyPriority(pid: number, plan: PriorityPlan): string | null {
  if (plan.nice === null) return null;
  try {
    setPriority(pid, plan.nice);
    if (plan.ownSession) writeFileSync(`/proc/${pid}/autogroup`, String(plan.nice));
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

/** Inside the job process, on Linux: gives every thread it has now the niceness the worker asked for. */
export function reniceOwnThreads(): void {
  const nice = Number(process.env[NICE_ENV]);
  if (process.platform !== 'linux' || !Number.isInteger(nice)) return;
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      setPriority(Number(tid), nice);
    } catch {
      // A thread that ended meanwhile has nothing left to renice.
    }
  }
}

function autogroupsEnabled(): boolean {
  try {
    return readFileSync('/proc/sys/kernel/sched_autogroup_enabled', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}
