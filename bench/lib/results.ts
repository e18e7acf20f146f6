/**
 * Where a suite's results go (bench/results/, cited by BENCHMARKS.md) and how
 * its entry reports progress and failure.
 *
 *   const base = resultBase('jobs', startedAt, quick);   // bench/results/jobs-2026-…Z-quick
 *   await writeResult(`${base}.json`, record);           // a profile may go to `${base}.cpuprofile`
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from './machine.js';

const RESULTS = join(ROOT, 'bench', 'results');

/** The path, without extension, of a run's files: suite and start time, `-quick` for a smoke run (not comparable). */
export function resultBase(suite: string, startedAt: Date, quick = false): string {
  return join(RESULTS, `${suite}-${startedAt.toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}`);
}

export async function writeResult(file: string, record: unknown): Promise<void> {
  await mkdir(RESULTS, { recursive: true });
  await writeFile(file, `${JSON.stringify(record, null, 2)}\n`);
}

/** Progress lines on stderr, each stamped with the seconds since this call. */
export function progressLog(): (line: string) => void {
  const t0 = Date.now();
  return (line) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
}

/** Runs a suite's entry point: a failure prints its stack and exits 1, so `npm run bench` stops there. */
export function runMain(suite: string, main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    process.stderr.write(`${suite} benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
