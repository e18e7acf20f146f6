/**
 * Enrolled workers: identity, certificate, and the online/offline/revoked state
 * the admin API shows. Liveness between heartbeats lives in the session registry;
 * this table gets transitions and, in batches, last-seen times.
 *
 *   await insertWorker(db, { id, name, certFingerprint, certNotAfter, tokenId, now });
 *   await markOnline(db, id, { name, hardware, appVersion, transport, labels, instanceId, now });
 *   await touchLastSeen(db, [{ id, at: now }, …]); // one statement per batch
 */
import { z } from 'zod';
import { HardwareReport } from '../../protocol/index.js';
import type { Db } from './db.js';

export const WorkerState = z.enum(['online', 'offline', 'revoked']);
export type WorkerState = z.infer<typeof WorkerState>;

export const WorkerRow = z
  .object({
    id: z.string(),
    name: z.string(),
    state: WorkerState,
    paused_reason: z.string().nullable(),
    // A report stored by an older version may not match today's schema; it then
    // reads as unknown until the worker's next hello overwrites it.
    hardware: HardwareReport.nullable().catch(null),
    app_version: z.string().nullable(),
    transport: z.enum(['quic', 'tcp']).nullable(),
    labels: z.array(z.string()).catch([]),
    cert_fingerprint: z.string(),
    cert_not_after: z.date(),
    enrolled_at: z.date(),
    state_changed_at: z.date(),
    last_seen: z.date().nullable(),
    revoked_at: z.date().nullable(),
    instance_id: z.string().nullable(),
    token_id: z.string().nullable(),
  })
  .transform((r) => ({
    id: r.id,
    name: r.name,
    state: r.state,
    pausedReason: r.paused_reason,
    hardware: r.hardware,
    appVersion: r.app_version,
    transport: r.transport,
    labels: r.labels,
    certFingerprint: r.cert_fingerprint,
    certNotAfter: r.cert_not_after,
    enrolledAt: r.enrolled_at,
    stateChangedAt: r.state_changed_at,
    lastSeen: r.last_seen,
    revokedAt: r.revoked_at,
    instanceId: r.instance_id,
    tokenId: r.token_id,
  }));
export type WorkerRow = z.output<typeof WorkerRow>;

const Count = z.object({ n: z.number().int() });

function one(rows: unknown[]): WorkerRow | null {
  return rows[0] === undefined ? null : WorkerRow.parse(rows[0]);
}

export interface NewWorker {
  id: string;
  name: string;
  certFingerprint: string;
  certNotAfter: Date;
  /** The enrollment token it used; null when enrolled some other way. */
  tokenId: string | null;
  now: Date;
}

/** A freshly enrolled worker starts offline until it connects. */
export async function insertWorker(db: Db, w: NewWorker): Promise<WorkerRow> {
  const rows = await db.query(
    `INSERT INTO workers (id, name, cert_fingerprint, cert_not_after, token_id, enrolled_at, state_changed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING *`,
    [w.id, w.name, w.certFingerprint, w.certNotAfter, w.tokenId, w.now],
  );
  return WorkerRow.parse(rows[0]);
}

export async function getWorker(db: Db, id: string): Promise<WorkerRow | null> {
  return one(await db.query('SELECT * FROM workers WHERE id = $1', [id]));
}

export async function listWorkers(db: Db): Promise<WorkerRow[]> {
  const rows = await db.query('SELECT * FROM workers ORDER BY enrolled_at, id');
  return rows.map((r) => WorkerRow.parse(r));
}

const WorkerStateRow = z
  .object({ id: z.string(), state: WorkerState, paused_reason: z.string().nullable(), instance_id: z.string().nullable(), last_seen: z.date().nullable() })
  .transform((r) => ({ id: r.id, state: r.state, pausedReason: r.paused_reason, instanceId: r.instance_id, lastSeen: r.last_seen }));
export type WorkerStateRow = z.output<typeof WorkerStateRow>;

/**
 * Every worker's id and what says whether it is online, without the
 * hardware reports: what counting a fleet by state needs (the dashboard's
 * summary, every 2 s), at a fraction of listWorkers' cost. In listWorkers' order.
 */
export async function listWorkerStates(db: Db): Promise<WorkerStateRow[]> {
  const rows = await db.query('SELECT id, state, paused_reason, instance_id, last_seen FROM workers ORDER BY enrolled_at, id');
  return rows.map((r) => WorkerStateRow.parse(r));
}

/** The workers with these ids, in the order given (unknown ids left out). */
export async function getWorkers(db: Db, ids: readonly string[]): Promise<WorkerRow[]> {
  if (ids.length === 0) return [];
  const byId = new Map((await db.query('SELECT * FROM workers WHERE id = ANY($1)', [ids])).map((r) => {
    const row = WorkerRow.parse(r);
    return [row.id, row] as const;
  }));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

export interface OnlineInfo {
  name: string;
  hardware: HardwareReport;
  appVersion: string;
  /** What carries its session. */
  transport: 'quic' | 'tcp';
  /** The labels it offers (hello's capabilities), kept for listings while it is offline too. */
  labels: readonly string[];
  /** The coordinator instance that now holds the session. */
  instanceId: string;
  now: Date;
}

/** Records a connect (hello). Null when the worker is unknown or revoked: revoked stays revoked. */
export async function markOnline(db: Db, id: string, o: OnlineInfo): Promise<WorkerRow | null> {
  return one(
    await db.query(
      `UPDATE workers SET
         state_changed_at = CASE WHEN state = 'online' THEN state_changed_at ELSE $6 END,
         state = 'online', name = $2, hardware = $3::jsonb, app_version = $4, instance_id = $5,
         last_seen = GREATEST(last_seen, $6), transport = $7, labels = $8::jsonb
       WHERE id = $1 AND state <> 'revoked' RETURNING *`,
      [id, o.name, JSON.stringify(o.hardware), o.appVersion, o.instanceId, o.now, o.transport, JSON.stringify(o.labels)],
    ),
  );
}

/**
 * Records a disconnect or heartbeat timeout. With `instanceId`, only if that
 * instance still holds the session, so a late disconnect on one instance cannot
 * mark offline a worker that has already reconnected elsewhere. False when
 * nothing changed (unknown, revoked, already offline, or held by another instance).
 */
export async function markOffline(db: Db, id: string, now: Date, instanceId?: string): Promise<boolean> {
  const rows = await db.query(
    `UPDATE workers SET state = 'offline', instance_id = NULL, state_changed_at = $2
     WHERE id = $1 AND state = 'online' AND ($3::text IS NULL OR instance_id = $3) RETURNING id`,
    [id, now, instanceId ?? null],
  );
  return rows.length > 0;
}

/** Heartbeats of a whole fleet in one statement. A time older than the stored one is ignored. */
export async function touchLastSeen(db: Db, entries: readonly { id: string; at: Date }[]): Promise<void> {
  if (entries.length === 0) return;
  // UPDATE … FROM with two source rows for one target applies an arbitrary one, so keep the latest.
  const latest = new Map<string, Date>();
  for (const e of entries) {
    const seen = latest.get(e.id);
    if (seen === undefined || e.at > seen) latest.set(e.id, e.at);
  }
  await db.query(
    `UPDATE workers AS w SET last_seen = GREATEST(w.last_seen, v.at)
     FROM unnest($1::text[], $2::timestamptz[]) AS v(id, at)
     WHERE w.id = v.id AND w.state <> 'revoked'`,
    [[...latest.keys()], [...latest.values()]],
  );
}

/** Null clears the pause. False when the worker is unknown. */
export async function setPausedReason(db: Db, id: string, reason: string | null): Promise<boolean> {
  const rows = await db.query('UPDATE workers SET paused_reason = $2 WHERE id = $1 RETURNING id', [id, reason]);
  return rows.length > 0;
}

/** False when the worker is unknown. Revoking twice keeps the first revocation time. */
export async function revokeWorker(db: Db, id: string, now: Date): Promise<boolean> {
  const rows = await db.query(
    `UPDATE workers SET
       state_changed_at = CASE WHEN state = 'revoked' THEN state_changed_at ELSE $2 END,
       revoked_at = COALESCE(revoked_at, $2), state = 'revoked', instance_id = NULL
     WHERE id = $1 RETURNING id`,
    [id, now],
  );
  return rows.length > 0;
}

/** After a certificate renewal. False when the worker is unknown or revoked. */
export async function updateCert(db: Db, id: string, fingerprint: string, notAfter: Date): Promise<boolean> {
  const rows = await db.query(
    `UPDATE workers SET cert_fingerprint = $2, cert_not_after = $3 WHERE id = $1 AND state <> 'revoked' RETURNING id`,
    [id, fingerprint, notAfter],
  );
  return rows.length > 0;
}

/**
 * At start-up: the workers a previous run of this instance held are not connected
 * to it any more; they show offline until they reconnect. Returns how many.
 */
export async function markInstanceWorkersOffline(db: Db, instanceId: string, now: Date): Promise<number> {
  const rows = await db.query(
    `WITH u AS (
       UPDATE workers SET state = 'offline', instance_id = NULL, state_changed_at = $2
       WHERE state = 'online' AND instance_id = $1 RETURNING 1
     ) SELECT count(*)::int AS n FROM u`,
    [instanceId, now],
  );
  return Count.parse(rows[0]).n;
}
