/**
 * Administrators' overrides in the store, on every backend: a worker's own
 * replaces the fleet's whole; clearing one brings the other back.
 */
import { describe, expect, it } from 'vitest';
import { getFleetPolicy, getPolicies, insertWorker, setFleetPolicy, setWorkerPolicy, type Db } from '../../src/coordinator/store/index.js';
import { backends, useMigratedDb } from '../helpers/backends.js';

describe.each(backends)('policy overrides on $name', (backend) => {
  let db: Db;
  const now = new Date('2026-11-27T10:00:00Z');

  useMigratedDb(backend, async (opened) => {
    db = opened;
    for (const id of ['w-1', 'w-2']) {
      await insertWorker(db, { id, name: id, certFingerprint: `fp-${id}`, certNotAfter: now, tokenId: null, now });
    }
  });

  it('has none at first', async () => {
    expect(await getPolicies(db, 'w-1')).toEqual({ worker: null, fleet: null, effective: {} });
    expect(await getFleetPolicy(db)).toBeNull();
  });

  it("applies the fleet's to every worker without its own, and a worker's own instead of it", async () => {
    await setFleetPolicy(db, { limits: { maxCores: 2 } }, now);
    await setWorkerPolicy(db, 'w-2', { paused: true, message: 'Disk swap' });
    expect(await getPolicies(db, 'w-1')).toEqual({ worker: null, fleet: { limits: { maxCores: 2 } }, effective: { limits: { maxCores: 2 } } });
    expect((await getPolicies(db, 'w-2'))?.effective).toEqual({ paused: true, message: 'Disk swap' });

    await setFleetPolicy(db, { settings: { preset: 'desktop' } }, now);
    expect(await getFleetPolicy(db)).toEqual({ settings: { preset: 'desktop' } });

    await setWorkerPolicy(db, 'w-2', null);
    expect((await getPolicies(db, 'w-2'))?.effective).toEqual({ settings: { preset: 'desktop' } });
    await setFleetPolicy(db, null, now);
    expect((await getPolicies(db, 'w-2'))?.effective).toEqual({});
  });

  it('says when the worker is unknown', async () => {
    expect(await getPolicies(db, 'nobody')).toBeNull();
    expect(await setWorkerPolicy(db, 'nobody', { paused: true })).toBe(false);
  });
});
