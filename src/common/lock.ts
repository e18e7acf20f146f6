/**
 * One process per data dir. Two coordinators on one embedded database, or two
 * workers on one identity, corrupt data or fight over a session; the second
 * one is refused with the first one's pid instead.
 *
 *   const lock = await lockDataDir(dataDir, 'coordinator'); // throws GridError if held
 *   …
 *   await lock.release();
 *
 * The lock is a file holding the owner's pid and program name. A file whose
 * pid is no longer running (a crash, kill -9), or now belongs to another
 * program, is taken over: Windows ends an app at logoff without the events
 * that would remove the file, and by the next login its pid may be any
 * other process's. Hand-written rather than a lockfile package: this is the
 * whole of it, and it must also run headless.
 */
import { execFile } from 'node:child_process';
import { readFile, readlink, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { GridError } from '../protocol/errors.js';
import { createFileAtomic, isErrno } from './files.js';

const LOCK_FILE = 'lock.pid';

export interface DataDirLock {
  release(): Promise<void>;
}

export async function lockDataDir(dataDir: string, what: string): Promise<DataDirLock> {
  const file = path.join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await createFileAtomic(dataDir, { name: LOCK_FILE, data: `${process.pid}\n${OWN_PROGRAM}\n`, mode: 0o644 })) {
      return { release: () => rm(file, { force: true }) };
    }
    const [pidLine = '', program] = (await readFile(file, 'utf8').catch(() => '')).split('\n');
    const owner = Number(pidLine.trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isRunning(owner) && (await mayBeOurs(owner, program?.trim() || null))) {
      throw new GridError('GG_ERR_CONFIG_INVALID', `another ${what} (pid ${owner}) is using the data dir ${dataDir}; stop it or pass another --data`);
    }
    // Left by a process that died (or unreadable): take it over.
    await rm(file, { force: true });
  }
  throw new GridError('GG_ERR_CONFIG_INVALID', `could not lock the data dir ${dataDir}: another process keeps taking it`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return isErrno(e, 'EPERM');
  }
}

/** The name of this process's program: `node` headless, the app's executable in Electron. */
const OWN_PROGRAM = path.basename(process.execPath);

/**
 * Whether the process `pid` may be the program that wrote the lock: false
 * only when its program is known and is another one. Unknown (an old lock
 * file without the name, a process of another user whose program cannot be
 * read) counts as ours, so a live owner is never taken over by mistake.
 */
async function mayBeOurs(pid: number, program: string | null): Promise<boolean> {
  if (program === null) return true;
  const actual = await programOf(pid);
  if (actual === null) return true;
  return process.platform === 'win32' ? actual.toLowerCase() === program.toLowerCase() : actual === program;
}

const run = promisify(execFile);

/** The program `pid` runs, as a file name; null where it cannot be read. */
async function programOf(pid: number): Promise<string | null> {
  try {
    if (process.platform === 'linux') return path.basename(await readlink(`/proc/${pid}/exe`));
    if (process.platform === 'win32') {
      const { stdout } = await run('tasklist', ['/FI', `PID eq ${pid}`, '/FO', 'CSV', '/NH'], { windowsHide: true });
      return /^"([^"]+)"/.exec(stdout.trim())?.[1] ?? null;
    }
    const { stdout } = await run('ps', ['-p', String(pid), '-o', 'comm=']);
    return stdout.trim() === '' ? null : path.basename(stdout.trim());
  } catch {
    return null;
  }
}
