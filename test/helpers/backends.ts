/**
 * The store backends every store test runs on: embedded PGlite always,
 * PostgreSQL when GOGRID_TEST_PG_URL is set (`eval "$(scripts/postgres.sh start)"`).
 * Each PostgreSQL run works in a schema of its own, dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { migrate, openDb, type Db } from '../../src/coordinator/store/index.js';
import { emptyDatabase } from './pglite-snapshot.js';

export const PG_URL = process.env['GOGRID_TEST_PG_URL'];

export interface Backend {
  name: string;
  /** A fresh, empty database and how to get rid of it. */
  open(): Promise<{ db: Db; dispose(): Promise<void> }>;
}

const pglite: Backend = {
  name: 'PGlite (memory)',
  async open() {
    const db = await openDb('memory://', { memorySnapshot: emptyDatabase() });
    return { db, dispose: () => db.close() };
  },
};

const postgres = (url: string): Backend => ({
  name: 'PostgreSQL',
  async open() {
    const schema = `gg_test_${process.pid}_${randomBytes(4).toString('hex')}`;
    const admin = await openDb(url, { poolSize: 1 });
    await admin.exec(`CREATE SCHEMA ${schema}`);
    const scoped = new URL(url);
    scoped.searchParams.set('options', `-c search_path=${schema}`);
    const db = await openDb(scoped.toString(), { poolSize: 10 });
    return {
      db,
      async dispose() {
        await db.close();
        await admin.exec(`DROP SCHEMA ${schema} CASCADE`);
        await admin.close();
      },
    };
  },
});

export const backends: Backend[] = PG_URL === undefined ? [pglite] : [pglite, postgres(PG_URL)];

/**
 * A fresh, migrated database of `backend` for the tests of the enclosing
 * describe: opened before them and handed to `use`, disposed after them.
 *
 *   let db: Db;
 *   useMigratedDb(backend, (opened) => (db = opened));
 */
export function useMigratedDb(backend: Backend, use: (db: Db) => unknown): void {
  let dispose: () => Promise<void> = async () => undefined;
  beforeAll(async () => {
    const opened = await backend.open();
    dispose = opened.dispose;
    await migrate(opened.db);
    await use(opened.db);
  });
  afterAll(() => dispose());
}
