/**
 * Forks one of this folder's probe entry points and takes its one answer:
 * the probes (llm-probe.ts, runtime-probe.ts, gpu-probe.ts) load native runtimes in a child
 * so that a library that hangs or crashes on load takes only that child down.
 *
 *   const raw = await askProbe('runtime-probe-process', ['["onnx"]'], 'the runtime probe', 30_000);
 *
 * Rejects, naming `what`, when the child answers nothing within `timeoutMs`
 * (it is killed), or ends or fails to start before answering (with the end of
 * its stderr).
 */
import { fork } from 'node:child_process';
import { entryPoint } from './entry-point.js';

export function askProbe(name: 'llm-probe-process' | 'runtime-probe-process' | 'gpu-probe-process', args: string[], what: string, timeoutMs: number): Promise<unknown> {
  const entry = entryPoint(name);
  return new Promise((resolve, reject) => {
    const child = fork(entry.file, args, { execArgv: entry.execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'json' });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-1000)));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${what} gave no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('message', (raw) => {
      clearTimeout(timer);
      resolve(raw);
    });
    // 'close', not 'exit': a child that answers and exits at once can be reported gone before its
    // answer is read ('exit' may come before the last 'message'); 'close' comes after the IPC
    // channel and stderr are drained. Starting from dist/ the probes answer fast enough to lose that race.
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      // After its message this settles nothing; before it, the child died (a runtime that crashes on load).
      reject(new Error(`${what} ended without an answer (${signal ?? `code ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`));
    });
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/**
 * A probe's answer, kept per `key` for the life of the process: whether a
 * library loads or a device answers does not change while the worker runs. A
 * probe that fails is not kept (a timeout on a busy machine says nothing of
 * it; the next start asks again): `fallback` stands for it, with the reason
 * to `onError`. Never rejects.
 */
export function keptAnswer<T>(kept: Map<string, Promise<T>>, key: string, ask: () => Promise<T>, fallback: T, onError: (why: string) => void): Promise<T> {
  let answer = kept.get(key);
  if (!answer) {
    answer = ask().catch((e: unknown) => {
      kept.delete(key);
      onError(e instanceof Error ? e.message : String(e));
      return fallback;
    });
    kept.set(key, answer);
  }
  return answer;
}
