/**
 * The start-up probe asks llama.cpp itself (node-llama-cpp's prebuilt
 * binaries, in a child process) which GPU backend it can use: none with
 * GOGRID_LLM_GPU=off, Vulkan on Mesa's software device (lavapipe, which
 * llama.cpp uses only when GGML_VK_VISIBLE_DEVICES names it), and a clear
 * failure, not a crash, for a setting it cannot take.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { needLavapipe } from '../../helpers/lavapipe.js';
import { LlmRuntimeReport } from '../../../src/protocol/messages.js';
import { probeLlmRuntime } from '../../../src/worker/executors/llm-probe.js';

const saved = { ...process.env };
afterEach(() => {
  for (const k of ['GOGRID_LLM_GPU', 'GGML_VK_VISIBLE_DEVICES']) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

describe('the llama.cpp runtime probe', () => {
  it('reports the CPU only with GOGRID_LLM_GPU=off, and answers again from memory', async () => {
    process.env['GOGRID_LLM_GPU'] = 'off';
    const report = await probeLlmRuntime();
    expect(report).toEqual({ gpu: null, devices: [], vramMiB: null, freeVramMiB: null });
    const t0 = performance.now();
    expect(await probeLlmRuntime()).toBe(report);
    expect(performance.now() - t0).toBeLessThan(50);
  });

  it('reports what the default (auto) finds on this machine, in the schema', async () => {
    delete process.env['GOGRID_LLM_GPU'];
    delete process.env['GGML_VK_VISIBLE_DEVICES'];
    const report = await probeLlmRuntime();
    expect(LlmRuntimeReport.parse(report)).toEqual(report);
    // A GPU backend is reported only with a device to offload to.
    if (report!.gpu) expect(report!.devices.length).toBeGreaterThan(0);
    else expect(report!.devices).toEqual([]);
  });

  it("finds Mesa's software Vulkan device, with its memory, when llama.cpp is let see it", { timeout: 60_000 }, async (ctx) => {
    needLavapipe(ctx);
    process.env['GOGRID_LLM_GPU'] = 'vulkan';
    process.env['GGML_VK_VISIBLE_DEVICES'] = '0';
    const report = await probeLlmRuntime();
    expect(report).toMatchObject({ gpu: 'vulkan', devices: [expect.stringMatching(/llvmpipe/)] });
    expect(report!.vramMiB).toBeGreaterThan(0);
    expect(report!.freeVramMiB).toBeLessThanOrEqual(report!.vramMiB!);
  });

  it('fails cleanly, with the reason, on a setting llama.cpp cannot take', async () => {
    process.env['GOGRID_LLM_GPU'] = 'rocm';
    const reasons: string[] = [];
    expect(await probeLlmRuntime((why) => reasons.push(why))).toBeNull();
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/ended without an answer \(code 1\).*GOGRID_LLM_GPU is "rocm"/s);
  });
});
