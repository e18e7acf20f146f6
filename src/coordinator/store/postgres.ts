/** The server backend: a `pg` pool; each transaction holds one pooled client. */
import pg from 'pg';
import type { Db } from './db.js';
import { redactDatabaseUrl } from './url.js';

export async function openPostgresDb(url: string, poolSize: number): Promise<Db> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // An idle client that loses its server emits 'error' on the pool, and an unhandled
  // 'error' event kills the process. The pool has already dropped that client and
  // the next query opens a fresh one (or fails with its own error), so nothing to do.
  pool.on('error', () => {});
  try {
    // The pool connects lazily; connect now so a wrong URL or password fails at start-up.
    await pool.query('SELECT 1');
  } catch (e) {
    await pool.end();
    const reason = e instanceof Error ? e.message : String(e);
    throw new Error(`cannot connect to ${redactDatabaseUrl(url)}: ${reason}`, { cause: e });
  }
  return {
    kind: 'postgres',
    async query<T>(text: string, params?: unknown[]) {
      return (await pool.query(text, params)).rows as T[];
    },
    async exec(sql: string) {
      // Without parameters pg uses the simple query protocol, which allows several statements.
      await pool.query(sql);
    },
    async transaction<R>(fn: (tx: Db) => Promise<R>) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(clientDb(client));
        await client.query('COMMIT');
        client.release();
        return result;
      } catch (e) {
        // A client whose ROLLBACK fails is in an unknown state: destroy it, don't pool it.
        await client.query('ROLLBACK').then(
          () => client.release(),
          (rollbackError: Error) => client.release(rollbackError),
        );
        throw e;
      }
    },
    close() {
      return pool.end();
    },
  };
}

function clientDb(client: pg.PoolClient): Db {
  const db: Db = {
    kind: 'postgres',
    async query<T>(text: string, params?: unknown[]) {
      return (await client.query(text, params)).rows as T[];
    },
    async exec(sql: string) {
      await client.query(sql);
    },
    transaction: (fn) => fn(db),
    close() {
      return Promise.reject(new Error('close() called on a transaction; close the Db it came from'));
    },
  };
  return db;
}
