/**
 * What llama.cpp finds on this machine, for the worker's hardware report:
 * the GPU backend it loads (CUDA, Vulkan, Metal) with its devices and VRAM,
 * or none. Asked of llama.cpp itself in a short-lived child process
 * (llm-probe-process.ts), once per worker process and setting
 * (GOGRID_LLM_GPU, and the devices llama.cpp is let see), so a new driver
 * counts from the next start.
 *
 *   const llm = await probeLlmRuntime();   // { gpu: 'cuda', devices: ['NVIDIA GeForce RTX 4090'], vramMiB: 24564, freeVramMiB: 23012 }
 *   hardware = { ...hardware, llm };        // null: the probe failed (its reason went to `onError`)
 *
 * About 0.7 s here (loading the Vulkan build, finding no device); it runs
 * beside the hardware probes, not after them.
 */
import { askProbe, keptAnswer } from './probe-child.js';
import { LlmRuntimeReport } from '../../protocol/messages.js';
import { firstZodProblem } from '../../protocol/zod-problems.js';

/** Loading a CUDA build and its libraries can take seconds on a cold disk; past this the probe has failed. */
const PROBE_TIMEOUT_MS = 30_000;

const probed = new Map<string, Promise<LlmRuntimeReport | null>>();

/** Resolves to what llama.cpp found, or null (never rejects) with the reason given to `onError`. */
export function probeLlmRuntime(onError: (why: string) => void = () => {}): Promise<LlmRuntimeReport | null> {
  // What the probe's answer depends on: the backend asked for, and the devices each backend is let see.
  const key = JSON.stringify(['GOGRID_LLM_GPU', 'GGML_VK_VISIBLE_DEVICES', 'CUDA_VISIBLE_DEVICES'].map((k) => process.env[k]));
  return keptAnswer(probed, key, run, null, onError);
}

async function run(): Promise<LlmRuntimeReport> {
  const parsed = LlmRuntimeReport.safeParse(await askProbe('llm-probe-process', [], 'the llama.cpp probe', PROBE_TIMEOUT_MS));
  if (!parsed.success) throw new Error(`the llama.cpp probe answered nonsense: ${firstZodProblem(parsed.error)}`);
  return parsed.data;
}
