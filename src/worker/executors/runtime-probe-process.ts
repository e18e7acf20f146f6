/**
 * Entry point of the runtime probe, forked by runtime-probe.ts; never
 * imported. Loads the native runtime of each job kind named in its argument
 * the way a job process would (`Executor.load`), sends which failed and why
 * over IPC, and exits. A process of its own: the worker never loads a native
 * runtime, and a library that crashes on load takes only this down.
 */
import { EXECUTORS } from './registry.js';

const kinds: unknown = JSON.parse(process.argv[2] ?? '[]');
const failures: Record<string, string> = {};
for (const kind of Array.isArray(kinds) ? kinds.filter((k): k is string => typeof k === 'string') : []) {
  try {
    await EXECUTORS.get(kind)?.load?.();
  } catch (e) {
    failures[kind] = (e instanceof Error ? e.message : String(e)).slice(0, 2000);
  }
}
process.send!(failures, () => process.exit(0));
