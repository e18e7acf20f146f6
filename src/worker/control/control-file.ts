/**
 * `control.json` in the worker's data dir: where a running worker's local
 * control endpoint listens and the bearer token it takes, so `gogrid worker
 * pause --data DIR` finds it (as kubectl reads a kubeconfig). Mode 0600: the
 * token is the whole credential, and only the worker's own user may read it.
 *
 *   await writeControlFile(dataDir, { url, token, pid: process.pid });
 *   const info = await readControlFile(dataDir); // null when no worker wrote one
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { isErrno, readJsonFile, writeFileAtomic } from '../../common/files.js';
import { GridError } from '../../protocol/index.js';

export const ControlFile = z.strictObject({
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: z.url(),
  token: z.string().min(1),
  pid: z.number().int().positive(),
});
export type ControlFile = z.infer<typeof ControlFile>;

export const controlFilePath = (dataDir: string) => join(dataDir, 'control.json');

export function writeControlFile(dataDir: string, info: ControlFile): Promise<void> {
  return writeFileAtomic(controlFilePath(dataDir), `${JSON.stringify(info, null, 2)}\n`, 0o600);
}

export async function readControlFile(dataDir: string): Promise<ControlFile | null> {
  const file = controlFilePath(dataDir);
  try {
    return await readJsonFile(file, ControlFile);
  } catch (e) {
    if (e instanceof Error && isErrno(e.cause, 'EACCES')) throw new GridError('GG_ERR_UNAUTHENTICATED', `cannot read ${file}: run this as the user the worker runs as`);
    throw e;
  }
}

/** Removes the file only while it still names this endpoint: a newer worker's file stays. */
export async function removeControlFile(dataDir: string, token: string): Promise<void> {
  const current = await readControlFile(dataDir).catch(() => null);
  if (current?.token === token) await rm(controlFilePath(dataDir), { force: true });
}
