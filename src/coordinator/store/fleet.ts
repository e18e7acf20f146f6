/**
 * What the fleet dashboard reads of the jobs table, in few statements: counts
 * by state, the last hour's throughput per minute, its run-time percentiles,
 * and the latest failures.
 *
 *   const counts = await jobCounts(db);                 // { queued: 3, running: 1, … }
 *   const minutes = await jobsPerMinute(db, hourAgo);   // [{ minute, succeeded, failed }, …]
 */
import { z } from 'zod';
import { JOB_STATES, type JobState } from '../../protocol/index.js';
import type { Db } from './db.js';

const CountRow = z.object({ state: z.enum(JOB_STATES), n: z.coerce.number() });

export async function jobCounts(db: Db): Promise<Record<JobState, number>> {
  const counts = Object.fromEntries(JOB_STATES.map((s) => [s, 0])) as Record<JobState, number>;
  for (const r of await db.query('SELECT state, count(*) AS n FROM jobs GROUP BY state')) {
    const row = CountRow.parse(r);
    counts[row.state] = row.n;
  }
  return counts;
}

const MinuteRow = z.object({ minute: z.date(), succeeded: z.coerce.number(), failed: z.coerce.number(), p50: z.coerce.number().nullable() });

/** Jobs that finished since `since`, per minute, oldest first, with the median run time (ms) of those that succeeded. */
export async function jobsPerMinute(db: Db, since: Date): Promise<z.output<typeof MinuteRow>[]> {
  const r = await db.query(
    `SELECT date_trunc('minute', finished_at) AS minute,
            count(*) FILTER (WHERE state = 'succeeded') AS succeeded,
            count(*) FILTER (WHERE state = 'failed') AS failed,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at) * 1000)
              FILTER (WHERE state = 'succeeded' AND started_at IS NOT NULL) AS p50
     FROM jobs WHERE finished_at >= $1 AND state IN ('succeeded', 'failed')
     GROUP BY 1 ORDER BY 1`,
    [since],
  );
  return r.map((x) => MinuteRow.parse(x));
}

const PercentileRow = z.object({ p50: z.coerce.number().nullable(), p95: z.coerce.number().nullable(), n: z.coerce.number() });

/** p50 and p95 of the run time (start to finish, ms) of the jobs that succeeded since `since`. */
export async function runTimePercentiles(db: Db, since: Date): Promise<{ p50: number | null; p95: number | null; jobs: number }> {
  const [r] = await db.query(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95, count(*) AS n
     FROM (SELECT extract(epoch FROM finished_at - started_at) * 1000 AS ms FROM jobs
           WHERE state = 'succeeded' AND finished_at >= $1 AND started_at IS NOT NULL) t`,
    [since],
  );
  const row = PercentileRow.parse(r);
  return { p50: row.p50, p95: row.p95, jobs: row.n };
}
