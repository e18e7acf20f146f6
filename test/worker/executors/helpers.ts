/**
 * Shared by the executor tests: job specs, one pool for tests that need a job
 * run rather than a pool of their own, a logger that remembers every job
 * process it saw start, and a check that none of them is still alive.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { JobSpec } from '../../../src/protocol/messages.js';
import { JobProcessPool, type JobLogger, type RunJobOptions } from '../../../src/worker/executors/index.js';
import { writeOnnxFixtures, type OnnxFixtures } from '../../fixtures/make-onnx.js';
import { afterAll, beforeAll, expect } from 'vitest';
import { GridError } from '../../../src/protocol/errors.js';
import { applyTestExecutorsEnv } from './test-executors.js';

let seq = 0;

export function makeJob(kind: string, input: unknown, overrides: Partial<JobSpec> = {}): JobSpec {
  seq += 1;
  return {
    jobId: `job-${process.pid}-${seq}`,
    kind,
    model: { sha256: '0'.repeat(64), size: 0, name: 'fixture' },
    input,
    inputByReference: false,
    requirements: {},
    timeoutMs: 30_000,
    attempt: 1,
    ...overrides,
  };
}

const shared = new JobProcessPool();

/** Runs a job on the shared pool: a warm process of its kind when one is idle. */
export function runJob(kind: string, job: JobSpec, opts: RunJobOptions): Promise<unknown> {
  return shared.run(kind, job, opts);
}

/** Every process of the shared pool exits: idle ones now, running ones as their jobs end. */
export function closeJobProcesses(): Promise<void> {
  return shared.close();
}

/**
 * The test-only executors (test-spin, test-hang, …) are offered while this
 * file's tests run. Job processes run at normal priority throughout the
 * suite (vitest.config.ts); priority.test.ts covers low priority.
 */
export function useTestExecutors(): void {
  let restore = () => undefined as void;
  beforeAll(() => {
    restore = applyTestExecutorsEnv();
  });
  afterAll(() => restore());
}

/** A JobLogger that records the pid of every job process from its `started` line. */
export function pidRecorder(): JobLogger & { pids: number[]; lines: string[] } {
  const pids: number[] = [];
  const lines: string[] = [];
  const record = (msg: unknown) => {
    const line = String(msg);
    lines.push(line);
    const m = /^\[job \S+ pid (\d+)\] started$/.exec(line);
    if (m) pids.push(Number(m[1]));
  };
  return { pids, lines, debug: record, info: record, warn: record };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Writes the ONNX fixtures to a fresh temp dir; `dispose` removes it. */
export function onnxFixtures(): OnnxFixtures & { dir: string; dispose(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'gogrid-onnx-'));
  return { ...writeOnnxFixtures(dir), dir, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The GridError a job's promise rejects with; fails the test if it succeeds or rejects otherwise. */
export async function rejection(p: Promise<unknown>): Promise<GridError> {
  const e = await p.then(
    () => expect.fail('the job succeeded'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GridError);
  return e as GridError;
}
