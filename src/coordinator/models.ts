/**
 * The coordinator's model store: each model is a file named by its sha256
 * (lowercase hex) in `<data dir>/models`, beside a JSON sidecar
 * `<sha256>.json` with its name and the time it was added.
 *
 *   const dir = modelsDir(dataDir);
 *   await prepareModelDir(dir);
 *   const info = await addModelFromStream(dir, createReadStream('mlp.onnx'), { name: 'mlp.onnx' });
 *   const file = await findModelFile(dir, info.sha256); // { path, size } | null
 *
 * Why a sidecar and not a table: the bytes live in this coordinator's data
 * dir, and several coordinators may share one PostgreSQL, each with its own
 * data dir. A shared table would list models that this instance cannot
 * serve; beside the bytes, the metadata is exactly as present as the file,
 * survives a fresh in-memory store, and `ls` shows what is there.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { GridError, ModelInfo } from '../protocol/index.js';
import { createFileAtomic, ensurePrivateDir, isErrno } from '../common/files.js';
import { HashingWriter } from '../common/hashing-writer.js';

/** @default 64 GiB: larger than any model a worker could hold, small enough to stop a runaway upload. */
export const DEFAULT_MAX_MODEL_BYTES = 64 * 1024 ** 3;

const SHA256_HEX = /^[0-9a-f]{64}$/;
const UPLOAD_TEMP = /^\.upload-[0-9a-f]+\.tmp$/;

export function modelsDir(dataDir: string): string {
  return path.join(dataDir, 'models');
}

export function isSha256Hex(s: string): boolean {
  return SHA256_HEX.test(s);
}

/** The upload went past `maxBytes`; nothing was stored. */
export class ModelTooLargeError extends GridError {
  constructor(readonly maxBytes: number) {
    super('GG_ERR_BAD_REQUEST', `model is larger than the maximum of ${maxBytes} bytes`);
  }
}

/** Creates the directory and removes uploads a crash or a kill left half-written. */
export async function prepareModelDir(dir: string): Promise<void> {
  await ensurePrivateDir(dir);
  for (const name of await fs.readdir(dir)) {
    if (UPLOAD_TEMP.test(name)) await fs.rm(path.join(dir, name), { force: true });
  }
}

export interface AddModelOptions {
  /** What to call it; empty when omitted. */
  name?: string;
  /** When given, bytes that hash to anything else are refused with GG_ERR_MODEL_HASH_MISMATCH and not stored. */
  expectedSha256?: string;
  /** @default DEFAULT_MAX_MODEL_BYTES */
  maxBytes?: number;
  now?: Date;
}

/**
 * Streams `source` to a temp file in `dir` while hashing it, fsyncs, and
 * renames it to its sha256. Adding bytes that are already stored keeps the
 * first record (name, time) and returns it. On any failure (hash mismatch,
 * too large, a broken source) nothing is left behind.
 */
export async function addModelFromStream(dir: string, source: AsyncIterable<Uint8Array>, opts: AddModelOptions = {}): Promise<ModelInfo> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_MODEL_BYTES;
  const temp = path.join(dir, `.upload-${randomBytes(8).toString('hex')}.tmp`);
  try {
    const writer = await HashingWriter.open(temp, { flags: 'wx' });
    let digest: { sha256: string; bytes: number };
    try {
      for await (const chunk of source) {
        if (writer.bytes + chunk.length > maxBytes) throw new ModelTooLargeError(maxBytes);
        await writer.write(chunk);
      }
      digest = await writer.finish();
    } finally {
      await writer.close();
    }
    const expected = opts.expectedSha256?.toLowerCase();
    if (expected !== undefined && expected !== digest.sha256) {
      throw new GridError('GG_ERR_MODEL_HASH_MISMATCH', `the uploaded bytes hash to ${digest.sha256}, not ${expected}; nothing was stored`);
    }
    const existing = await getModelInfo(dir, digest.sha256);
    if (existing) return existing;
    const info: ModelInfo = {
      sha256: digest.sha256,
      size: digest.bytes,
      name: opts.name ?? '',
      addedAt: (opts.now ?? new Date()).toISOString(),
    };
    // Bytes first, then the sidecar: createFileAtomic fsyncs the directory,
    // which makes both renames durable. Two concurrent uploads of the same
    // bytes rename identical content, and the first sidecar wins.
    await fs.rename(temp, modelPath(dir, info.sha256));
    await createFileAtomic(dir, { name: sidecarName(info.sha256), data: `${JSON.stringify(info, null, 2)}\n`, mode: 0o600 });
    return (await getModelInfo(dir, info.sha256)) ?? info;
  } finally {
    await fs.rm(temp, { force: true });
  }
}

/** The file to serve, or null when no model with that hash is stored. */
export async function findModelFile(dir: string, sha256: string): Promise<{ path: string; size: number } | null> {
  if (!isSha256Hex(sha256)) return null;
  const file = modelPath(dir, sha256);
  try {
    const st = await fs.stat(file);
    return st.isFile() ? { path: file, size: st.size } : null;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return null;
    throw error;
  }
}

export async function getModelInfo(dir: string, sha256: string): Promise<ModelInfo | null> {
  const file = await findModelFile(dir, sha256);
  if (!file) return null;
  const sidecar = await readSidecar(dir, sha256);
  if (sidecar && sidecar.sha256 === sha256) return { ...sidecar, size: file.size };
  // Bytes without a readable sidecar (a crash between the two renames, or a
  // file copied in by hand): still a valid model, just without a name.
  const st = await fs.stat(file.path);
  return { sha256, size: file.size, name: '', addedAt: st.mtime.toISOString() };
}

/** Every stored model, oldest first. */
export async function listModels(dir: string): Promise<ModelInfo[]> {
  const names = await fs.readdir(dir).catch((e: unknown) => {
    if (isErrno(e, 'ENOENT')) return [];
    throw e;
  });
  const infos = await Promise.all(names.filter(isSha256Hex).map((sha) => getModelInfo(dir, sha)));
  return infos.filter((i): i is ModelInfo => i !== null).sort((a, b) => a.addedAt.localeCompare(b.addedAt) || a.sha256.localeCompare(b.sha256));
}

function modelPath(dir: string, sha256: string): string {
  return path.join(dir, sha256);
}

function sidecarName(sha256: string): string {
  return `${sha256}.json`;
}

async function readSidecar(dir: string, sha256: string): Promise<ModelInfo | null> {
  try {
    const parsed = ModelInfo.safeParse(JSON.parse(await fs.readFile(path.join(dir, sidecarName(sha256)), 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
