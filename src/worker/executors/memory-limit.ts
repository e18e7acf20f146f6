/**
 * How much memory a job process may use before it is stopped, so that one
 * model (a 4-node ONNX graph can ask for gigabytes) never leaves the owner's
 * machine to the OS's out-of-memory killer.
 *
 *   const limit = jobMemoryLimitBytes({ totalBytes, cgroupLimitBytes, slots }); // null: no limit
 *   JobChild.fork({ label, memoryLimitBytes: limit });  // the job process watches itself (job-process.ts)
 *   isOverMemoryLimit(stderrTail)                       // how its death reads afterwards
 *
 * By default the job processes together may use half of the memory the
 * worker has (the machine's, or its cgroup's if that is less), shared out
 * among its slots; GOGRID_JOB_MEMORY_LIMIT_MIB sets the limit of each process
 * instead. The LLM executor is not limited this way: llama.cpp sizes what it
 * loads against the free memory itself (GOGRID_LLM_KEEP_FREE_MIB).
 *
 * The job process enforces it from a thread of its own, which reads the
 * process's resident memory every MEMORY_CHECK_MS even while a runtime's
 * native call holds the main thread, and kills the process past the limit:
 * the same on Linux, macOS and Windows. A process is over by at most what it
 * allocates in one check's interval. V8's own heap limit is set to it too.
 */
import { readFile } from 'node:fs/promises';
import { wholeNumberEnv } from '../../common/env.js';

/** How the worker tells a job process its limit, in bytes. */
export const MEMORY_LIMIT_ENV = 'GOGRID_JOB_PROCESS_MEMORY_LIMIT_BYTES';
/** The line a job process writes to stderr as it kills itself for its memory. */
export const MEMORY_LIMIT_MARK = 'gogrid: job process over its memory limit';
/** How often the job process reads its resident memory. */
export const MEMORY_CHECK_MS = 50;
/** Below this a job process cannot even load its runtime. */
const SMALLEST_LIMIT_MIB = 256;

export function jobMemoryLimitBytes(m: { totalBytes: number | null; cgroupLimitBytes: number | null; slots: number }): number | null {
  const mib = wholeNumberEnv('GOGRID_JOB_MEMORY_LIMIT_MIB', SMALLEST_LIMIT_MIB, 2 ** 30, 'MiB');
  if (mib !== undefined) return mib * 2 ** 20;
  const known = [m.totalBytes, m.cgroupLimitBytes].filter((b): b is number => b !== null && b > 0);
  if (known.length === 0) return null;
  return Math.max(SMALLEST_LIMIT_MIB * 2 ** 20, Math.floor(Math.min(...known) / 2 / Math.max(1, m.slots)));
}

/** Whether a job process's last stderr lines say it died for its memory (its own limit, or V8's heap limit). */
export function isOverMemoryLimit(stderr: string): boolean {
  return stderr.includes(MEMORY_LIMIT_MARK) || /JavaScript heap out of memory|Reached heap limit/.test(stderr);
}

/**
 * The memory limit of this process's cgroup (v2), the smallest along its
 * path; null when there is none or this is not Linux. A container or a
 * systemd unit with MemoryMax is the usual source.
 */
export async function cgroupMemoryLimitBytes(): Promise<number | null> {
  if (process.platform !== 'linux') return null;
  const own = await readFile('/proc/self/cgroup', 'utf8').catch(() => '');
  const path = /^0::(\/.*)$/m.exec(own)?.[1];
  if (path === undefined) return null;
  const parts = path.split('/').filter(Boolean);
  let limit: number | null = null;
  for (let depth = parts.length; depth >= 0; depth--) {
    const max = await readFile(`/sys/fs/cgroup/${parts.slice(0, depth).join('/')}/memory.max`, 'utf8').catch(() => 'max');
    const bytes = Number(max.trim());
    if (Number.isSafeInteger(bytes) && bytes > 0 && (limit === null || bytes < limit)) limit = bytes;
  }
  return limit;
}
