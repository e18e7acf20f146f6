/**
 * Administrators' policy overrides (pause, preset, limits), per worker and
 * for the whole fleet. A worker's own override replaces the fleet's whole,
 * so "this machine may use 8 cores" is not undone by a fleet-wide pause
 * being lifted, and what applies is always one readable object.
 *
 *   await setWorkerPolicy(db, 'w-1', { paused: true, message: 'Disk replacement' });
 *   const { effective } = await getPolicies(db, 'w-1');
 */
import { AdminOverride } from '../../protocol/index.js';
import type { Db } from './db.js';

export interface Policies {
  /** This worker's own, or null. */
  worker: AdminOverride | null;
  /** The fleet's, or null. */
  fleet: AdminOverride | null;
  /** What the worker applies: its own if set, else the fleet's, else none. */
  effective: AdminOverride;
}

function parse(value: unknown): AdminOverride | null {
  // Written only through the API after the same parse; a row that no longer
  // parses (a newer version wrote it) reads as none rather than failing hello.
  const r = AdminOverride.safeParse(value);
  return value === null || value === undefined || !r.success ? null : r.data;
}

/** Null when the worker is unknown. */
export async function getPolicies(db: Db, workerId: string): Promise<Policies | null> {
  const rows = await db.query(
    `SELECT w.admin_policy AS worker, (SELECT admin_policy FROM fleet_policy) AS fleet FROM workers w WHERE w.id = $1`,
    [workerId],
  );
  const row = rows[0] as { worker: unknown; fleet: unknown } | undefined;
  if (!row) return null;
  const worker = parse(row.worker);
  const fleet = parse(row.fleet);
  return { worker, fleet, effective: worker ?? fleet ?? {} };
}

export async function getFleetPolicy(db: Db): Promise<AdminOverride | null> {
  const rows = await db.query('SELECT admin_policy FROM fleet_policy');
  return parse((rows[0] as { admin_policy: unknown } | undefined)?.admin_policy);
}

/** False when the worker is unknown. Null clears it. */
export async function setWorkerPolicy(db: Db, workerId: string, override: AdminOverride | null): Promise<boolean> {
  const rows = await db.query('UPDATE workers SET admin_policy = $2::jsonb WHERE id = $1 RETURNING id', [
    workerId,
    override === null ? null : JSON.stringify(override),
  ]);
  return rows.length > 0;
}

/** Null clears it. */
export async function setFleetPolicy(db: Db, override: AdminOverride | null, now: Date): Promise<void> {
  if (override === null) {
    await db.query('DELETE FROM fleet_policy');
    return;
  }
  await db.query(
    `INSERT INTO fleet_policy (id, admin_policy, updated_at) VALUES (true, $1::jsonb, $2)
     ON CONFLICT (id) DO UPDATE SET admin_policy = EXCLUDED.admin_policy, updated_at = EXCLUDED.updated_at`,
    [JSON.stringify(override), now],
  );
}
