/**
 * What a model file is, read from its bytes before the coordinator stores it:
 * the grid runs ONNX models (`onnx` jobs) and GGUF models (`llm` jobs), and
 * anything else, or a GGUF file that is malformed or truncated, is refused at
 * `models add` rather than failing on a worker later (issue #15 saw a text
 * file stored as a model).
 *
 *   const facts = await inspectModelFile(path); // { format, gguf } or GG_ERR_MODEL_INVALID
 */
import fs from 'node:fs/promises';
import type { GgufFileInfo, GgufTensorInfo } from 'node-llama-cpp';
import { cleanText, GridError, type GgufInfo, type ModelFormat } from '../protocol/index.js';

export interface ModelFileFacts {
  format: ModelFormat;
  /** Null unless the format is `gguf`. */
  gguf: GgufInfo | null;
}

/** The format the first bytes of `file` announce; null when neither. */
async function sniffModelFormat(file: string): Promise<ModelFormat | null> {
  const head = await readHead(file, 8);
  if (head.subarray(0, 4).toString('latin1') === 'GGUF') return 'gguf';
  // An ONNX file is a protobuf ModelProto, and protobuf writers emit fields in
  // number order: field 1, ir_version (tag 0x08), a varint that fits one byte.
  if (head[0] === 0x08 && head[1]! >= 1 && head[1]! <= 0x7f) return 'onnx';
  return null;
}

/** The facts of a model file; GG_ERR_MODEL_INVALID, saying why, when it is not one the grid runs. */
export async function inspectModelFile(file: string): Promise<ModelFileFacts> {
  const format = await sniffModelFormat(file);
  if (format === 'onnx') return { format, gguf: null };
  if (format === 'gguf') return { format, gguf: await readGguf(file) };
  throw new GridError('GG_ERR_MODEL_INVALID', 'the file is neither an ONNX model (a protobuf ModelProto) nor a GGUF file (magic "GGUF"); nothing was stored');
}

/**
 * The smallest a metadata entry (key length, type, one byte) and a tensor
 * description (name length, rank, type, offset) can be: counts that the file
 * cannot hold are garbage, and would send the reader, which reads zeros past
 * the end of a file, round a loop billions of times.
 */
const MIN_ENTRY_BYTES = 13n;
const MIN_TENSOR_INFO_BYTES = 24n;

async function readGguf(file: string): Promise<GgufInfo> {
  const size = (await fs.stat(file)).size;
  const head = await readHead(file, 24);
  if (head.length < 24) throw invalid(`truncated: ${size} bytes do not hold a GGUF header`);
  const version = head.readUInt32LE(4);
  if (version !== 2 && version !== 3) throw invalid(`GGUF version ${version} is not one llama.cpp reads (2 or 3)`);
  if (head.readBigUInt64LE(16) * MIN_ENTRY_BYTES + head.readBigUInt64LE(8) * MIN_TENSOR_INFO_BYTES > BigInt(size)) {
    throw invalid(`its header announces more metadata and tensors than its ${size} bytes can hold: truncated, or not GGUF`);
  }
  // Loaded on the first GGUF only: the package takes a second or more to import, which every CLI command would pay.
  const { GgmlType, GgufFileType, readGgufFileInfo } = await import('node-llama-cpp');
  let info: GgufFileInfo;
  try {
    info = await readGgufFileInfo(file, { sourceType: 'filesystem', readTensorInfo: true, spliceSplitFiles: false, logWarnings: false });
  } catch (error) {
    throw invalid(`its header does not parse (${error instanceof Error ? error.message : String(error)})`, error);
  }
  const meta = info.metadata as unknown as { general?: Record<string, unknown>; tokenizer?: Record<string, unknown>; split?: Record<string, unknown> };
  const architecture = meta.general?.architecture;
  if (typeof architecture !== 'string' || architecture === '') throw invalid('it has no general.architecture: not a model llama.cpp can load');
  const parts = Number(meta.split?.count ?? 1);
  if (parts > 1) throw invalid(`it is one part of a model split into ${parts} files; merge them first (llama-gguf-split --merge)`);
  const tensors = info.tensorInfo ?? [];
  const end = dataEnd(tensors, info.infoEndOffset ?? 0, (type) => GgmlType[type]);
  if (end > size) throw invalid(`truncated: its tensors end at byte ${end}, and the file has ${size}`);
  // A type the size table lacks escapes that check; no type packs more than 8 weights in a byte.
  const parameterCount = tensors.reduce((sum, t) => sum + elements(t.dimensions), 0n);
  if (parameterCount > 8n * BigInt(size)) throw invalid(`its tensors have ${parameterCount} elements, more than its ${size} bytes can hold`);
  const contextLength = Number(info.architectureMetadata.context_length);
  const fileType = meta.general?.file_type;
  return {
    architecture: cleanText(architecture, true).slice(0, 256),
    parameterCount: Number(parameterCount),
    contextLength: Number.isSafeInteger(contextLength) && contextLength > 0 ? contextLength : null,
    quantization: typeof fileType === 'number' && fileType in GgufFileType ? GgufFileType[fileType]!.replace(/^(MOSTLY|ALL)_/, '') : null,
    chatTemplate: typeof meta.tokenizer?.chat_template === 'string' && meta.tokenizer.chat_template !== '',
  };
}

/**
 * Elements and bytes per block of each ggml tensor type, by name
 * (the numbers move between llama.cpp versions, the names do not); from
 * GGML_QUANT_SIZES in llama.cpp's gguf-py. A type missing here is skipped by
 * the truncation check rather than refused: a newer llama.cpp may know it.
 */
const BLOCKS: Readonly<Record<string, readonly [elements: number, bytes: number]>> = {
  F32: [1, 4], F16: [1, 2], BF16: [1, 2], F64: [1, 8], I8: [1, 1], I16: [1, 2], I32: [1, 4], I64: [1, 8],
  Q4_0: [32, 18], Q4_1: [32, 20], Q5_0: [32, 22], Q5_1: [32, 24], Q8_0: [32, 34], Q8_1: [32, 36],
  Q2_K: [256, 84], Q3_K: [256, 110], Q4_K: [256, 144], Q5_K: [256, 176], Q6_K: [256, 210], Q8_K: [256, 292],
  IQ2_XXS: [256, 66], IQ2_XS: [256, 74], IQ3_XXS: [256, 98], IQ1_S: [256, 50], IQ4_NL: [32, 18], IQ3_S: [256, 110],
  IQ2_S: [256, 82], IQ4_XS: [256, 136], IQ1_M: [256, 56], TQ1_0: [256, 54], TQ2_0: [256, 66], MXFP4: [32, 17],
  NVFP4: [64, 36], Q1_0: [128, 18], Q2_0: [64, 18],
};

/** Where the last tensor's data ends: the size the file must have at least. */
function dataEnd(tensors: readonly GgufTensorInfo[], infoEnd: number, typeName: (type: number) => string | undefined): number {
  let end = BigInt(infoEnd);
  for (const t of tensors) {
    const block = BLOCKS[typeName(t.ggmlType) ?? ''];
    const bytes = block ? (elements(t.dimensions) / BigInt(block[0])) * BigInt(block[1]) : 0n;
    const tensorEnd = BigInt(t.fileOffset) + bytes;
    if (tensorEnd > end) end = tensorEnd;
  }
  return Number(end);
}

function elements(dimensions: readonly (number | bigint)[]): bigint {
  return dimensions.reduce<bigint>((n, d) => n * BigInt(d), 1n);
}

async function readHead(file: string, bytes: number): Promise<Buffer> {
  const head = Buffer.alloc(bytes);
  const fd = await fs.open(file, 'r');
  try {
    const { bytesRead } = await fd.read(head, 0, bytes, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await fd.close();
  }
}

function invalid(why: string, cause?: unknown): GridError {
  return new GridError('GG_ERR_MODEL_INVALID', `not a GGUF model the grid can run: ${why}; nothing was stored`, cause === undefined ? undefined : { cause });
}
