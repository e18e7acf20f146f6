/**
 * The GPU code path on a machine without a GPU: node-llama-cpp's Vulkan build
 * on Mesa's software Vulkan (lavapipe, Debian's mesa-vulkan-drivers), every
 * layer offloaded, gives the text the CPU build gives. Lavapipe calls itself
 * a CPU device, which llama.cpp skips unless GGML_VK_VISIBLE_DEVICES names it.
 * The first Vulkan load compiles shaders (about 25 s on two cores), hence the
 * long timeout. Its own file: a process loads one llama.cpp binary.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getLlama, LlamaChatSession, LlamaLogLevel } from 'node-llama-cpp';
import { afterAll, describe, expect, it } from 'vitest';
import { needLavapipe } from '../../helpers/lavapipe.js';
import type { LlmJobOutput } from '../../../src/protocol/llm.js';
import { JobProcessPool } from '../../../src/worker/executors/index.js';
import { writeTinyGguf } from '../../fixtures/make-gguf.js';
import { makeJob } from './helpers.js';

/** One thread, as llm.test.ts says why. */
const THREADS = 1;
const dir = mkdtempSync(path.join(tmpdir(), 'gogrid-gguf-vk-'));
const tiny = writeTinyGguf(path.join(dir, 'tiny.gguf'));
const pools: JobProcessPool[] = [];

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  rmSync(dir, { recursive: true, force: true });
});

/** One job in a fresh job process whose environment selects the llama.cpp backend (job processes inherit the worker's). */
/** One job in a fresh job process under `env`, allowed the GPU backends given (the worker passes what its probe found; none: the CPU). */
async function runIn(env: Record<string, string>, input: unknown, gpuBackends: string[] = []): Promise<LlmJobOutput> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  const pool = new JobProcessPool();
  pools.push(pool);
  try {
    const opts = { modelPath: tiny.file, threads: THREADS, gpuBackends, timeoutMs: 150_000, signal: new AbortController().signal, onProgress: () => {} };
    return (await pool.run('llm', makeJob('llm', input, { timeoutMs: 150_000 }), opts)) as LlmJobOutput;
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

describe('LLM executor on Vulkan (lavapipe)', () => {
  it("offloads every layer and answers with the CPU build's text", { timeout: 180_000 }, async (ctx) => {
    needLavapipe(ctx);
    process.env['GGML_VK_VISIBLE_DEVICES'] = '0';
    const llama = await getLlama({ gpu: 'vulkan', build: 'never', maxThreads: THREADS, logLevel: LlamaLogLevel.error });
    try {
      expect(llama.gpu).toBe('vulkan');
      const model = await llama.loadModel({ modelPath: tiny.file, gpuLayers: 'max' });
      // The layers and the output layer.
      expect(model.gpuLayers).toBe(tiny.layers + 1);
      const context = await model.createContext({ threads: THREADS });
      const session = new LlamaChatSession({ contextSequence: context.getSequence(), systemPrompt: 'You are a helpful assistant.' });
      const vulkanText = await session.prompt('Tell me a story about the grid.', { maxTokens: 32, temperature: 0, repeatPenalty: false });
      await context.dispose();
      await model.dispose();

      const input = {
        messages: [
          { role: 'system', content: 'You are a helpful assistant.' },
          { role: 'user', content: 'Tell me a story about the grid.' },
        ],
        maxTokens: 32,
        temperature: 0,
      };
      const cpu = await runIn({ GOGRID_LLM_GPU: 'off' }, input);
      const vulkan = await runIn({ GOGRID_LLM_GPU: 'vulkan', GGML_VK_VISIBLE_DEVICES: '0' }, input, ['vulkan']);
      expect(vulkan.text).toBe(cpu.text);
      expect(vulkanText).toBe(cpu.text);
    } finally {
      await llama.dispose();
    }
  });
});
