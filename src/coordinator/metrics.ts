/**
 * The coordinator's Prometheus metrics (`GET /metrics`, an admin API key):
 * one registry per coordinator, so two in one process (tests, `gogrid local`)
 * do not mix their counts.
 *
 *   const metrics = new CoordinatorMetrics({ db, sessions, connections: () => quic.connectionCount() });
 *   metrics.watch(dispatcher);                 // job outcomes, queue wait and run time
 *   metrics.refused('https_per_ip_cap');      // a refusal, by reason
 *   reply.type(metrics.contentType).send(await metrics.text());
 *
 * Counts that the database holds (workers, jobs not yet final) are read at
 * scrape time, one grouped query each, so they are right on every instance
 * that shares the database; what happens in this instance (jobs it saw end,
 * refusals, its connections) is counted here.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { z } from 'zod';
import type { Db } from './store/db.js';
import type { Dispatcher } from './dispatcher.js';
import type { JobRow } from './store/index.js';

/** Why a connection or request was refused; the `reason` label's values. */
export type RefusalReason = 'https_per_ip_connections' | 'https_per_ip_rate' | 'https_first_request_timeout' | 'quic_per_ip_rate' | 'wrong_secrets' | 'max_connections';

/** From a tenth of a second to a day: inference jobs and batch jobs alike. */
const SECONDS_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];

const CountRow = z.object({ state: z.string(), n: z.coerce.number() });

export class CoordinatorMetrics {
  readonly registry = new Registry();
  private readonly finished: Counter<'state' | 'kind'>;
  private readonly queueWait: Histogram<'kind'>;
  private readonly runTime: Histogram<'kind'>;
  private readonly refusals: Counter<'reason'>;

  constructor(sources: { db: Db; onlineWorkers: () => number; connections: () => number }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'gogrid_coordinator_' });
    // prom-client names three gauges `…_total`, which promtool's lint refuses (a counter's suffix); the rest stay.
    for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total']) this.registry.removeSingleMetric(`gogrid_coordinator_nodejs_${name}`);
    this.finished = new Counter({ name: 'gogrid_jobs_finished_total', help: 'Jobs this instance saw reach a final state, by state and kind.', labelNames: ['state', 'kind'], registers });
    this.queueWait = new Histogram({
      name: 'gogrid_job_queue_wait_seconds',
      help: 'Time from submit to the start of the attempt that ended the job, by kind.',
      labelNames: ['kind'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.runTime = new Histogram({ name: 'gogrid_job_run_seconds', help: 'Run time of the attempt that ended the job, by kind.', labelNames: ['kind'], buckets: SECONDS_BUCKETS, registers });
    this.refusals = new Counter({ name: 'gogrid_refusals_total', help: 'Connections and requests this instance refused, by reason.', labelNames: ['reason'], registers });
    new Gauge({
      name: 'gogrid_connections',
      help: 'QUIC connections open to this instance.',
      registers,
      collect() {
        this.set(sources.connections());
      },
    });
    new Gauge({
      name: 'gogrid_workers_online',
      help: 'Workers with a session on this instance.',
      registers,
      collect() {
        this.set(sources.onlineWorkers());
      },
    });
    new Gauge({
      name: 'gogrid_workers',
      help: 'Enrolled workers by stored state (all instances).',
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        for (const r of await counts(sources.db, 'SELECT state, count(*) AS n FROM workers GROUP BY state')) this.set({ state: r.state }, r.n);
      },
    });
    new Gauge({
      name: 'gogrid_jobs',
      help: 'Jobs not yet final, by state (all instances): the queue and what runs.',
      labelNames: ['state'],
      registers,
      async collect() {
        this.reset();
        for (const state of ['queued', 'leased', 'running']) this.set({ state }, 0);
        const rows = await counts(sources.db, "SELECT state, count(*) AS n FROM jobs WHERE state IN ('queued', 'leased', 'running') GROUP BY state");
        for (const r of rows) this.set({ state: r.state }, r.n);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  refused(reason: RefusalReason): void {
    this.refusals.inc({ reason });
  }

  /** Counts every job `dispatcher` ends from now on. */
  watch(dispatcher: Dispatcher): void {
    dispatcher.on('finished', (row) => this.jobEnded(row));
  }

  private jobEnded(row: JobRow): void {
    this.finished.inc({ state: row.state, kind: row.kind });
    if (row.startedAt === null) return;
    this.queueWait.observe({ kind: row.kind }, Math.max(0, row.startedAt.getTime() - row.submittedAt.getTime()) / 1000);
    if (row.finishedAt !== null) this.runTime.observe({ kind: row.kind }, Math.max(0, row.finishedAt.getTime() - row.startedAt.getTime()) / 1000);
  }
}

async function counts(db: Db, sql: string): Promise<z.infer<typeof CountRow>[]> {
  return z.array(CountRow).parse(await db.query(sql));
}
