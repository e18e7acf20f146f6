/**
 * The executors this build has, by job kind. Importing it loads no runtime:
 * each executor imports its native runtime inside `run`, in the job process.
 *
 *   EXECUTORS.get('llm')?.canRun(hardware);
 */
import { llmExecutor } from './llm.js';
import { onnxExecutor } from './onnx.js';
import type { Executor } from './types.js';

export const EXECUTORS: ReadonlyMap<string, Executor> = new Map([onnxExecutor, llmExecutor].map((e) => [e.kind, e]));
