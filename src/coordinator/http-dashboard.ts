/**
 * The fleet dashboard: a page (src/dashboard, built into dist/dashboard) and
 * the admin routes it reads. The page holds no data; it asks for an admin key
 * and sends it with every call, so nothing is readable without one.
 *
 *   GET /dashboard/            the page (and its script and styles)
 *   GET /v1/fleet              FleetSummary: workers and jobs by state, the last hour's throughput and run times, latest failures
 *   GET /v1/fleet/events       the same as server-sent events, every FEED_INTERVAL_MS, computed once for all viewers
 *   GET /v1/fleet/workers      one page of workers (?offset=&limit=&state=), for fleets of thousands
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { z } from 'zod';
import { parseBody } from '../common/http-errors.js';
import { type FleetSummary, type WorkerInfo, WorkerState } from '../protocol/index.js';
import type { Db } from './store/db.js';
import { jobCounts, jobsPerMinute, listJobs, runTimePercentiles } from './store/index.js';

/** The page's build; the same relative path from src/coordinator (tsx) and dist/coordinator. */
const DASHBOARD_DIR = fileURLToPath(new URL('../../dist/dashboard/', import.meta.url));
/** The files the page is made of, by URL name: a fixed map, so no request names a path. */
const FILES: Record<string, string> = { '': 'index.html', 'dashboard.js': 'dashboard.js', 'dashboard.css': 'dashboard.css' };
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
/** Scripts and styles from this origin only; the page calls only this origin's API. */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const FEED_INTERVAL_MS = 2000;
const HOUR_MS = 3600_000;

const PageQuery = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  state: WorkerState.optional(),
});

export interface DashboardDeps {
  db: Db;
  requireApiKey: onRequestHookHandler;
  /** Every worker's id and state as the API shows it, cheaply (no hardware reports), in the API's order. */
  workerStates(): Promise<{ id: string; state: WorkerInfo['state'] }[]>;
  /** These workers as the API shows them, in the order given. */
  workers(ids: readonly string[]): Promise<WorkerInfo[]>;
}

export function registerDashboardRoutes(app: FastifyInstance, deps: DashboardDeps): void {
  app.get('/dashboard', async (_req, reply) => reply.redirect('/dashboard/'));
  app.get<{ Params: { file: string } }>('/dashboard/:file', async (req, reply) => {
    const file = Object.hasOwn(FILES, req.params.file) ? FILES[req.params.file]! : null;
    if (file === null) return reply.code(404).send({ error: { code: 'GG_ERR_NOT_FOUND', message: `no dashboard file ${req.params.file}` } });
    const body = await readFile(`${DASHBOARD_DIR}${file}`).catch(() => null);
    if (body === null) return reply.code(404).send({ error: { code: 'GG_ERR_NOT_FOUND', message: 'the dashboard is not built: npm run build' } });
    return reply
      .header('content-type', TYPES[file.split('.').pop()!]!)
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'no-cache')
      .send(body);
  });

  const summary = () => fleetSummary(deps);
  const feed = new FleetFeed(summary);
  app.addHook('onClose', async () => feed.close());
  app.register(async (admin) => {
    admin.addHook('onRequest', deps.requireApiKey);
    admin.get('/v1/fleet', async (): Promise<FleetSummary> => summary());
    admin.get('/v1/fleet/workers', async (req) => {
      const q = parseBody(PageQuery, req.query, 'query');
      // States for all (cheap), full rows for one page only.
      const all = (await deps.workerStates()).filter((w) => q.state === undefined || w.state === q.state);
      return { total: all.length, offset: q.offset, workers: await deps.workers(all.slice(q.offset, q.offset + q.limit).map((w) => w.id)) };
    });
    admin.get('/v1/fleet/events', async (req, reply) => {
      reply.hijack();
      reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
      const unsubscribe = feed.subscribe((text) => reply.raw.write(text));
      req.raw.socket.once('close', unsubscribe);
    });
  });
}

async function fleetSummary(deps: DashboardDeps): Promise<FleetSummary> {
  const now = Date.now();
  const hourAgo = new Date(now - HOUR_MS);
  const [workers, jobs, minutes, runTimeMs, failed] = await Promise.all([
    deps.workerStates(),
    jobCounts(deps.db),
    jobsPerMinute(deps.db, hourAgo),
    runTimePercentiles(deps.db, hourAgo),
    listJobs(deps.db, { state: 'failed', limit: 10 }),
  ]);
  const by = (state: WorkerInfo['state']) => workers.filter((w) => w.state === state).length;
  return {
    at: new Date(now).toISOString(),
    workers: { online: by('online'), paused: by('paused'), offline: by('offline'), revoked: by('revoked') },
    jobs,
    throughput: minutes.map((m) => ({ minute: m.minute.toISOString(), succeeded: m.succeeded, failed: m.failed, runMsP50: m.p50 })),
    runTimeMs,
    failures: failed.map((j) => ({ id: j.id, finishedAt: j.finishedAt?.toISOString() ?? null, workerId: j.workerId, code: j.error?.code ?? 'GG_ERR_INTERNAL', message: j.error?.message ?? '' })),
  };
}

/**
 * Server-sent events of the summary: one computation every
 * FEED_INTERVAL_MS for all viewers together, and none while nobody watches.
 */
class FleetFeed {
  private readonly viewers = new Set<(text: string) => void>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly compute: () => Promise<FleetSummary>) {}

  subscribe(send: (text: string) => void): () => void {
    this.viewers.add(send);
    // The first event at once, not an interval later.
    void this.compute().then((s) => send(event(s)), () => undefined);
    this.timer ??= setInterval(() => void this.tick(), FEED_INTERVAL_MS);
    return () => {
      this.viewers.delete(send);
      if (this.viewers.size === 0) this.close();
    };
  }

  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    // A database that does not answer skips a beat; the viewers keep the last one.
    const s = await this.compute().catch(() => null);
    if (s === null) return;
    const text = event(s);
    for (const send of this.viewers) send(text);
  }
}

const event = (s: FleetSummary) => `data: ${JSON.stringify(s)}\n\n`;
