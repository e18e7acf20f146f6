/**
 * `gogrid models`: the coordinator's model store. Wherever a command takes
 * MODEL, it is a sha256, a name or an alias; names and aliases are what
 * OpenAI clients send as `model`, unique across models, compared without case.
 *
 *   gogrid models add tinyllama-1.1b-chat.Q4_K_M.gguf --name tinyllama --alias chat
 *   gogrid models alias tinyllama default
 *   gogrid models unalias default
 *   gogrid models rename tinyllama tinyllama-chat
 *   gogrid models --json
 */
import type { Command } from 'commander';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { byteBar, progressShown, type ByteBar } from './progress.js';
import { stat } from 'node:fs/promises';
import { basename, parse } from 'node:path';
import { GridError, isGridError, MODEL_SHA256_HEADER, ModelInfo, ModelList, ModelName, printable, sameModelName, type GgufInfo } from '../protocol/index.js';
import { AdminClient } from './admin-client.js';
import { addTargetOptions } from './admin-commands.js';
import { addListingOptions, listingFormat, printJson, printListing, type ListingFlags } from './output.js';

type Target = { data?: string; api?: string; ca?: string; json?: boolean };

const SHA256 = /^[0-9a-f]{64}$/;

export function registerModelCommands(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  const models = addTargetOptions(
    addListingOptions(program.command('models').description('models stored on the coordinator; `models add FILE` stores one').option('--json', 'print JSON')),
  ).action((flags: Target & ListingFlags) =>
    run(async () => {
      const format = listingFormat(flags);
      const api = await AdminClient.resolve(flags);
      const list = (await api.call('GET', '/v1/models', ModelList)).data;
      printListing(format, list, [
        { header: 'SHA256', cell: (m) => m.sha256 },
        { header: 'SIZE', cell: (m) => String(m.size) },
        { header: 'NAME', cell: (m) => m.name },
        { header: 'ALIASES', cell: (m) => m.aliases.join(', ') },
        { header: 'FORMAT', cell: (m) => m.format ?? '?' },
        { header: 'DETAILS', cell: (m) => (m.gguf ? ggufDetails(m.gguf) : '') },
        { header: 'ADDED', cell: (m) => m.addedAt },
      ]);
    }),
  );

  addTargetOptions(
    models
      .command('add')
      .description('store an ONNX or GGUF model file, content-addressed by its sha256; prints the sha256')
      .argument('<file>', 'model file, e.g. model.onnx or model.gguf')
      .option('--name <name>', 'what clients call it (default: the file name without extension)')
      .option('--alias <alias>', 'another name it answers to (repeatable)', (v: string, all: string[]) => [...all, v], [])
      .option('--json', 'print JSON'),
  ).action((file: string, flags: Target & { name?: string; alias: string[] }) =>
    run(async () => {
      const api = await AdminClient.resolve(flags);
      const info = await addModelFile(api, file, { name: flags.name, aliases: flags.alias, progress: progressShown(flags.json) });
      if (flags.json) printJson(info);
      else process.stdout.write(`${info.sha256}\n`);
    }),
  );

  addTargetOptions(
    models.command('rename').description("change a model's name").argument('<model>', 'sha256, name or alias').argument('<name>', 'its new name').option('--json', 'print JSON'),
  ).action((model: string, name: string, flags: Target) =>
    run(async () => {
      const api = await AdminClient.resolve(flags);
      const info = await api.call('PUT', `/v1/models/${(await storedModel(api, model)).sha256}/name`, ModelInfo, { name });
      printInfo(info, flags);
    }),
  );

  addTargetOptions(
    models.command('alias').description('let a model answer to another name too').argument('<model>', 'sha256, name or alias').argument('<alias>', 'the other name').option('--json', 'print JSON'),
  ).action((model: string, alias: string, flags: Target) =>
    run(async () => {
      const api = await AdminClient.resolve(flags);
      const info = await api.call('POST', `/v1/models/${(await storedModel(api, model)).sha256}/aliases`, ModelInfo, { alias });
      printInfo(info, flags);
    }),
  );

  addTargetOptions(models.command('unalias').description('take an alias from the model that has it').argument('<alias>', 'the alias').option('--json', 'print JSON')).action(
    (alias: string, flags: Target) =>
      run(async () => {
        const api = await AdminClient.resolve(flags);
        const info = await api.call('DELETE', `/v1/models/${(await storedModel(api, alias)).sha256}/aliases/${encodeURIComponent(alias)}`, ModelInfo);
        printInfo(info, flags);
      }),
  );
}

/**
 * The sha256 of `--model`: as given, a file's (uploaded unless stored, named
 * after the file when that name is free), or a stored model's by name or alias.
 */
export async function jobModelSha256(api: AdminClient, model: string, opts: { progress?: boolean } = {}): Promise<string> {
  if (SHA256.test(model)) return model;
  if (await isPresent(model)) return (await addModelFile(api, model, { nameless: 'when-taken', progress: opts.progress })).sha256;
  const found = await findModel(api, model);
  if (!found) throw new GridError('GG_ERR_MODEL_NOT_FOUND', `--model: ${model} is neither a file nor the name of a stored model; \`gogrid models\` lists them`);
  return found.sha256;
}

interface AddFileOptions {
  name?: string;
  aliases?: string[];
  /** `when-taken`: a default name another model holds is left out instead of refused. */
  nameless?: 'when-taken';
  /** Bars for hashing and uploading (progress.ts): only where a person watches. @default false */
  progress?: boolean;
}

/**
 * Stores `file` unless the coordinator has it. A stored one gets the name and
 * aliases asked for; a new one also its default name (the file name without
 * extension). A name another model holds fails before the upload.
 */
async function addModelFile(api: AdminClient, file: string, opts: AddFileOptions): Promise<ModelInfo> {
  const { sha256, size } = await hashFile(file, opts.progress === true);
  const aliases = opts.aliases ?? [];
  const stored = await findModel(api, sha256);
  if (stored) return nameStored(api, stored, opts.name, aliases);
  let name = opts.name ?? defaultName(file);
  for (const wanted of [name, ...aliases]) {
    const holder = wanted === undefined ? null : await findModel(api, wanted);
    if (!holder) continue;
    if (wanted === name && opts.name === undefined && opts.nameless === 'when-taken') {
      name = undefined;
      continue;
    }
    const hint = wanted === name && opts.name === undefined ? '; choose another with --name' : '';
    throw new GridError('GG_ERR_MODEL_NAME_TAKEN', `"${wanted}" is already a name of model ${holder.sha256.slice(0, 12)}…${holder.name ? ` (${holder.name})` : ''}${hint}; nothing was stored`);
  }
  const q = new URLSearchParams(name === undefined ? {} : { name });
  for (const alias of aliases) q.append('alias', alias);
  const body = createReadStream(file);
  const bar = opts.progress ? byteBar(`uploading ${basename(file)}`, size) : null;
  if (bar) body.on('data', (chunk) => bar.add(chunk.length));
  try {
    return await api.call('POST', `/v1/models?${q}`, ModelInfo, body, { [MODEL_SHA256_HEADER]: sha256 }, size);
  } finally {
    bar?.stop();
  }
}

/** Gives a model already stored the names asked for (a `models add` of the same bytes again). */
async function nameStored(api: AdminClient, stored: ModelInfo, name: string | undefined, aliases: string[]): Promise<ModelInfo> {
  let info = stored;
  if (name !== undefined && !sameModelName(info.name, name)) info = await api.call('PUT', `/v1/models/${info.sha256}/name`, ModelInfo, { name });
  for (const alias of aliases) {
    if (!sameModelName(info.name, alias) && !info.aliases.some((a) => sameModelName(a, alias))) {
      info = await api.call('POST', `/v1/models/${info.sha256}/aliases`, ModelInfo, { alias });
    }
  }
  return info;
}

/** The file name without its extension, when that is a valid model name. */
function defaultName(file: string): string | undefined {
  const parsed = ModelName.safeParse(parse(file).name);
  return parsed.success ? parsed.data : undefined;
}

async function hashFile(file: string, progress: boolean): Promise<{ sha256: string; size: number }> {
  let bar: ByteBar | null = null;
  try {
    const st = await stat(file);
    if (st.isDirectory()) throw Object.assign(new Error('a directory'), { code: 'EISDIR' });
    const hash = createHash('sha256');
    // A multi-GiB GGUF takes seconds to hash before its upload starts.
    bar = progress ? byteBar(`hashing ${basename(file)}`, st.size) : null;
    for await (const chunk of createReadStream(file)) {
      hash.update(chunk as Buffer);
      bar?.add((chunk as Buffer).length);
    }
    return { sha256: hash.digest('hex'), size: st.size };
  } catch (e) {
    throw new GridError('GG_ERR_BAD_REQUEST', `cannot read the model file ${file}: ${fileProblem(e)}`);
  } finally {
    bar?.stop();
  }
}

/** An fs error in words, with its code for searching. */
function fileProblem(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const words: Record<string, string> = {
    EISDIR: 'it is a directory; give the model file in it (.onnx or .gguf)',
    ENOENT: 'no such file',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
  };
  return code === undefined ? String(e) : `${words[code] ?? (e as Error).message} (${code})`;
}

async function isPresent(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new GridError('GG_ERR_BAD_REQUEST', `cannot read the model file ${file}: ${fileProblem(e)}`);
  }
}

/** The model a sha256, name or alias names; null when none. */
async function findModel(api: AdminClient, ref: string): Promise<ModelInfo | null> {
  try {
    return await api.call('GET', `/v1/models/${encodeURIComponent(ref)}/info`, ModelInfo);
  } catch (e) {
    if (isGridError(e, 'GG_ERR_MODEL_NOT_FOUND')) return null;
    throw e;
  }
}

async function storedModel(api: AdminClient, ref: string): Promise<ModelInfo> {
  const found = await findModel(api, ref);
  if (!found) throw new GridError('GG_ERR_MODEL_NOT_FOUND', `no model ${ref} on the coordinator; \`gogrid models\` lists them`);
  return found;
}

function printInfo(info: ModelInfo, flags: Target): void {
  if (flags.json) return printJson(info);
  const aliases = info.aliases.length ? ` (aliases: ${info.aliases.join(', ')})` : '';
  process.stdout.write(`${printable(`${info.sha256} ${info.name}${aliases}`)}\n`);
}

/** `llama, 1.1B parameters, context 2048, Q4_K_M, chat template` */
function ggufDetails(g: GgufInfo): string {
  return [
    g.architecture,
    `${compactCount(g.parameterCount)} parameters`,
    ...(g.contextLength === null ? [] : [`context ${g.contextLength}`]),
    ...(g.quantization === null ? [] : [g.quantization]),
    g.chatTemplate ? 'chat template' : 'no chat template',
  ].join(', ');
}

function compactCount(n: number): string {
  for (const [unit, size] of [['T', 1e12], ['B', 1e9], ['M', 1e6], ['K', 1e3]] as const) {
    if (n >= size) return `${Number((n / size).toPrecision(3))}${unit}`;
  }
  return String(n);
}
