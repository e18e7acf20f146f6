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
 *   const done = await completeJob(db, jobId, leaseId, { ok: true, output }, now); // null: stale lease
 */
import { z } from 'zod';
import { JobRequirements, JobState, type JobError, type ModelRef } from '../../protocol/index.js';
import type { Db } from './db.js';

const JobErrorColumn = z.object({ code: z.string(), message: z.string() }).nullable();

export const JobRow = z
  .object({
    id: z.string(),
    kind: z.string(),
    model_sha256: z.string(),
    model_size: z.coerce.number(),
    model_name: z.string(),
    input: z.unknown().optional(),
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
    output: z.unknown().optional(),
    error: JobErrorColumn,
    submitted_at: z.date(),
    started_at: z.date().nullable(),
    finished_at: z.date().nullable(),
  })
  .transform((r) => ({
    id: r.id,
    kind: r.kind,
    model: { sha256: r.model_sha256, size: r.model_size, name: r.model_name } satisfies ModelRef,
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
    output: r.output,
    error: r.error,
    submittedAt: r.submitted_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  }));
export type JobRow = z.output<typeof JobRow>;

export const JobEventRow = z
  .object({ at: z.date(), state: JobState, attempt: z.number().int(), worker_id: z.string().nullable(), detail: z.string().nullable() })
  .transform((r) => ({ at: r.at, state: r.state, attempt: r.attempt, workerId: r.worker_id, detail: r.detail }));
export type JobEventRow = z.output<typeof JobEventRow>;

/** Columns for lists and the scheduler: everything but the (possibly large) input and output. */
const SUMMARY = `id, kind, model_sha256, model_size, model_name, requirements, timeout_ms, max_attempts, priority, state,
  attempt, lease_id, lease_expires_at, worker_id, instance_id, progress, waiting_reason, error, submitted_at, started_at, finished_at`;

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
}

export async function insertJob(db: Db, j: NewJob): Promise<JobRow> {
  const r = await db.query(
    `WITH changed AS (
       INSERT INTO jobs (id, kind, model_sha256, model_size, model_name, input, requirements, timeout_ms, max_attempts,
                         priority, state, submitted_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9, $10, 'queued', $11, $11)
       RETURNING *
     ), ${EVENTS(`'queued'`, `'submitted'`)}
     SELECT * FROM changed`,
    [j.id, j.kind, j.model.sha256, j.model.size, j.model.name, JSON.stringify(j.input), JSON.stringify(j.requirements), j.timeoutMs, j.maxAttempts, j.priority, j.now],
  );
  return JobRow.parse(r[0]);
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

/** The queue in the order the scheduler serves it: priority, then age. */
export async function listQueued(db: Db, limit: number): Promise<JobRow[]> {
  return rows(await db.query(`SELECT ${SUMMARY} FROM jobs WHERE state = 'queued' ORDER BY priority DESC, submitted_at, id LIMIT $1`, [limit]));
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

/** leased → running, when the worker says it started. False for a stale lease. */
export async function markRunning(db: Db, jobId: string, leaseId: string, now: Date): Promise<boolean> {
  const r = await db.query(
    `WITH changed AS (
       UPDATE jobs SET state = 'running', started_at = COALESCE(started_at, $3), updated_at = $3
       WHERE id = $1 AND lease_id = $2 AND state = 'leased' RETURNING *
     ), ${EVENTS(`'running'`, `NULL`)}
     SELECT id FROM changed`,
    [jobId, leaseId, now],
  );
  return r.length > 0;
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

/**
 * Takes a worker's result for the lease it names. Null when that lease is no
 * longer current (the job was requeued, canceled, or already finished): the
 * fencing that makes exactly one result count.
 */
export async function completeJob(db: Db, jobId: string, leaseId: string, outcome: JobOutcome, now: Date): Promise<JobRow | null> {
  if (outcome.ok) {
    const r = await db.query(
      `WITH changed AS (
         UPDATE jobs SET state = 'succeeded', output = $3::jsonb, error = NULL, progress = 1, lease_id = NULL,
                lease_expires_at = NULL, finished_at = $4, updated_at = $4, started_at = COALESCE(started_at, $4)
         WHERE id = $1 AND lease_id = $2 AND state IN ('leased', 'running') RETURNING *
       ), ${EVENTS(`'succeeded'`, `NULL`)}
       SELECT ${SUMMARY} FROM changed`,
      [jobId, leaseId, JSON.stringify(outcome.output), now],
    );
    return r[0] === undefined ? null : JobRow.parse(r[0]);
  }
  return release(db, `id = $1 AND lease_id = $2`, [jobId, leaseId], { code: outcome.error.code, message: outcome.error.message }, outcome.error.retryable, now)
    .then((r) => r[0] ?? null);
}

/** Hands a lease back (worker gone, paused, or its lease expired): requeued if attempts remain, else failed. */
export async function releaseLease(db: Db, jobId: string, leaseId: string, reason: JobError, now: Date): Promise<JobRow | null> {
  return (await release(db, `id = $1 AND lease_id = $2`, [jobId, leaseId], reason, true, now))[0] ?? null;
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
       UPDATE jobs SET state = 'canceled', lease_id = NULL, lease_expires_at = NULL, instance_id = NULL,
              error = '{"code":"GG_ERR_JOB_CANCELED","message":"canceled by an administrator"}'::jsonb,
              finished_at = $2, updated_at = $2
       WHERE id IN (SELECT id FROM before) RETURNING *
     ), ${EVENTS(`'canceled'`, `'canceled by an administrator'`)}
     SELECT * FROM before`,
    [id, now],
  );
  return r[0] === undefined ? null : JobRow.parse(r[0]);
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
