/**
 * TEST ONLY. Executors that misbehave on purpose, so tests can show a job
 * process crash, hang or throw without touching the worker. job-process.ts
 * loads this module only when GOGRID_TEST_EXECUTORS=1; the worker's registry
 * (index.ts) never lists these kinds.
 *
 *   GOGRID_TEST_EXECUTORS=1 … runJob('test-crash', { …job, input: { how: 'abort' } }, opts)
 */
import { z } from 'zod';
import { ERROR_CODE_LIST, GridError } from '../../protocol/errors.js';
import type { Executor } from './types.js';

const always = () => true;

/** Reports progress, then returns its input and context: the smallest real job. */
const echo: Executor = {
  kind: 'test-echo',
  canRun: always,
  async run(job, ctx) {
    ctx.onProgress(0.5, 'halfway');
    return { echo: job.input, threads: ctx.threads, modelPath: ctx.modelPath, pid: process.pid };
  },
};

/** Ends the process without a result: `process.exit(3)` or `process.abort()` (SIGABRT, as a native crash would). */
const crash: Executor = {
  kind: 'test-crash',
  canRun: always,
  async run(job) {
    const { how } = z.object({ how: z.enum(['exit', 'abort']) }).parse(job.input);
    if (how === 'abort') process.abort();
    process.exit(3);
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

export const TEST_EXECUTORS: readonly Executor[] = [echo, crash, hang, fail, rogue];
