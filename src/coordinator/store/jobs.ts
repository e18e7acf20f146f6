/**
 * Jobs and their history: the one place a job's state changes. Each change is
 * a single conditional statement, so two coordinator instances (or a late
 * message) can never move a job twice, and each writes a `job_events` row.
 *
 *   queued ─lease→ leased ─start→ running ─result→ succeeded | failed
 *      ↑___________ release (worker gone, lease expired, retryable error) ___|
 *   queued | leased | running ─cancel→ canceled
 *
 *   const [job] = await leaseJobs(db, [{ jobId, leaseId, workerId, instanceId, expiresAt }], now);
 *   const [done] = await completeJobs(db, [{ jobId, leaseId, outcome: { ok: true, output }, at: now }]); // null: stale lease
 */
import { z } from 'zod';
import { JobRequirements, JobState, ResumeFrom, type JobError, type ModelRef } from '../../protocol/index.js';
import type { Db } from './db.js';
import { readPayload, storedPayload, writePayload } from './payloads.js';

const JobErrorColumn = z.object({ code: z.string(), message: z.string() }).nullable();
/**
 * Inputs and outputs are JSON text (migration 4), absent from the summary
 * columns; NULL where a large one is kept in pieces (`*_pieces` > 0, payloads.ts).
 */
const JsonText = z
  .string()
  .nullable()
  .optional()
  .transform((t): unknown => (typeof t === 'string' ? JSON.parse(t) : t));

export const JobRow = z
  .object({
    id: z.string(),
    kind: z.string(),
    model_sha256: z.string(),
    model_size: z.coerce.number(),
    model_name: z.string(),
    input: JsonText,
    requirements: JobRequirements,
    timeout_ms: z.number().int(),
    max_attempts: z.number().int(),
    priority: z.number().int(),
    state: JobState,
    attempt: z.number().int(),
    lease_id: z.string().nullable(),
    lease_expires_at: z.date().nullable(),
    worker_id: z.string().nullable(),
    instance_id: z.string().nullable(),
    progress: z.number().nullable(),
    waiting_reason: z.string().nullable(),
    output: JsonText,
    input_pieces: z.number().int(),
    output_pieces: z.number().int(),
    error: JobErrorColumn,
    resume_from: JsonText.pipe(ResumeFrom.nullable().optional()),
    submitted_at: z.date(),
    started_at: z.date().nullable(),
    finished_at: z.date().nullable(),
    queue_deadline: z.date().nullable(),
  })
  .transform((r) => ({
    id: r.id,
    kind: r.kind,
    model: { sha256: r.model_sha256, size: r.model_size, name: r.model_name } satisfies ModelRef,
    /** The input when the row holds it (inputPieces 0). */
    input: r.input,
    requirements: r.requirements,
    timeoutMs: r.timeout_ms,
    maxAttempts: r.max_attempts,
    priority: r.priority,
    state: r.state,
    attempt: r.attempt,
    leaseId: r.lease_id,
    leaseExpiresAt: r.lease_expires_at,
    workerId: r.worker_id,
    instanceId: r.instance_id,
    progress: r.progress,
    waitingReason: r.waiting_reason,
    /** The output when the row holds it (outputPieces 0): `jobOutput` reads it either way. */
    output: r.output,
    /** How many pieces the input and output are kept in outside the row; 0: `input` and `output` are it. */
    inputPieces: r.input_pieces,
    outputPieces: r.output_pieces,
    error: r.error,
    /** What a lost attempt streamed, for the next to continue from; only on rows that carry the input. */
    resumeFrom: r.resume_from ?? null,
    submittedAt: r.submitted_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    /** A job still queued then fails (expireQueued); null: it waits as long as it takes. */
    queueDeadline: r.queue_deadline,
  }));
export type JobRow = z.output<typeof JobRow>;

export const JobEventRow = z
  .object({ at: z.date(), state: JobState, attempt: z.number().int(), worker_id: z.string().nullable(), detail: z.string().nullable() })
  .transform((r) => ({ at: r.at, state: r.state, attempt: r.attempt, workerId: r.worker_id, detail: r.detail }));
export type JobEventRow = z.output<typeof JobEventRow>;

/** Columns for lists and the scheduler: everything but the (possibly large) input and output. */
const SUMMARY = `id, kind, model_sha256, model_size, model_name, requirements, timeout_ms, max_attempts, priority, state,
  attempt, lease_id, lease_expires_at, worker_id, instance_id, progress, waiting_reason, error, submitted_at, started_at, finished_at, queue_deadline,
  input_pieces, output_pieces`;

const rows = (r: unknown[]) => r.map((x) => JobRow.parse(x));

/** Appends one history row per job the CTE named `changed` returned. */
const EVENTS = (state: string, detail: string) => `
  ev AS (
    INSERT INTO job_events (job_id, at, state, attempt, worker_id, detail)
    SELECT id, updated_at, ${state}, attempt, worker_id, ${detail} FROM changed
  )`;

export interface NewJob {
  id: string;
  kind: string;
  model: ModelRef;
  input: unknown;
  requirements: JobRequirements;
  timeoutMs: number;
  maxAttempts: number;
  priority: number;
  now: Date;
  /** Forget its prompt and answer once it ends (`forgetJobText`). @default false */
  forgetText?: boolean;
  /** Still queued then, it fails (expireQueued). @default none */
  queueDeadline?: Date | null;
}

/**
 * Inserts queued jobs in one statement, however many (a batch submit, or
 * single submits gathered by the dispatcher). Nothing is read back: the rows
 * are what `queuedJobRow` says they are.
 */
export async function insertJobs(db: Db, jobs: readonly NewJob[]): Promise<void> {
  if (jobs.length === 0) return;
  const col = <T>(f: (j: NewJob) => T) => jobs.map(f);
  const inputs = jobs.map((j) => storedPayload(j.input));
  const write = async (tx: Db) => {
    await tx.query(
      `WITH changed AS (
         INSERT INTO jobs (id, kind, model_sha256, model_size, model_name, input, input_pieces, requirements, timeout_ms, max_attempts,
                           priority, state, submitted_at, updated_at, forget_text, queue_deadline)
         SELECT id, kind, sha256, size, name, input, input_pieces, requirements::jsonb, timeout_ms, max_attempts, priority, 'queued', at, at,
                forget_text, queue_deadline
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::integer[], $9::integer[],
                     $10::integer[], $11::timestamptz[], $12::boolean[], $13::timestamptz[], $14::integer[])
           AS n(id, kind, sha256, size, name, input, requirements, timeout_ms, max_attempts, priority, at, forget_text, queue_deadline, input_pieces)
         RETURNING id, updated_at, attempt, worker_id
       ), ${EVENTS(`'queued'`, `'submitted'`)}
       SELECT count(*) AS n FROM changed`,
      [
        col((j) => j.id),
        col((j) => j.kind),
        col((j) => j.model.sha256),
        col((j) => j.model.size),
        col((j) => j.model.name),
        inputs.map((p) => p.text),
        col((j) => JSON.stringify(j.requirements)),
        col((j) => j.timeoutMs),
        col((j) => j.maxAttempts),
        col((j) => j.priority),
        col((j) => j.now),
        col((j) => j.forgetText === true),
        col((j) => j.queueDeadline ?? null),
        inputs.map((p) => p.pieces.length),
      ],
    );
    for (const [i, p] of inputs.entries()) if (p.pieces.length > 0) await writePayload(tx, jobs[i]!.id, 'input', p.pieces);
  };
  // The pieces and the row that points at them are written together or not at all.
  await (inputs.some((p) => p.pieces.length > 0) ? db.transaction(write) : write(db));
}

/** The row `insertJobs` wrote for a job, with its input as submitted (the database may keep it in pieces). */
export function queuedJobRow(j: NewJob): JobRow {
  return {
    id: j.id,
    kind: j.kind,
    model: { ...j.model },
    input: j.input,
    inputPieces: 0,
    outputPieces: 0,
    requirements: j.requirements,
    timeoutMs: j.timeoutMs,
    maxAttempts: j.maxAttempts,
    priority: j.priority,
    state: 'queued',
    attempt: 0,
    leaseId: null,
    leaseExpiresAt: null,
    workerId: null,
    instanceId: null,
    progress: null,
    waitingReason: null,
    output: null,
    error: null,
    resumeFrom: null,
    submittedAt: j.now,
    startedAt: null,
    finishedAt: null,
    queueDeadline: j.queueDeadline ?? null,
  };
}

export async function getJob(db: Db, id: string): Promise<JobRow | null> {
  const r = await db.query('SELECT * FROM jobs WHERE id = $1', [id]);
  return r[0] === undefined ? null : JobRow.parse(r[0]);
}

export async function getJobEvents(db: Db, id: string): Promise<JobEventRow[]> {
  const r = await db.query('SELECT at, state, attempt, worker_id, detail FROM job_events WHERE job_id = $1 ORDER BY seq', [id]);
  return r.map((x) => JobEventRow.parse(x));
}

/** Newest first, without inputs and outputs. */
export async function listJobs(db: Db, opts: { state?: JobState; limit: number }): Promise<JobRow[]> {
  const r = opts.state
    ? await db.query(`SELECT ${SUMMARY} FROM jobs WHERE state = $1 ORDER BY submitted_at DESC, id LIMIT $2`, [opts.state, opts.limit])
    : await db.query(`SELECT ${SUMMARY} FROM jobs ORDER BY submitted_at DESC, id LIMIT $1`, [opts.limit]);
  return rows(r);
}

const QueueEntryRow = z
  .object({ id: z.string(), kind: z.string(), model_sha256: z.string(), model_size: z.coerce.number(), requirements: JobRequirements, failed_on: z.array(z.string()) })
  .transform((r) => ({ id: r.id, kind: r.kind, model: { sha256: r.model_sha256, size: r.model_size }, requirements: r.requirements, failedOn: r.failed_on }));
export type QueueEntry = z.output<typeof QueueEntryRow>;

/**
 * The head of the queue in the order the scheduler serves it (priority, then
 * age), with only what the scheduler reads: a pass runs on every freed slot.
 */
export async function listQueueHead(db: Db, limit: number): Promise<QueueEntry[]> {
  const r = await db.query(`SELECT id, kind, model_sha256, model_size, requirements, failed_on FROM jobs WHERE state = 'queued' ORDER BY priority DESC, submitted_at, id LIMIT $1`, [limit]);
  return r.map((x) => QueueEntryRow.parse(x));
}

/**
 * What autovacuum does on PostgreSQL, for PGlite, which has none: fresh
 * statistics on the jobs' states (without them the planner takes the queue
 * for a few rows, and sorts all of it to serve its head) and, with `vacuum`,
 * the room of replaced row versions made reusable. A small sample does: the
 * plans need only the share of each state.
 */
export async function tidyJobs(db: Db, opts: { vacuum: boolean }): Promise<void> {
  await db.exec('SET default_statistics_target = 10; ANALYZE jobs (state); RESET default_statistics_target;');
  // Not in the script above: VACUUM refuses to run inside the transaction a multi-statement script is.
  if (opts.vacuum) await db.exec('VACUUM jobs');
}

export interface Lease {
  jobId: string;
  leaseId: string;
  workerId: string;
  instanceId: string;
  expiresAt: Date;
}

/**
 * Leases queued jobs in one statement. A job another instance leased (or that
 * was canceled) meanwhile is skipped: only the returned rows were leased here.
 * Returned rows carry the input, for `job.assign`.
 */
export async function leaseJobs(db: Db, leases: Lease[], now: Date): Promise<JobRow[]> {
  if (leases.length === 0) return [];
  const r = await db.query(
    `WITH l AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
         AS l(job_id, lease_id, worker_id, instance_id, expires_at)
     ), changed AS (
       UPDATE jobs j SET state = 'leased', attempt = j.attempt + 1, lease_id = l.lease_id, worker_id = l.worker_id,
              instance_id = l.instance_id, lease_expires_at = l.expires_at, waiting_reason = NULL, progress = NULL, updated_at = $6
       FROM l WHERE j.id = l.job_id AND j.state = 'queued'
       RETURNING j.*
     ), ${EVENTS(`'leased'`, `NULL`)}
     SELECT * FROM changed`,
    [leases.map((l) => l.jobId), leases.map((l) => l.leaseId), leases.map((l) => l.workerId), leases.map((l) => l.instanceId), leases.map((l) => l.expiresAt), now],
  );
  return rows(r);
}

/**
 * leased → running, when the worker says it started, for many jobs in one
 * statement; one answer per mark, in order, false for a stale lease.
 */
export async function markRunningMany(db: Db, marks: readonly { jobId: string; leaseId: string; at: Date }[]): Promise<boolean[]> {
  if (marks.length === 0) return [];
  const r = await db.query<{ ord: unknown }>(
    `WITH changed AS (
       UPDATE jobs j SET state = 'running', started_at = COALESCE(j.started_at, m.at), updated_at = m.at
       FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS m(job_id, lease_id, at, ord)
       WHERE j.id = m.job_id AND j.lease_id = m.lease_id AND j.state = 'leased'
       RETURNING j.id, j.updated_at, j.attempt, j.worker_id, m.ord
     ), ${EVENTS(`'running'`, `NULL`)}
     SELECT ord FROM changed`,
    [marks.map((m) => m.jobId), marks.map((m) => m.leaseId), marks.map((m) => m.at)],
  );
  const done = new Set(r.map((x) => Number(x.ord)));
  return marks.map((_, i) => done.has(i + 1));
}

/** Heartbeats renew the leases of the jobs a worker says it is running; one statement per batch. */
export async function renewLeases(db: Db, leases: { jobId: string; leaseId: string; progress: number | null }[], expiresAt: Date): Promise<void> {
  if (leases.length === 0) return;
  await db.query(
    `UPDATE jobs j SET lease_expires_at = $4, progress = COALESCE(l.progress, j.progress)
     FROM unnest($1::text[], $2::text[], $3::real[]) AS l(job_id, lease_id, progress)
     WHERE j.id = l.job_id AND j.lease_id = l.lease_id AND j.state IN ('leased', 'running')`,
    [leases.map((l) => l.jobId), leases.map((l) => l.leaseId), leases.map((l) => l.progress), expiresAt],
  );
}

export type JobOutcome = { ok: true; output: unknown } | { ok: false; error: JobError & { retryable: boolean } };

export interface JobResultRecord {
  jobId: string;
  leaseId: string;
  outcome: JobOutcome;
  at: Date;
  /**
   * When the worker said it started this lease, if that is not written yet
   * (a success only): the `running` step is then recorded with the result,
   * one statement instead of two.
   */
  startedAt?: Date;
}

/**
 * Takes workers' results for the leases they name: the successes in one
 * statement, each failure in one of its own (they are rare, and each decides
 * retry or not). One answer per result, in order: null when that lease is no
 * longer current (the job was requeued, canceled, or already finished), the
 * fencing that makes exactly one result count. Of several results for the
 * same lease only the first counts, here as across calls.
 */
export async function completeJobs(db: Db, results: readonly JobResultRecord[]): Promise<(JobRow | null)[]> {
  const answers: (JobRow | null)[] = results.map(() => null);
  const ok = results.flatMap((r, i) => (r.outcome.ok ? [{ ...r, output: storedPayload(r.outcome.output), i }] : []));
  const succeed = async (tx: Db) => {
    const r = await tx.query<Record<string, unknown> & { ord: unknown }>(
      `WITH r AS (
         SELECT DISTINCT ON (job_id, lease_id) * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::integer[])
           WITH ORDINALITY AS r(job_id, lease_id, output, at, started_at, output_pieces, ord)
         ORDER BY job_id, lease_id, ord
       ), changed AS (
         UPDATE jobs j SET state = 'succeeded', output = r.output, output_pieces = r.output_pieces, error = NULL, progress = 1, lease_id = NULL, resume_from = NULL,
                lease_expires_at = NULL, finished_at = r.at, updated_at = r.at, started_at = COALESCE(j.started_at, r.started_at, r.at)
         FROM r WHERE j.id = r.job_id AND j.lease_id = r.lease_id AND j.state IN ('leased', 'running')
         RETURNING j.*, r.ord, r.started_at AS start_reported
       ), ev AS (
         -- In step order, so the history's sequence numbers put running before succeeded.
         INSERT INTO job_events (job_id, at, state, attempt, worker_id, detail)
         SELECT id, at, state, attempt, worker_id, NULL FROM (
           SELECT id, start_reported AS at, 'running' AS state, attempt, worker_id, 0 AS step FROM changed WHERE start_reported IS NOT NULL
           UNION ALL
           SELECT id, updated_at, 'succeeded', attempt, worker_id, 1 FROM changed
         ) e ORDER BY id, step
       )
       SELECT ${SUMMARY}, ord FROM changed`,
      [
        ok.map((x) => x.jobId),
        ok.map((x) => x.leaseId),
        ok.map((x) => x.output.text),
        ok.map((x) => x.at),
        ok.map((x) => x.startedAt ?? null),
        ok.map((x) => x.output.pieces.length),
      ],
    );
    for (const row of r) {
      const { i, jobId, output } = ok[Number(row.ord) - 1]!;
      // Only for the leases that were current: a stale result's pieces are never written.
      if (output.pieces.length > 0) await writePayload(tx, jobId, 'output', output.pieces);
      answers[i] = JobRow.parse(row);
    }
  };
  if (ok.length > 0) await (ok.some((x) => x.output.pieces.length > 0) ? db.transaction(succeed) : succeed(db));
  for (const [i, r] of results.entries()) {
    if (r.outcome.ok) continue;
    const { code, message, retryable } = r.outcome.error;
    answers[i] = (await release(db, `id = $1 AND lease_id = $2`, [r.jobId, r.leaseId], { code, message }, retryable, r.at))[0] ?? null;
  }
  return answers;
}

/** How many finished jobs one `forgetJobText` call rewrites at most. */
const FORGET_BATCH = 500;

/**
 * Forgets the prompts and answers of ended jobs that were submitted to be
 * forgotten (OpenAI requests while `[llm] keep_text` is off): the input
 * becomes null, the output keeps everything but its `text` (the finish
 * reason, the token counts), and what a lost attempt streamed goes. The
 * history, timings and worker stay. Either the jobs named (a request that
 * just ended) or those that ended before a time (requests whose coordinator
 * died before it could); returns how many were rewritten.
 */
export async function forgetJobText(db: Db, which: { ids: readonly string[] } | { endedBefore: Date }): Promise<number> {
  const [where, param] = 'ids' in which ? ['id = ANY($1::text[])', which.ids] : ['finished_at < $1', which.endedBefore];
  const found = await db.query<{ id: string; output: string | null; input_pieces: number; output_pieces: number }>(
    `SELECT id, output, input_pieces, output_pieces FROM jobs
     WHERE forget_text AND state IN ('succeeded', 'failed', 'canceled') AND ${where} LIMIT ${FORGET_BATCH}`,
    [param],
  );
  if (found.length === 0) return 0;
  // In JavaScript, not with jsonb's operators: the output is JSON text that jsonb may be unable to hold (a NUL).
  const outputs = await Promise.all(
    found.map(async (r) => {
      const output: unknown = r.output_pieces > 0 ? await readPayload(db, r.id, 'output', r.output_pieces) : r.output === null ? null : JSON.parse(r.output);
      return storedPayload(output === null || typeof output !== 'object' || Array.isArray(output) ? output : { ...output, text: undefined });
    }),
  );
  const forget = async (tx: Db) => {
    await tx.query(
      `UPDATE jobs j SET input = 'null', input_pieces = 0, output = f.output, output_pieces = f.output_pieces, resume_from = NULL, forget_text = false
       FROM unnest($1::text[], $2::text[], $3::integer[]) AS f(id, output, output_pieces) WHERE j.id = f.id`,
      [found.map((r) => r.id), outputs.map((o) => o.text), outputs.map((o) => o.pieces.length)],
    );
    for (const [i, r] of found.entries()) {
      if (r.input_pieces > 0) await writePayload(tx, r.id, 'input', []);
      if (r.output_pieces > 0 || outputs[i]!.pieces.length > 0) await writePayload(tx, r.id, 'output', outputs[i]!.pieces);
    }
  };
  const pieces = found.some((r, i) => r.input_pieces > 0 || r.output_pieces > 0 || outputs[i]!.pieces.length > 0);
  await (pieces ? db.transaction(forget) : forget(db));
  return found.length;
}

/** A job's output, from its row or from the pieces it is kept in. */
export async function jobOutput(db: Db, row: JobRow): Promise<unknown> {
  return row.outputPieces > 0 ? readPayload(db, row.id, 'output', row.outputPieces) : row.output;
}

/**
 * Keeps what attempts streamed (their `job.partial` text) before they end
 * without a result, so the next attempt continues from it rather than
 * starting again. Written just before the lease is released, and only while
 * it is current: a stale lease's text is not the job's.
 */
export async function keepResumeFrom(db: Db, items: readonly { jobId: string; leaseId: string; resumeFrom: ResumeFrom }[]): Promise<void> {
  if (items.length === 0) return;
  await db.query(
    `UPDATE jobs j SET resume_from = r.text
     FROM unnest($1::text[], $2::text[], $3::text[]) AS r(job_id, lease_id, text)
     WHERE j.id = r.job_id AND j.lease_id = r.lease_id AND j.state IN ('leased', 'running')`,
    // As JSON text, like inputs and outputs: a text column cannot hold a NUL, and a model may produce one.
    [items.map((i) => i.jobId), items.map((i) => i.leaseId), items.map((i) => JSON.stringify(i.resumeFrom))],
  );
}

/**
 * The worker gave the job back unfinished (its owner needs the machine, it is
 * quitting): queued again at once, and the attempt is not counted, since the
 * job did nothing wrong. Null for a lease that is not current.
 */
export async function handBackJob(db: Db, jobId: string, leaseId: string, reason: string, now: Date): Promise<JobRow | null> {
  const r = await db.query(
    `WITH changed AS (
       UPDATE jobs SET state = 'queued', attempt = GREATEST(attempt - 1, 0), lease_id = NULL, lease_expires_at = NULL,
              instance_id = NULL, progress = NULL, updated_at = $3
       WHERE id = $1 AND lease_id = $2 AND state IN ('leased', 'running') RETURNING *
     ), ${EVENTS(`'queued'`, `$4`)}
     SELECT ${SUMMARY} FROM changed`,
    [jobId, leaseId, now, `handed back: ${reason}`],
  );
  return r[0] === undefined ? null : JobRow.parse(r[0]);
}

/**
 * Every lease a worker held through this instance, released at once when its
 * session ends; `keep` spares the leases its current session holds (when a new
 * session replaces an old one).
 */
export async function releaseWorkerLeases(
  db: Db,
  workerId: string,
  instanceId: string,
  reason: JobError,
  now: Date,
  keep: readonly string[] = [],
): Promise<JobRow[]> {
  return release(db, `worker_id = $1 AND instance_id = $2 AND NOT (lease_id = ANY($3::text[]))`, [workerId, instanceId, keep], reason, true, now);
}

/** Every lease an instance held: at its start, none of them can still be running (its sessions died with it). */
export async function releaseInstanceLeases(db: Db, instanceId: string, reason: JobError, now: Date): Promise<JobRow[]> {
  return release(db, `instance_id = $1`, [instanceId], reason, true, now);
}

/** Leases whose expiry passed: their worker's coordinator instance died, or the worker stopped renewing them. */
export async function expireLeases(db: Db, now: Date): Promise<JobRow[]> {
  return release(db, `lease_expires_at < $1`, [now], { code: 'GG_ERR_HEARTBEAT_TIMEOUT', message: 'lease expired: no heartbeat renewed it' }, true, now);
}

async function release(db: Db, where: string, params: unknown[], error: JobError, retryable: boolean, now: Date): Promise<JobRow[]> {
  const n = params.length;
  const r = await db.query(
    `WITH changed AS (
       UPDATE jobs SET
         state = CASE WHEN $${n + 3}::boolean AND attempt < max_attempts THEN 'queued' ELSE 'failed' END,
         error = $${n + 1}::jsonb, lease_id = NULL, lease_expires_at = NULL, instance_id = NULL, progress = NULL,
         finished_at = CASE WHEN $${n + 3}::boolean AND attempt < max_attempts THEN NULL ELSE $${n + 2}::timestamptz END,
         resume_from = CASE WHEN $${n + 3}::boolean AND attempt < max_attempts THEN resume_from END,
         failed_on = CASE WHEN $${n + 3}::boolean AND attempt < max_attempts AND worker_id IS NOT NULL THEN array_append(failed_on, worker_id) ELSE failed_on END,
         updated_at = $${n + 2}::timestamptz
       WHERE ${where} AND state IN ('leased', 'running') RETURNING *
     ), ${EVENTS(`state`, `$${n + 4}`)}
     SELECT ${SUMMARY} FROM changed`,
    [...params, JSON.stringify(error), now, retryable, `${error.code}: ${error.message}`],
  );
  return rows(r);
}

/**
 * Cancels a job that has not finished. Returns the row as it was before (so the
 * caller can tell a worker to stop), or null if it was unknown or already final.
 */
export async function cancelJob(db: Db, id: string, now: Date): Promise<JobRow | null> {
  const r = await db.query(
    `WITH before AS (SELECT ${SUMMARY} FROM jobs WHERE id = $1 AND state IN ('queued', 'leased', 'running') FOR UPDATE),
     changed AS (
       UPDATE jobs SET state = 'canceled', lease_id = NULL, lease_expires_at = NULL, instance_id = NULL, resume_from = NULL,
              error = '{"code":"GG_ERR_JOB_CANCELED","message":"canceled by an administrator"}'::jsonb,
              finished_at = $2, updated_at = $2
       WHERE id IN (SELECT id FROM before) RETURNING *
     ), ${EVENTS(`'canceled'`, `'canceled by an administrator'`)}
     SELECT * FROM before`,
    [id, now],
  );
  return r[0] === undefined ? null : JobRow.parse(r[0]);
}

/**
 * Fails the queued jobs whose queue deadline passed, with
 * GG_ERR_NO_WORKER_AVAILABLE and why they were waiting; returns them.
 */
export async function expireQueued(db: Db, now: Date): Promise<JobRow[]> {
  const r = await db.query(
    `WITH changed AS (
       UPDATE jobs SET state = 'failed', finished_at = $1, updated_at = $1,
              error = jsonb_build_object('code', 'GG_ERR_NO_WORKER_AVAILABLE', 'message',
                'no worker took it within its queue timeout of ' || round(extract(epoch FROM queue_deadline - submitted_at))::bigint || ' s'
                || coalesce('; it was waiting because ' || waiting_reason, ''))
       WHERE state = 'queued' AND queue_deadline < $1 RETURNING *
     ), ${EVENTS(`'failed'`, `'queue timeout'`)}
     SELECT ${SUMMARY} FROM changed`,
    [now],
  );
  return rows(r);
}

/** Records why queued jobs are waiting; only rows whose reason changed are written. */
export async function setWaitingReasons(db: Db, reasons: { jobId: string; reason: string | null }[]): Promise<void> {
  if (reasons.length === 0) return;
  await db.query(
    `UPDATE jobs j SET waiting_reason = r.reason
     FROM unnest($1::text[], $2::text[]) AS r(job_id, reason)
     WHERE j.id = r.job_id AND j.state = 'queued' AND j.waiting_reason IS DISTINCT FROM r.reason`,
    [reasons.map((r) => r.jobId), reasons.map((r) => r.reason)],
  );
}
