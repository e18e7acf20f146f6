/**
 * The short form of the fault-injection run (test/fault/harness.ts) that CI
 * runs on every change: about 40 s of kill -9s, SIGTERMs and SIGSTOPs of a
 * real coordinator and two workers, lost UDP and a full coordinator disk,
 * while a client submits, then the invariants. A failure prints its seed: `GOGRID_FAULT_SEED=N npm test -- test/fault`
 * replays the same schedule; `npm run soak` runs the long form.
 */
import { afterAll, expect, it } from 'vitest';
import { removeTempDirs } from '../helpers/grid.js';
import { runFaults } from './harness.js';

afterAll(removeTempDirs);

const seed = Number(process.env['GOGRID_FAULT_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

it(`keeps every acknowledged job through kill -9s, SIGTERMs, stalls, lost UDP and a full disk (seed ${seed})`, async () => {
  const report = await runFaults({ seed, faultMs: 40_000 });
  expect(report.violations, `seed ${seed}: ${JSON.stringify(report)}`).toEqual([]);
  // The run did what it says: faults of every kind happened, and jobs got through them.
  expect(report.acknowledged).toBeGreaterThan(20);
  expect(Object.values(report.faults).reduce((a, b) => a + b, 0)).toBeGreaterThan(5);
}, 300_000);
