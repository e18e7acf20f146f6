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
import { DATABASE_URL_FORMS, parseDatabaseUrl, redactDatabaseUrl, type DatabaseTarget } from './url.js';

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
  return resourceErrorsNamed(await openBackend(target, opts));
}

function openBackend(target: DatabaseTarget, opts: OpenDbOptions): Promise<Db> {
  switch (target.kind) {
    case 'memory':
      return openPgliteDb(undefined, opts.memorySnapshot);
    case 'pglite':
      return openPgliteDb(target.dataDir);
    case 'postgres':
      return openPostgresDb(target.url, opts.poolSize ?? 10);
  }
}

/**
 * PostgreSQL's class 53, "insufficient resources" (a full disk, no memory,
 * no connection left), is an operator's problem that passes, not a bug: it
 * becomes GG_ERR_OUT_OF_RESOURCES (503, retryable) saying which, where it
 * was a 500 "internal error" before. Same SQLSTATEs from PGlite and PostgreSQL.
 */
function resourceErrorsNamed(db: Db): Db {
  const named = <T>(p: Promise<T>): Promise<T> =>
    p.catch((e: unknown) => {
      throw outOfResources(e) ?? e;
    });
  return {
    kind: db.kind,
    query: (text, params) => named(db.query(text, params)),
    exec: (sql) => named(db.exec(sql)),
    transaction: (fn) => named(db.transaction((tx) => fn(resourceErrorsNamed(tx)))),
    close: () => db.close(),
  };
}

const RUN_OUT_OF: Record<string, string> = {
  '53100': 'disk space (free some on the disk that holds it)',
  '53200': 'memory',
  '53300': 'connections (raise max_connections, or lower [database] max_connections)',
};

function outOfResources(e: unknown): GridError | null {
  const code = (e as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !code.startsWith('53') || e instanceof GridError) return null;
  const what = RUN_OUT_OF[code] ?? 'resources';
  return new GridError('GG_ERR_OUT_OF_RESOURCES', `the coordinator's database ran out of ${what}: ${(e as Error).message}`, { cause: e });
}
