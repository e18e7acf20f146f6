/**
 * A job the runner refuses at once (no free slot, no executor for its kind)
 * goes back with the registry's word on whether another attempt may help:
 * the coordinator requeues or fails the job by that flag.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type WorkerMessageInput } from '../../src/protocol/index.js';
import { JobRunner } from '../../src/worker/job-runner.js';
import { makeJob } from './executors/helpers.js';

function runner(opts: { slots: number; canRun: boolean }): { runner: JobRunner; sent: WorkerMessageInput[] } {
  const sent: WorkerMessageInput[] = [];
  const r = new JobRunner({
    slots: opts.slots,
    threads: 1,
    models: { acquire: (_ref, signal) => new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(signal.reason as Error))) },
    run: () => new Promise(() => {}),
    canRun: () => opts.canRun,
    transfer: { fetchInput: () => new Promise(() => {}), postResult: () => new Promise(() => {}) },
    logger: pino({ level: 'silent' }),
  });
  r.attach(async (msg) => void sent.push(msg));
  return { runner: r, sent };
}

describe('JobRunner refusing a job', () => {
  it.each([
    ['GG_ERR_EXECUTOR_UNAVAILABLE', { slots: 1, canRun: false }, 1],
    ['GG_ERR_WORKER_BUSY', { slots: 1, canRun: true }, 2],
  ] as const)('sends %s with the registry’s retryable', async (code, opts, assigned) => {
    const { runner: r, sent } = runner(opts);
    const jobs = Array.from({ length: assigned }, (_, i) => makeJob('test-echo', { i }));
    jobs.forEach((job, i) => r.accept({ job, leaseId: `lease-${i}` }));
    await expect.poll(() => sent.find((m) => m.type === 'job.result')).toBeDefined();
    const result = sent.find((m) => m.type === 'job.result');
    expect(result).toMatchObject({ jobId: jobs.at(-1)!.jobId, outcome: { ok: false, error: { code, retryable: ERROR_CODES[code].retryable } } });
    await r.stopAll('test over');
  });
});
