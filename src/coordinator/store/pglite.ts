/** The embedded backend: one PGlite instance (WebAssembly PostgreSQL, one connection). */
import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Db } from './db.js';
import { lockDataDir, type DataDirLock } from '../../common/lock.js';
import { ensurePrivateDir } from '../../common/files.js';

/**
 * `dataDir` undefined: in memory. A data dir is locked for this process: two
 * coordinators opening one embedded database (`--database pglite://A/db` from
 * another data dir) both acknowledged jobs, and corrupted its indexes.
 */
export async function openPgliteDb(dataDir: string | undefined, snapshot?: Blob): Promise<Db> {
  let lock: DataDirLock | undefined;
  if (dataDir !== undefined) {
    await ensurePrivateDir(dataDir);
    lock = await lockDataDir(dataDir, 'coordinator');
  }
  let pg: PGlite;
  try {
    pg = dataDir === undefined && snapshot ? await PGlite.create({ loadDataDir: snapshot }) : await PGlite.create(dataDir);
  } catch (e) {
    await lock?.release();
    throw e;
  }
  return {
    kind: 'pglite',
    async query<T>(text: string, params?: unknown[]) {
      return (await pg.query<T>(text, params)).rows;
    },
    async exec(sql: string) {
      await pg.exec(sql);
    },
    transaction<R>(fn: (tx: Db) => Promise<R>) {
      return pg.transaction((tx) => fn(transactionDb(tx)));
    },
    async close() {
      await pg.close();
      await lock?.release();
    },
  };
}

function transactionDb(tx: Transaction): Db {
  const db: Db = {
    kind: 'pglite',
    async query<T>(text: string, params?: unknown[]) {
      return (await tx.query<T>(text, params)).rows;
    },
    async exec(sql: string) {
      await tx.exec(sql);
    },
    transaction: (fn) => fn(db),
    close() {
      return Promise.reject(new Error('close() called on a transaction; close the Db it came from'));
    },
  };
  return db;
}
