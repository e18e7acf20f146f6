/**
 * The long form of the fault-injection run (test/fault/harness.ts): rounds of
 * kill -9s, SIGTERMs and stalls against a real coordinator and workers, each
 * round's invariants checked, until the time is up or one breaks. Writes
 * bench/results/soak-<ISO date>.json and prints each round; the figures of the
 * last long soak are in README.md (Hardening).
 *
 *   npm run soak                                  # 30 minutes, rounds of 3 minutes, embedded database
 *   npm run soak -- --minutes 5 --round 60        # shorter
 *   npm run soak -- --database postgres://…       # on PostgreSQL
 *   npm run soak -- --seed 12345                  # replay the first round's schedule
 */
import { parseArgs } from 'node:util';
import { resultBase, writeResult } from '../bench/lib/results.js';
import { runFaults, type FaultReport } from '../test/fault/harness.js';
import { removeTempDirs } from '../test/helpers/grid.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    round: { type: 'string', default: '180' },
    workers: { type: 'string', default: '2' },
    seed: { type: 'string' },
    database: { type: 'string' },
  },
});
const until = Date.now() + Number(values.minutes) * 60_000;
let seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);
const rounds: FaultReport[] = [];
try {
  while (Date.now() < until) {
    const report = await runFaults({
      seed,
      faultMs: Number(values.round) * 1000,
      workers: Number(values.workers),
      ...(values.database ? { databaseUrl: values.database } : {}),
      log: (line) => console.log(`  [seed ${seed}] ${line}`),
    });
    rounds.push(report);
    console.log(
      `round ${rounds.length} (seed ${seed}): ${report.acknowledged} jobs acknowledged, ${report.succeeded} succeeded, faults ${JSON.stringify(report.faults)}, ${report.violations.length} violations`,
    );
    for (const v of report.violations) console.log(`  violation: ${v}`);
    if (report.violations.length > 0) break;
    seed = (seed + 1) >>> 0;
  }
} finally {
  await removeTempDirs();
}
const total = (f: (r: FaultReport) => number) => rounds.reduce((n, r) => n + f(r), 0);
const summary = {
  rounds: rounds.length,
  minutes: Math.round(total((r) => r.elapsedMs) / 6000) / 10,
  faults: total((r) => Object.values(r.faults).reduce((a, b) => a + b, 0)),
  acknowledged: total((r) => r.acknowledged),
  succeeded: total((r) => r.succeeded),
  violations: total((r) => r.violations.length),
};
console.log(`soak: ${JSON.stringify(summary)}`);
await writeResult(`${resultBase('soak', new Date())}.json`, { summary, rounds });
process.exit(summary.violations === 0 ? 0 : 1);
