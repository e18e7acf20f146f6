/**
 * The job processes a worker has alive, written down in its data dir, so
 * that the next worker on that dir can end what one killed outright (SIGKILL,
 * the OOM killer, a crash of the desktop app) left behind. A running job
 * process notices on its own: its IPC channel closes and it exits. One the
 * worker had stopped (SIGSTOP, its owner at the keyboard) cannot notice
 * anything, and would sit there holding its memory until the machine
 * restarts.
 *
 *   const leftovers = await JobProcessLeftovers.open(join(dataDir, 'job-processes.json'), logger); // kills what the last run left
 *   pool.on('spawn', ({ pid }) => leftovers.add(pid));
 *   pool.on('exit', ({ pid }) => leftovers.remove(pid));
 *
 * Each entry keeps the process's start time as well as its pid, so a pid the
 * system has since given to another program is left alone. Start times come
 * from /proc on Linux and from `ps` on macOS; Windows has no SIGSTOP (jobs
 * are handed back there instead), so nothing is recorded on it.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { z } from 'zod';
import { writeFileAtomic } from '../../common/files.js';
import { procStatFields } from '../../common/proc-stat.js';

const Entries = z.array(z.object({ pid: z.number().int().positive(), startedAt: z.string() }));
type Entries = z.infer<typeof Entries>;

export class JobProcessLeftovers {
  private readonly entries = new Map<number, string>();
  private writes: Promise<void> = Promise.resolve();

  private constructor(
    private readonly file: string,
    private readonly logger: Logger | undefined,
    private readonly platform: NodeJS.Platform,
  ) {}

  /** Kills the processes the file names that are still the ones it recorded, then starts a fresh list. */
  static async open(file: string, logger?: Logger, platform: NodeJS.Platform = process.platform): Promise<JobProcessLeftovers> {
    const registry = new JobProcessLeftovers(file, logger, platform);
    for (const { pid, startedAt } of await readEntries(file, logger)) {
      if ((await startTimeOf(pid, platform)) !== startedAt) continue;
      try {
        process.kill(pid, 'SIGKILL');
        logger?.warn({ pid }, 'killed a job process left behind by a worker that did not stop cleanly');
      } catch {
        // Gone between the look and the kill: what we wanted.
      }
    }
    await registry.save();
    return registry;
  }

  add(pid: number | undefined): void {
    if (pid === undefined || this.platform === 'win32') return;
    void this.change(async () => {
      const startedAt = await startTimeOf(pid, this.platform);
      if (startedAt !== null) this.entries.set(pid, startedAt);
    });
  }

  remove(pid: number | undefined): void {
    if (pid === undefined || this.platform === 'win32') return;
    void this.change(async () => {
      this.entries.delete(pid);
    });
  }

  /** Resolves once every change asked for so far is on disk. */
  flushed(): Promise<void> {
    return this.writes;
  }

  /** One change at a time, each written out: the file never lags a process by more than its own write. */
  private change(apply: () => Promise<void>): Promise<void> {
    this.writes = this.writes.then(async () => {
      await apply();
      await this.save();
    });
    this.writes = this.writes.catch((e: unknown) => this.logger?.warn({ err: e, file: this.file }, 'could not record the job processes'));
    return this.writes;
  }

  private save(): Promise<void> {
    const entries: Entries = [...this.entries].map(([pid, startedAt]) => ({ pid, startedAt }));
    return writeFileAtomic(this.file, `${JSON.stringify(entries)}\n`, 0o600);
  }
}

async function readEntries(file: string, logger: Logger | undefined): Promise<Entries> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
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

const run = promisify(execFile);

/** When the process started, as the system tells it (an opaque string to compare); null if there is no such process. */
export async function startTimeOf(pid: number, platform: NodeJS.Platform = process.platform): Promise<string | null> {
  if (platform === 'linux') return procStatFields(pid)?.[19] ?? null; // field 22, starttime in clock ticks since boot
  if (platform === 'win32') return null;
  try {
    const { stdout } = await run('ps', ['-o', 'lstart=', '-p', String(pid)]);
    return stdout.trim() || null;
  } catch {
    return null; // ps exits 1 for a pid it does not know
  }
}
