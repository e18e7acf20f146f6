/**
 * Linux's per-process counters, read from `/proc/PID/stat`: the CPU meter of
 * the polite worker and the benchmarks' process accounting read the same
 * fields.
 *
 *   const f = procStatFields(pid);          // f[0] = state, f[11] + f[12] = utime + stime (ticks)
 */
import { readFileSync } from 'node:fs';

/**
 * The fields after the command name, so index 0 is field 3 (`state`) of
 * proc(5); null when the process is gone or not ours to read. Sync: procfs
 * answers from memory (0.02 ms here, 0.3 ms through fs/promises).
 */
export function procStatFields(pid: number): string[] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: count from its closing one.
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}
