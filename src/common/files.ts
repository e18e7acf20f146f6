/**
 * Crash-safe file writes: each file is written to a temp file in the same
 * directory with its final mode, fsynced, then renamed over the target, so a
 * reader (or the next start after a power cut) sees the old content or the
 * new, never half of either.
 *
 *   await writeFilesAtomic(dir, [{ name: 'worker.key', data: pem, mode: 0o600 }]);
 *
 * Several files are all staged first and renamed last, in the given order, so
 * the window in which a crash leaves a mix of old and new files is a few
 * renames long; put the file that marks the set as complete last.
 *
 * And the read side of the JSON files written so:
 *
 *   const info = await readJsonFile(join(dir, 'control.json'), ControlFile); // null when there is none
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import { firstZodProblem, GridError } from '../protocol/index.js';

export interface AtomicFile {
  /** A plain file name inside the directory. */
  name: string;
  data: string;
  /** Permission bits, applied exactly (the umask does not loosen or tighten them). */
  mode: number;
}

/** One file: `writeFilesAtomic` for a full path. */
export function writeFileAtomic(file: string, data: string, mode: number): Promise<void> {
  return writeFilesAtomic(path.dirname(file), [{ name: path.basename(file), data, mode }]);
}

/**
 * Creates a private directory (0700). An existing one keeps its mode: the
 * user may have pointed us at a shared directory on purpose (`--data /tmp`).
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

export async function writeFilesAtomic(dir: string, files: readonly AtomicFile[]): Promise<void> {
  const staged: Array<{ temp: string; target: string }> = [];
  try {
    for (const file of files) {
      const temp = tempPath(dir, file.name);
      staged.push({ temp, target: path.join(dir, file.name) });
      await writeSynced(temp, file.data, file.mode);
    }
    for (const { temp, target } of staged) await fs.rename(temp, target);
  } catch (error) {
    // A renamed temp file is already gone; force ignores those.
    await Promise.all(staged.map(({ temp }) => fs.rm(temp, { force: true })));
    throw error;
  }
  await syncDirectory(dir);
}

/**
 * Like `writeFilesAtomic` for one file, but only if `name` does not exist yet:
 * of two processes racing to create it, exactly one wins and both then read
 * the same content. Returns whether this call created it.
 */
export async function createFileAtomic(dir: string, file: AtomicFile): Promise<boolean> {
  const temp = tempPath(dir, file.name);
  const target = path.join(dir, file.name);
  try {
    await writeSynced(temp, file.data, file.mode);
    try {
      // link() fails with EEXIST instead of replacing, unlike rename().
      await fs.link(temp, target);
    } catch (error) {
      if (isErrno(error, 'EEXIST')) return false;
      // File systems without hard links (some network shares): check, then
      // rename; a race in between is possible there, a lost file is not.
      if (!['EPERM', 'ENOTSUP', 'ENOSYS'].some((code) => isErrno(error, code))) throw error;
      if (await fs.stat(target).then(() => true, (e: unknown) => !isErrno(e, 'ENOENT'))) return false;
      await fs.rename(temp, target);
    }
  } finally {
    await fs.rm(temp, { force: true });
  }
  await syncDirectory(dir);
  return true;
}

/** Hidden, and unique per write so concurrent writers never share one. */
function tempPath(dir: string, name: string): string {
  return path.join(dir, `.${name}.${randomBytes(6).toString('hex')}.tmp`);
}

async function writeSynced(file: string, data: string, mode: number): Promise<void> {
  // 'wx': a leftover temp file of the same name is never reused.
  const handle = await fs.open(file, 'wx', mode);
  try {
    // open() applies the umask; chmod sets the bits exactly.
    await handle.chmod(mode);
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Makes renames in `dir` durable; POSIX only (Windows cannot open a directory). */
export async function syncDirectory(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems refuse fsync on a directory; the data itself is already synced.
    if (!isErrno(error, 'EINVAL') && !isErrno(error, 'ENOTSUP')) throw error;
  } finally {
    await handle.close();
  }
}

/** `file`'s text; null when it does not exist. Throws GG_ERR_CONFIG_INVALID naming the file when it cannot be read (the errno error is the cause). */
export async function readTextFile(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return null;
    throw new GridError('GG_ERR_CONFIG_INVALID', `cannot read ${file}: ${messageOf(error)}`, { cause: error });
  }
}

/** `file` as JSON of `schema`'s shape, as `readTextFile` reads it; GG_ERR_CONFIG_INVALID naming the file when it is not JSON or not of that shape. */
export async function readJsonFile<S extends z.ZodType>(file: string, schema: S): Promise<z.output<S> | null> {
  const text = await readTextFile(file);
  if (text === null) return null;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `${file} is not valid JSON (${messageOf(error)})`, { cause: error });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new GridError('GG_ERR_CONFIG_INVALID', `${file}: ${firstZodProblem(parsed.error)}`);
  return parsed.data;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function isErrno(error: unknown, code: string): boolean {
  return error instanceof Error && (error as NodeJS.ErrnoException).code === code;
}
