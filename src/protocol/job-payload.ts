/**
 * What a job's input and output must be, by its kind: the one check the
 * coordinator runs at submit and at a result, and the worker before it sends
 * a result, so neither side stores or sends what the other refuses.
 *
 *   checkJobPayload('llm', 'input', { prompt: 'Hi', maxTokens: 0 })  // 'input.maxTokens: Too small: …'
 */
import { LlmEmbeddingOutput, LlmJobInput, LlmJobOutput } from './llm.js';
import { checkOnnxPayload } from './tensor.js';
import { firstZodProblem } from './zod-problems.js';

/**
 * Null when `value` is a valid `which` of a `kind` job; else a sentence that
 * starts with the path of the first bad field (`output.outputs.y.data.0: …`).
 * Kinds without a shape here (the test executors) take any JSON the protocol
 * accepts (`json()` in text.ts).
 */
export function checkJobPayload(kind: string, which: 'input' | 'output', value: unknown): string | null {
  if (kind === 'onnx') return checkOnnxPayload(which, value);
  if (kind === 'llm') {
    const embedding = typeof value === 'object' && value !== null && 'embeddings' in value;
    const parsed = (which === 'input' ? LlmJobInput : embedding ? LlmEmbeddingOutput : LlmJobOutput).safeParse(value);
    return parsed.success ? null : firstZodProblem(parsed.error, [which]);
  }
  return null;
}
