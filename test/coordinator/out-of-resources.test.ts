/**
 * Running out of room is an operator's problem that passes, not a bug: a full
 * disk or a database out of resources answers GG_ERR_OUT_OF_RESOURCES (503,
 * retryable) saying which, where it was `500 internal error`. The fault
 * harness fills the coordinator's disk for real (test/fault/harness.ts).
 */
import { expect, it } from 'vitest';
import { toErrorBody } from '../../src/common/http-errors.js';
import { openDb } from '../../src/coordinator/store/index.js';
import { emptyDatabase } from '../helpers/pglite-snapshot.js';

it('names a database out of resources (PostgreSQL class 53), in a transaction or not, and the database works on', async () => {
  const db = await openDb('memory://', { memorySnapshot: emptyDatabase() });
  try {
    // temp_file_limit is the one class-53 limit a test can reach at will (PostgreSQL lets only a superuser set it).
    const sort = 'SELECT g FROM generate_series(1, 200000) g ORDER BY random()';
    const refused = { code: 'GG_ERR_OUT_OF_RESOURCES', status: 503, message: expect.stringMatching(/^the coordinator's database ran out of resources: temporary file size exceeds/) };
    await db.exec(`SET work_mem = '64kB'; SET temp_file_limit = '64kB'`);
    await expect(db.query(sort)).rejects.toMatchObject(refused);
    await expect(db.transaction((tx) => tx.query(sort))).rejects.toMatchObject(refused);
    expect(await db.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
  } finally {
    await db.close();
  }
});

it('answers a full disk with 503 and what to do, on either side', () => {
  const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  expect(toErrorBody(full, 'coordinator')).toEqual({
    status: 503,
    payload: { error: { code: 'GG_ERR_OUT_OF_RESOURCES', message: "no space left on the coordinator's disk; free some and try again" } },
  });
  expect(toErrorBody(full, 'worker').payload.error.message).toBe("no space left on the worker's disk; free some and try again");
});
