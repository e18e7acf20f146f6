/**
 * Which GPU backends each job kind's runtime can use on this machine, tried
 * once per worker process in a short-lived child (gpu-probe-process.ts) by
 * running a tiny model on each: the answer is what the runtime did, not what
 * a vendor name suggests. A new driver counts from the next start.
 *
 *   const found = await probeGpuBackends(['onnx'], (why) => log.warn(why));
 *   // [{ kind: 'onnx', backend: 'webgpu', ok: true, detail: null },
 *   //  { kind: 'onnx', backend: 'cuda', ok: false, detail: 'Failed to load shared library' }]
 *
 * Never rejects: a probe that crashes or hangs finds nothing (every kind
 * runs on the CPU), with the reason given to `onError`.
 */
import { z } from 'zod';
import { BackendProbe } from '../../protocol/messages.js';
import { firstZodProblem } from '../../protocol/zod-problems.js';
import { askProbe, keptAnswer } from './probe-child.js';
import { EXECUTORS } from './registry.js';

/** A first CUDA context or WebGPU shader compile takes seconds on a cold machine; past this the probe has failed. */
const PROBE_TIMEOUT_MS = 30_000;

const probed = new Map<string, Promise<BackendProbe[]>>();

export function probeGpuBackends(asked: readonly string[], onError: (why: string) => void = () => {}): Promise<BackendProbe[]> {
  const kinds = asked.filter((k) => EXECUTORS.get(k)?.probeBackends !== undefined);
  if (kinds.length === 0) return Promise.resolve([]);
  return keptAnswer(probed, JSON.stringify(kinds), () => run(kinds), [], onError);
}

async function run(kinds: readonly string[]): Promise<BackendProbe[]> {
  const raw = await askProbe('gpu-probe-process', [JSON.stringify(kinds)], 'the GPU backend probe', PROBE_TIMEOUT_MS);
  const parsed = z.array(BackendProbe).safeParse(raw);
  if (!parsed.success) throw new Error(`the GPU backend probe answered nonsense: ${firstZodProblem(parsed.error)}`);
  return parsed.data.filter((p) => kinds.includes(p.kind));
}
