/**
 * One process per data dir. Two coordinators on one embedded database, or two
 * workers on one identity, corrupt data or fight over a session; the second
 * one is refused with the first one's pid instead.
 *
 *   const lock = await lockDataDir(dataDir, 'coordinator'); // throws GridError if held
 *   …
 *   await lock.release();
 *
 * The lock is a file holding the owner's pid. A file whose pid is no longer
 * running (a crash, kill -9) is taken over. Hand-written rather than a
 * lockfile package: this is the whole of it, and it must also run headless.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { GridError } from '../protocol/errors.js';
import { createFileAtomic, isErrno } from './files.js';

const LOCK_FILE = 'lock.pid';

export interface DataDirLock {
  release(): Promise<void>;
}

export async function lockDataDir(dataDir: string, what: string): Promise<DataDirLock> {
  const file = path.join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await createFileAtomic(dataDir, { name: LOCK_FILE, data: `${process.pid}\n`, mode: 0o644 })) {
      return { release: () => rm(file, { force: true }) };
    }
    const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isRunning(owner)) {
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
