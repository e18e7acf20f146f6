/**
 * The job processes a worker has alive, written down in its data dir, so
 * that the next worker on that dir can end what one killed outright (SIGKILL,
 * the OOM killer, a crash of the desktop app) left behind. A running job
 * process notices on its own: its IPC channel closes and it exits. One the
 * worker had stopped (SIGSTOP, its owner at the keyboard) cannot notice
 * anything, and would sit there holding its memory until the machine
 * restarts.
 *
 *   const leftovers = JobProcessLeftovers.open(join(dataDir, 'job-processes.json'), logger); // kills what the last run left
 *   pool.on('spawn', ({ pid }) => leftovers.add(pid));
 *   pool.on('exit', ({ pid }) => leftovers.remove(pid));
 *
 * Each entry keeps the process's start time as well as its pid, so a pid the
 * system has since given to another program is left alone. Start times come
 * from /proc on Linux and from `ps` on macOS; Windows has no SIGSTOP (jobs
 * are handed back there instead), so nothing is recorded on it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { z } from 'zod';
import { procStatFields } from '../../common/proc-stat.js';

const Entries = z.array(z.object({ pid: z.number().int().positive(), startedAt: z.string() }));
type Entries = z.infer<typeof Entries>;

export class JobProcessLeftovers {
  private readonly entries = new Map<number, string>();

  private constructor(
    private readonly file: string,
    private readonly logger: Logger | undefined,
    private readonly platform: NodeJS.Platform,
  ) {}

  /** Kills the processes the file names that are still the ones it recorded, then starts a fresh list. */
  static open(file: string, logger?: Logger, platform: NodeJS.Platform = process.platform): JobProcessLeftovers {
    const registry = new JobProcessLeftovers(file, logger, platform);
    for (const { pid, startedAt } of readEntries(file, logger)) {
      if (startTimeOf(pid, platform) !== startedAt) continue;
      try {
        process.kill(pid, 'SIGKILL');
        logger?.warn({ pid }, 'killed a job process left behind by a worker that did not stop cleanly');
      } catch {
        // Gone between the look and the kill: what we wanted.
      }
    }
    registry.save();
    return registry;
  }

  /** A job process started: on disk before the call returns, so before it runs a job. */
  add(pid: number | undefined): void {
    if (pid === undefined || this.platform === 'win32') return;
    const startedAt = startTimeOf(pid, this.platform);
    if (startedAt === null) return;
    this.entries.set(pid, startedAt);
    this.save();
  }

  /**
   * A job process exited: forgotten, and left in the file until the next
   * change. Exits come in bursts when a worker stops, and a write then would
   * land after the worker has let go of its data dir; a stale line costs
   * nothing, since its start time no longer matches anything.
   */
  remove(pid: number | undefined): void {
    if (pid !== undefined) this.entries.delete(pid);
  }

  /**
   * Written in place of the old file at once (no fsync: after a power cut
   * there is nothing left to kill); synchronous, as it happens only when a
   * job process starts, and must not be half-done when the worker stops.
   */
  private save(): void {
    const entries: Entries = [...this.entries].map(([pid, startedAt]) => ({ pid, startedAt }));
    const temp = `${this.file}.${process.pid}.tmp`;
    try {
      writeFileSync(temp, `${JSON.stringify(entries)}\n`, { mode: 0o600 });
      renameSync(temp, this.file);
    } catch (e) {
      this.logger?.warn({ err: e, file: this.file }, 'could not record the job processes');
    }
  }
}

function readEntries(file: string, logger: Logger | undefined): Entries {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  try {
    return Entries.parse(JSON.parse(text));
  } catch (e) {
    logger?.warn({ err: e, file }, 'job process list unreadable: ignored');
    return [];
  }
}

/** When the process started, as the system tells it (an opaque string to compare); null if there is no such process. */
export function startTimeOf(pid: number, platform: NodeJS.Platform = process.platform): string | null {
  if (platform === 'linux') return procStatFields(pid)?.[19] ?? null; // field 22, starttime in clock ticks since boot
  if (platform === 'win32') return null;
  try {
    return execFileSync('ps', ['-o', 'lstart=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    return null; // ps exits 1 for a pid it does not know
  }
}
