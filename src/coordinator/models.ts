/**
 * The coordinator's model store: each model is a file named by its sha256
 * (lowercase hex) in `<data dir>/models`, beside a JSON sidecar
 * `<sha256>.json` with its name, aliases, format (and a GGUF file's
 * metadata) and the time it was added.
 *
 *   const dir = modelsDir(dataDir);
 *   await prepareModelDir(dir);
 *   const info = await addModelFromStream(dir, createReadStream('mlp.onnx'), { name: 'mlp' });
 *   const file = await findModelFile(dir, info.sha256); // { path, size } | null
 *   const model = await resolveModel(dir, 'mlp');       // by sha256, name or alias
 *
 * Why a sidecar and not a table: the bytes live in this coordinator's data
 * dir, and several coordinators may share one PostgreSQL, each with its own
 * data dir. A shared table would list models that this instance cannot
 * serve; beside the bytes, the metadata is exactly as present as the file,
 * survives a fresh in-memory store, and `ls` shows what is there.
 *
 * Names and aliases are unique across all models, compared without case, and
 * resolve to one model. Two instances sharing one models dir could each give
 * the same name at the same moment (the check is per process); a name held
 * twice resolves to the older model.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { GridError, isGridError, ModelInfo, printable, sameModelName } from '../protocol/index.js';
import { createFileAtomic, ensurePrivateDir, isErrno, writeFileAtomic } from '../common/files.js';
import { HashingWriter } from '../common/hashing-writer.js';
import { inspectModelFile } from './model-file.js';

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
  /** What clients call it (a valid ModelName); empty when omitted. */
  name?: string;
  /** Other names it answers to (valid ModelNames). */
  aliases?: readonly string[];
  /** When given, bytes that hash to anything else are refused with GG_ERR_MODEL_HASH_MISMATCH and not stored. */
  expectedSha256?: string;
  /** @default DEFAULT_MAX_MODEL_BYTES */
  maxBytes?: number;
  now?: Date;
}

/**
 * Streams `source` to a temp file in `dir` while hashing it, fsyncs, checks
 * that it is a model the grid runs (GG_ERR_MODEL_INVALID) and that its names
 * are free (GG_ERR_MODEL_NAME_TAKEN), and renames it to its sha256. Adding
 * bytes that are already stored keeps the first record (names, time) and
 * returns it. On any failure (hash mismatch, too large, not a model, a name
 * taken, a broken source) nothing is left behind.
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
    const facts = await inspectModelFile(temp);
    const name = opts.name ?? '';
    return await underNameLock(dir, async () => {
      const again = await getModelInfo(dir, digest.sha256);
      if (again) return again;
      const info: ModelInfo = {
        sha256: digest.sha256,
        size: digest.bytes,
        name,
        aliases: distinctNames(opts.aliases ?? []).filter((a) => !sameModelName(a, name)),
        ...facts,
        addedAt: (opts.now ?? new Date()).toISOString(),
      };
      await checkNamesFree(dir, [info.name, ...info.aliases].filter(Boolean), info.sha256);
      // Bytes first, then the sidecar: createFileAtomic fsyncs the directory,
      // which makes both renames durable.
      await fs.rename(temp, modelPath(dir, info.sha256));
      await createFileAtomic(dir, { name: sidecarName(info.sha256), data: sidecarText(info), mode: 0o600 });
      return (await getModelInfo(dir, info.sha256)) ?? info;
    });
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
  // Bytes without a readable sidecar (a crash between the two renames, or a
  // file copied in by hand): still a valid model, just without a name.
  const info = sidecar && sidecar.sha256 === sha256 ? sidecar : ModelInfo.parse({ sha256, size: file.size, name: '', addedAt: (await fs.stat(file.path)).mtime.toISOString() });
  // Stored before formats were checked: what the bytes say, read on each call
  // rather than written back (only a GGUF file costs more than a few bytes).
  if (info.format === null) Object.assign(info, await inspectStored(file.path));
  return { ...info, size: file.size };
}

/** A stored file's format and metadata; none when it would be refused today (no job kind runs it). */
async function inspectStored(file: string): Promise<Pick<ModelInfo, 'format' | 'gguf'>> {
  try {
    return await inspectModelFile(file);
  } catch (error) {
    if (!isGridError(error, 'GG_ERR_MODEL_INVALID')) throw error;
    return { format: null, gguf: null };
  }
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

/**
 * The model `ref` names: its sha256, its name or one of its aliases (without
 * case); null when none. The one lookup for everything that takes a model
 * from a person or a client (the CLI, OpenAI's `model`).
 */
export async function resolveModel(dir: string, ref: string): Promise<ModelInfo | null> {
  if (isSha256Hex(ref)) return getModelInfo(dir, ref);
  return (await listModels(dir)).find((m) => answersTo(m, ref)) ?? null;
}

/** Gives the model `sha256` the name `name`; its old name is gone, and `name` stops being one of its aliases. */
export function renameModel(dir: string, sha256: string, name: string): Promise<ModelInfo> {
  return updateNames(dir, sha256, name, (m) => ({ ...m, name, aliases: m.aliases.filter((a) => !sameModelName(a, name)) }));
}

/** Lets the model `sha256` answer to `alias` too; a name it already has changes nothing. */
export function addModelAlias(dir: string, sha256: string, alias: string): Promise<ModelInfo> {
  return updateNames(dir, sha256, alias, (m) => (answersTo(m, alias) ? m : { ...m, aliases: [...m.aliases, alias] }));
}

/** Takes `alias` from the model `sha256`; GG_ERR_NOT_FOUND when it is not one of its aliases. */
export function removeModelAlias(dir: string, sha256: string, alias: string): Promise<ModelInfo> {
  return updateNames(dir, sha256, null, (m) => {
    const aliases = m.aliases.filter((a) => !sameModelName(a, alias));
    if (aliases.length === m.aliases.length) throw new GridError('GG_ERR_NOT_FOUND', `"${alias}" is not an alias of model ${modelLabel(m)}`);
    return { ...m, aliases };
  });
}

/** GG_ERR_MODEL_NAME_TAKEN when a model other than `owner` answers to one of `names`. */
export async function checkNamesFree(dir: string, names: readonly string[], owner?: string): Promise<void> {
  const models = await listModels(dir);
  for (const name of names) {
    const holder = models.find((m) => m.sha256 !== owner && answersTo(m, name));
    if (holder) throw new GridError('GG_ERR_MODEL_NAME_TAKEN', `"${name}" is already a name of model ${modelLabel(holder)}; nothing was changed`);
  }
}

async function updateNames(dir: string, sha256: string, claimed: string | null, change: (m: ModelInfo) => ModelInfo): Promise<ModelInfo> {
  return underNameLock(dir, async () => {
    const current = await getModelInfo(dir, sha256);
    if (!current) throw new GridError('GG_ERR_MODEL_NOT_FOUND', `no model ${sha256} on this coordinator`);
    if (claimed !== null) await checkNamesFree(dir, [claimed], sha256);
    const next = change(current);
    if (next !== current) await writeFileAtomic(path.join(dir, sidecarName(sha256)), sidecarText(next), 0o600);
    return next;
  });
}

/**
 * Name changes of one models dir, one at a time: the check that a name is
 * free and the write that takes it must not interleave with another's.
 */
const nameLocks = new Map<string, Promise<unknown>>();

async function underNameLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const previous = nameLocks.get(dir) ?? Promise.resolve();
  const current = previous.then(fn);
  const settled = current.catch(() => undefined);
  nameLocks.set(dir, settled);
  try {
    return await current;
  } finally {
    if (nameLocks.get(dir) === settled) nameLocks.delete(dir);
  }
}

function answersTo(m: ModelInfo, ref: string): boolean {
  return (m.name !== '' && sameModelName(m.name, ref)) || m.aliases.some((a) => sameModelName(a, ref));
}

function distinctNames(names: readonly string[]): string[] {
  return names.filter((n, i) => names.findIndex((o) => sameModelName(o, n)) === i);
}

function modelLabel(m: ModelInfo): string {
  return `${m.sha256.slice(0, 12)}…${m.name ? ` (${printable(m.name)})` : ''}`;
}

function modelPath(dir: string, sha256: string): string {
  return path.join(dir, sha256);
}

function sidecarName(sha256: string): string {
  return `${sha256}.json`;
}

function sidecarText(info: ModelInfo): string {
  return `${JSON.stringify(info, null, 2)}\n`;
}

async function readSidecar(dir: string, sha256: string): Promise<ModelInfo | null> {
  try {
    const parsed = ModelInfo.safeParse(JSON.parse(await fs.readFile(path.join(dir, sidecarName(sha256)), 'utf8')));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
