/** The embedded backend: one PGlite instance (WebAssembly PostgreSQL, one connection). */
import { PGlite, type Transaction } from '@electric-sql/pglite';
import type { Db } from './db.js';

/** `dataDir` undefined: in memory. */
export async function openPgliteDb(dataDir: string | undefined): Promise<Db> {
  const pg = await PGlite.create(dataDir);
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
    close() {
      return pg.close();
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
