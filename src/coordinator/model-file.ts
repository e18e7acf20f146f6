/**
 * What a model file is, read from its bytes before the coordinator stores it:
 * the grid runs ONNX models (`onnx` jobs) and GGUF models (`llm` jobs), and
 * anything else is refused at `models add` rather than failing on a worker
 * later (issue #15 saw a text file stored as a model).
 *
 *   const facts = await inspectModelFile(path); // { format: 'onnx' | 'gguf' } or GG_ERR_MODEL_INVALID
 */
import fs from 'node:fs/promises';
import { GridError, type ModelFormat } from '../protocol/index.js';

export interface ModelFileFacts {
  format: ModelFormat;
}

/** The format the first bytes of `file` announce; null when neither. */
export async function sniffModelFormat(file: string): Promise<ModelFormat | null> {
  const head = Buffer.alloc(8);
  const fd = await fs.open(file, 'r');
  try {
    await fd.read(head, 0, head.length, 0);
  } finally {
    await fd.close();
  }
  if (head.subarray(0, 4).toString('latin1') === 'GGUF') return 'gguf';
  // An ONNX file is a protobuf ModelProto, and protobuf writers emit fields in
  // number order: field 1, ir_version (tag 0x08), a varint that fits one byte.
  if (head[0] === 0x08 && head[1]! >= 1 && head[1]! <= 0x7f) return 'onnx';
  return null;
}

/** The facts of a model file; GG_ERR_MODEL_INVALID, saying why, when it is not one the grid runs. */
export async function inspectModelFile(file: string): Promise<ModelFileFacts> {
  const format = await sniffModelFormat(file);
  if (format === null) {
    throw new GridError('GG_ERR_MODEL_INVALID', 'the file is neither an ONNX model (a protobuf ModelProto) nor a GGUF file (magic "GGUF"); nothing was stored');
  }
  return { format };
}
