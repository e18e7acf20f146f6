/**
 * Entry point of the LLM runtime probe, forked by llm-probe.ts; never
 * imported. Loads llama.cpp the way a job process would (the same
 * GOGRID_LLM_GPU, prebuilt binaries only), sends what it found over IPC and
 * exits. A process of its own: the worker never loads a native runtime, and a
 * driver that crashes on load takes only this down.
 */
import { getLlama, LlamaLogLevel } from 'node-llama-cpp';
import type { LlmRuntimeReport } from '../../protocol/messages.js';
import { gpuSetting } from './llm.js';

const MiB = 2 ** 20;

const llama = await getLlama({ gpu: gpuSetting(), build: 'never', logLevel: LlamaLogLevel.error });
// A GPU build loads even where it finds no device (Vulkan without one): then it offloads nothing.
const devices = llama.gpu !== false && llama.supportsGpuOffloading ? await llama.getGpuDeviceNames() : [];
const vram = devices.length > 0 ? await llama.getVramState() : null;
const report: LlmRuntimeReport = {
  gpu: devices.length > 0 && llama.gpu !== false ? llama.gpu : null,
  devices: devices.map((d) => d.slice(0, 256)),
  vramMiB: vram ? Math.round(vram.total / MiB) : null,
  freeVramMiB: vram ? Math.round(vram.free / MiB) : null,
};
process.send!(report, () => process.exit(0));
