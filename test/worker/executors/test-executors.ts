/**
 * Executors that misbehave on purpose, so tests can show a job process crash,
 * hang or throw without touching the worker; the worker's registry never has
 * them. Job processes started in `TEST_EXECUTORS_ENV` offer them as well
 * (`useTestExecutors()` in helpers.ts sets it for a test file).
 *
 *   spawn(process.execPath, [worker], { env: { ...process.env, ...TEST_EXECUTORS_ENV } });
 *   await pool.run('test-crash', makeJob('test-crash', { how: 'abort' }), opts);
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { ERROR_CODE_LIST, GridError } from '../../../src/protocol/errors.js';
import type { Executor } from '../../../src/worker/executors/types.js';

const always = () => true;

/** Reports progress, then returns its input and context: the smallest real job. */
const echo: Executor = {
  kind: 'test-echo',
  canRun: always,
  async run(job, ctx) {
    ctx.onProgress(0.5, 'halfway');
    return { echo: job.input, threads: ctx.threads, gpuBackends: ctx.gpuBackends, modelPath: ctx.modelPath, pid: process.pid };
  },
};

/**
 * Ends the process without a result: `process.exit(3)` or `process.abort()`
 * (SIGABRT, as a native crash would); with `none`, returns its pid instead,
 * so a test can warm a process of this kind and watch it crash.
 */
const crash: Executor = {
  kind: 'test-crash',
  canRun: always,
  async run(job) {
    const { how } = z.object({ how: z.enum(['exit', 'abort', 'none']) }).parse(job.input);
    if (how === 'abort') process.abort();
    if (how === 'exit') process.exit(3);
    return { pid: process.pid };
  },
};

/** Never finishes; with `ignoreSigterm` it also shrugs off SIGTERM, so only SIGKILL ends it. */
const hang: Executor = {
  kind: 'test-hang',
  canRun: always,
  async run(job, ctx) {
    const { ignoreSigterm } = z.object({ ignoreSigterm: z.boolean().default(false) }).parse(job.input ?? {});
    if (ignoreSigterm) process.on('SIGTERM', () => {});
    ctx.onProgress(0, `hanging, pid ${process.pid}`);
    return new Promise(() => {});
  },
};

/** Throws a GridError with the given code, or a plain Error (a bug) without one. */
const fail: Executor = {
  kind: 'test-throw',
  canRun: always,
  async run(job) {
    const { code, message } = z.object({ code: z.enum(ERROR_CODE_LIST).optional(), message: z.string() }).parse(job.input);
    throw code ? new GridError(code, message) : new Error(message);
  },
};

/** Breaks the IPC contract: a progress report out of range, sent around the schema-typed sender. */
const rogue: Executor = {
  kind: 'test-rogue',
  canRun: always,
  async run(job) {
    process.send?.({ type: 'progress', jobId: job.jobId, progress: 7 });
    return new Promise(() => {});
  },
};

/**
 * Keeps a core busy until it has used `cpuMs` of CPU time, then returns it
 * with `tag`: time stopped (SIGSTOP) does not count, so a suspended job
 * finishes later by just that much. Yields every few ms, so it still hears
 * its channel close.
 */
const spin: Executor = {
  kind: 'test-spin',
  canRun: always,
  async run(job, ctx) {
    // `hold`: never yield the thread, as a runtime's native call does.
    const { cpuMs, tag, hold } = z.object({ cpuMs: z.number().int().min(0).max(3_600_000), tag: z.string().default(''), hold: z.boolean().default(false) }).parse(job.input);
    const start = process.cpuUsage();
    const used = () => {
      const { user, system } = process.cpuUsage(start);
      return (user + system) / 1000;
    };
    let reported = 0;
    ctx.onProgress(0, `spinning, pid ${process.pid}`);
    await new Promise((resolve) => setImmediate(resolve));
    if (hold) while (used() < cpuMs);
    for (let ms = used(); ms < cpuMs; ms = used()) {
      const until = performance.now() + 5;
      while (performance.now() < until);
      if (ms - reported >= 100) {
        reported = ms;
        ctx.onProgress(ms / cpuMs);
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { tag, cpuMs: Math.round(used()), pid: process.pid };
  },
};

/** What `test-leak` never gives back. */
const leaked: Buffer[] = [];

/** Keeps `mib` MiB for good on every job (written, so it counts in RSS): the leak that recycling a process bounds. */
const leak: Executor = {
  kind: 'test-leak',
  canRun: always,
  async run(job) {
    const { mib } = z.object({ mib: z.number().int().min(0).max(256) }).parse(job.input);
    leaked.push(Buffer.alloc(mib * 2 ** 20, 1));
    return { pid: process.pid, rss: process.memoryUsage.rss() };
  },
};

/**
 * Shared like the LLM executor (several jobs at once in one process): says
 * its pid in a progress line, then returns after `ms`, or fails when its job
 * is canceled; `stubborn` ignores the cancel, as a runtime stuck in native
 * code would.
 */
const sharedWait: Executor = {
  kind: 'test-shared',
  shared: true,
  canRun: always,
  async run(job, ctx) {
    const { ms, stubborn } = z.object({ ms: z.number().int().min(0).max(600_000).default(600_000), stubborn: z.boolean().default(false) }).parse(job.input ?? {});
    ctx.onProgress(0, `pid ${process.pid}`);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      if (stubborn) return;
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(new Error('aborted'));
      });
    });
    return { pid: process.pid, slots: ctx.slots };
  },
};

/** A runtime that cannot load here, as onnxruntime's binding on a Windows image without the Visual C++ DLLs. */
const unloadable: Executor = {
  kind: 'test-unloadable',
  canRun: always,
  async load() {
    throw new Error('onnxruntime_binding.node: The specified module could not be found (MSVCP140.dll)');
  },
  async run() {
    throw new Error('never run: its runtime does not load');
  },
};

/** A runtime whose library crashes the process that loads it. */
const crashesOnLoad: Executor = {
  kind: 'test-crashes-on-load',
  canRun: always,
  async load() {
    process.abort();
  },
  async run() {
    throw new Error('never run: its runtime crashes on load');
  },
};

/** GPU backends as a driver reports them: one works, one fails with a message holding control characters and going on and on. */
const gpus: Executor = {
  kind: 'test-gpus',
  canRun: always,
  async probeBackends() {
    return [
      { backend: 'webgpu', ok: true, detail: null },
      { backend: 'cuda', ok: false, detail: `driver\x1b[31m said no\0${'.'.repeat(1000)}` },
    ];
  },
  async run() {
    throw new Error('never run');
  },
};

/** A GPU driver that crashes the process trying it. */
const gpuCrashes: Executor = {
  kind: 'test-gpu-crashes',
  canRun: always,
  async probeBackends() {
    process.abort();
  },
  async run() {
    throw new Error('never run');
  },
};

export const TEST_EXECUTORS: readonly Executor[] = [echo, crash, hang, fail, rogue, leak, spin, sharedWait, unloadable, crashesOnLoad, gpus, gpuCrashes];

const require = createRequire(import.meta.url);

/**
 * Every node process started in this environment preloads the test
 * executors into its registry (test-executors-preload.ts), tsx first to load
 * them from source. Forked processes inherit it: a worker started in it
 * passes it on to its job processes.
 */
export const TEST_EXECUTORS_ENV = {
  NODE_OPTIONS: ['tsx', './test-executors-preload.ts'].map((m) => `--import ${pathToFileURL(require.resolve(m)).href}`).join(' '),
  // The preload fills the sources' registry, so the job processes run from the sources too.
  GOGRID_CHILDREN_FROM_DIST: '0',
};

/** Puts TEST_EXECUTORS_ENV into this process's environment (the job processes it forks inherit it); returns what undoes it. */
export function applyTestExecutorsEnv(): () => void {
  const before = { NODE_OPTIONS: process.env['NODE_OPTIONS'], GOGRID_CHILDREN_FROM_DIST: process.env['GOGRID_CHILDREN_FROM_DIST'] };
  process.env['NODE_OPTIONS'] = `${before.NODE_OPTIONS ?? ''} ${TEST_EXECUTORS_ENV.NODE_OPTIONS}`.trim();
  process.env['GOGRID_CHILDREN_FROM_DIST'] = TEST_EXECUTORS_ENV.GOGRID_CHILDREN_FROM_DIST;
  return () => {
    for (const [key, value] of Object.entries(before)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}
