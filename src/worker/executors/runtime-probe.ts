/**
 * Which job kinds' native runtimes load on this machine, asked once at worker
 * start in a short-lived child process (runtime-probe-process.ts): a kind is
 * advertised to the coordinator only if a process could load its runtime.
 * The platform alone says too little: on a clean Windows image
 * onnxruntime's binding needs the Visual C++ runtime DLLs, and without them
 * every ONNX job sent there would fail.
 *
 *   const failed = await unloadableKinds(['onnx', 'llm']);   // Map { 'onnx' => 'The specified module could not be found. …' }
 *
 * Only executors with a `load` step are probed; the others count as loadable.
 */
import { z } from 'zod';
import { askProbe } from './probe-child.js';
import { EXECUTORS } from './registry.js';

/** Loading a runtime from a cold disk can take seconds; past this every kind asked for counts as failed. */
const PROBE_TIMEOUT_MS = 30_000;

const Failures = z.record(z.string(), z.string());

/**
 * Answers per process: whether a library loads does not change while the
 * worker runs, and a worker the host restarts (a new coordinator address)
 * need not fork the probe again. A new driver or DLL counts from the next start.
 */
const probed = new Map<string, Promise<Map<string, string>>>();

/** The kinds whose runtime did not load, each with why. Never rejects: a probe that could not run fails every kind asked for. */
export function unloadableKinds(asked: readonly string[]): Promise<Map<string, string>> {
  const kinds = asked.filter((k) => EXECUTORS.get(k)?.load !== undefined);
  if (kinds.length === 0) return Promise.resolve(new Map());
  const key = JSON.stringify(kinds);
  let answer = probed.get(key);
  if (!answer) {
    answer = probe(kinds).then(({ failures, answered }) => {
      // A probe that did not answer (a timeout on a busy machine) is asked again at the next start.
      if (!answered) probed.delete(key);
      return failures;
    });
    probed.set(key, answer);
  }
  return answer;
}

async function probe(kinds: readonly string[]): Promise<{ failures: Map<string, string>; answered: boolean }> {
  const allFailed = (why: string) => ({ failures: new Map(kinds.map((k) => [k, why])), answered: false });
  let raw: unknown;
  try {
    raw = await askProbe('runtime-probe-process', [JSON.stringify(kinds)], 'the runtime probe', PROBE_TIMEOUT_MS);
  } catch (e) {
    return allFailed(e instanceof Error ? e.message : String(e));
  }
  const parsed = Failures.safeParse(raw);
  if (!parsed.success) return allFailed('the runtime probe answered nonsense');
  return { failures: new Map(Object.entries(parsed.data).filter(([k]) => kinds.includes(k))), answered: true };
}
