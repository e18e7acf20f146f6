/**
 * Entry point of the GPU backend probe, forked by gpu-probe.ts; never
 * imported. Asks each job kind named in its argument to try its runtime's GPU
 * backends (`Executor.probeBackends`), sends what each found over IPC, and
 * exits. A process of its own, apart from the runtime probe: a GPU driver
 * that crashes or hangs here takes only the GPU backends with it, and the
 * kind still runs on the CPU.
 */
import type { BackendProbe } from '../../protocol/messages.js';
import { cleanText } from '../../protocol/text.js';
import { EXECUTORS } from './registry.js';

const kinds: unknown = JSON.parse(process.argv[2] ?? '[]');
const found: BackendProbe[] = [];
for (const kind of Array.isArray(kinds) ? kinds.filter((k): k is string => typeof k === 'string') : []) {
  try {
    for (const trial of (await EXECUTORS.get(kind)?.probeBackends?.()) ?? []) found.push({ kind, ...trial, detail: trial.detail === null ? null : cleanText(trial.detail).slice(0, 500) });
  } catch {
    // The runtime itself did not load: the runtime probe reports that for the kind as a whole.
  }
}
process.send!(found, () => process.exit(0));
