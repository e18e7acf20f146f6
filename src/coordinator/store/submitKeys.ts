/**
 * Idempotency keys of job submits (the `Idempotency-Key` header): the jobs a
 * request with a key queued, so a client that retries after a timeout gets
 * those jobs back instead of queuing them twice. A key is the client's own
 * text, scoped to the API key that sent it, and kept for SUBMIT_KEY_TTL_MS.
 *
 *   const done = await insertJobsOnce(db, jobs, { apiKeyId, key, requestSha256, now });
 *   if (done.earlier) … // jobs `done.earlier.jobIds` were queued by a request with this key
 *   await forgetSubmitKeys(db, new Date(Date.now() - SUBMIT_KEY_TTL_MS));
 */
import { z } from 'zod';
import type { Db } from './db.js';
import { insertJobs, type NewJob } from './jobs.js';

/** A day: longer than any client retries a request, as Stripe keeps its keys. */
export const SUBMIT_KEY_TTL_MS = 24 * 3600_000;

export interface SubmitKey {
  apiKeyId: string;
  key: string;
  /** sha256 of the request body: the same key with another body is a client's bug, refused rather than answered with other jobs. */
  requestSha256: string;
  now: Date;
}

const EarlierRow = z.object({ request_sha256: z.string(), job_ids: z.array(z.string()) });

/**
 * Inserts the jobs and records the key in one transaction, unless the key
 * (younger than SUBMIT_KEY_TTL_MS) was recorded before: then nothing is
 * inserted and `earlier` says what that request was and queued. Two requests
 * with one key at once: PostgreSQL holds the second's insert until the first
 * commits, so it answers the first's jobs; PGlite runs one at a time anyway.
 */
export async function insertJobsOnce(
  db: Db,
  jobs: readonly NewJob[],
  submit: SubmitKey,
): Promise<{ earlier: null } | { earlier: { requestSha256: string; jobIds: string[] } }> {
  return db.transaction(async (tx) => {
    const claimed = await tx.query(
      `INSERT INTO submit_keys (api_key_id, key, request_sha256, job_ids, created_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (api_key_id, key) DO UPDATE
         SET request_sha256 = EXCLUDED.request_sha256, job_ids = EXCLUDED.job_ids, created_at = EXCLUDED.created_at
         WHERE submit_keys.created_at < $6
       RETURNING 1`,
      [submit.apiKeyId, submit.key, submit.requestSha256, jobs.map((j) => j.id), submit.now, new Date(submit.now.getTime() - SUBMIT_KEY_TTL_MS)],
    );
    if (claimed.length === 1) {
      await insertJobs(tx, jobs);
      return { earlier: null };
    }
    const rows = await tx.query('SELECT request_sha256, job_ids FROM submit_keys WHERE api_key_id = $1 AND key = $2', [submit.apiKeyId, submit.key]);
    const row = EarlierRow.parse(rows[0]);
    return { earlier: { requestSha256: row.request_sha256, jobIds: row.job_ids } };
  });
}

/** Forgets the keys recorded before `before`; returns how many. */
export async function forgetSubmitKeys(db: Db, before: Date): Promise<number> {
  const rows = await db.query('DELETE FROM submit_keys WHERE created_at < $1 RETURNING 1', [before]);
  return rows.length;
}
