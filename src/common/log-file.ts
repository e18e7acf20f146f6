/**
 * Logs kept on disk for a process nobody watches: the desktop app (its
 * stdout goes nowhere once it starts at login) and `gogrid … --log-file`.
 * JSON lines in BASE.1.log, BASE.2.log, …, rolled over at LOG_FILE_BYTES
 * with the newest LOG_FILES kept across restarts (pino-roll), written
 * synchronously so that the lines before a crash are there to read.
 *
 *   const file = await openLogFile(join(dataDir, 'logs', 'worker'));
 *   const logger = pino({ level: 'info' }, pino.multistream([{ level: 'info', stream: file.stream }, { level: 'info', stream: process.stdout }]));
 *   shell.openPath(file.dir);   // "Open logs folder"
 */
import { chmod, mkdir, readdir } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { DestinationStream } from 'pino';
import pinoRoll from 'pino-roll';
import { GridError } from '../protocol/index.js';

export const LOG_FILE_BYTES = 10 * 2 ** 20;
export const LOG_FILES = 5;

export interface LogFile {
  stream: DestinationStream;
  /** The folder the files are in. */
  dir: string;
  /** Ends the file; lines logged afterwards go nowhere. */
  close(): void;
}

export async function openLogFile(base: string, opts: { maxBytes?: number } = {}): Promise<LogFile> {
  const file = resolve(base);
  try {
    // Ours, not pino-roll's mkdir: every folder created on the way is private (0700), the data dir
    // included when the log is the first thing in it (pino-roll's would be world-readable).
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const stream = await pinoRoll({
      file,
      size: `${Math.max(1, Math.round((opts.maxBytes ?? LOG_FILE_BYTES) / 1024))}k`,
      // Files of earlier runs count too, or every restart would keep five more.
      limit: { count: LOG_FILES - 1, removeOtherLogFiles: true },
      sync: true,
      // Logs name jobs, workers and paths: for the user who runs the process, as the data dir is.
      mode: 0o600,
    });
    // Files an earlier version left readable by everyone become private too.
    const prefix = `${basename(file)}.`;
    for (const name of await readdir(dirname(file))) {
      if (name.startsWith(prefix) && name.endsWith('.log')) await chmod(join(dirname(file), name), 0o600);
    }
    return { stream, dir: dirname(file), close: () => stream.end() };
  } catch (e) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `cannot write logs to ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}
