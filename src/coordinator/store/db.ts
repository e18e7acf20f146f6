/**
 * The one small database interface the repositories use, implemented by embedded
 * PGlite and by a PostgreSQL pool, so the same SQL runs on both.
 *
 *   const db = await openDb('pglite://./data');        // or 'memory://', 'postgres://…'
 *   await db.transaction(async (tx) => { await tx.query('UPDATE …', [id]); });
 *   await db.close();
 *
 * Inside `transaction`, use only `tx`: PGlite has a single connection and queues
 * every outside query behind the open transaction, so `db.query` there deadlocks.
 */
import { GridError } from '../../protocol/index.js';
import { openPgliteDb } from './pglite.js';
import { openPostgresDb } from './postgres.js';
import { DATABASE_URL_FORMS, parseDatabaseUrl, redactDatabaseUrl } from './url.js';

export interface Db {
  /** One statement with `$1…` parameters; rows as the driver returns them (parse them with zod). */
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** A script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /** Runs `fn` in BEGIN … COMMIT, ROLLBACK if it throws. Nested calls join the outer transaction. */
  transaction<R>(fn: (tx: Db) => Promise<R>): Promise<R>;
  close(): Promise<void>;
  readonly kind: 'pglite' | 'postgres';
}

export interface OpenDbOptions {
  /** PostgreSQL connections in the pool (`[database] max_connections`). @default 10 */
  poolSize?: number;
  /**
   * For `memory://`: start from this snapshot of an empty database
   * (PGlite's `dumpDataDir`) instead of running initdb, about 1 s instead of
   * 4 s here; for tests, which start hundreds. @default none: initdb
   */
  memorySnapshot?: Blob;
}

export async function openDb(url: string, opts: OpenDbOptions = {}): Promise<Db> {
  const target = parseDatabaseUrl(url);
  if (target === null) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `database url ${redactDatabaseUrl(url)}: must be ${DATABASE_URL_FORMS}`);
  }
  switch (target.kind) {
    case 'memory':
      return openPgliteDb(undefined, opts.memorySnapshot);
    case 'pglite':
      return openPgliteDb(target.dataDir);
    case 'postgres':
      return openPostgresDb(target.url, opts.poolSize ?? 10);
  }
}
