/** The server backend: a `pg` pool; each transaction holds one pooled client. */
import pg from 'pg';
import type { Db } from './db.js';
import { redactDatabaseUrl } from './url.js';
import { GridError } from '../../protocol/errors.js';

const CONNECT_TIMEOUT_MS = 10_000;

export async function openPostgresDb(url: string, poolSize: number): Promise<Db> {
  // A server behind a firewall that drops packets would otherwise hold the start (and every later connect) forever.
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // An idle client that loses its server emits 'error' on the pool, and an unhandled
  // 'error' event kills the process. The pool has already dropped that client and
  // the next query opens a fresh one (or fails with its own error), so nothing to do.
  pool.on('error', () => {});
  try {
    // The pool connects lazily; connect now so a wrong URL or password fails at start-up.
    await pool.query('SELECT 1');
  } catch (e) {
    await pool.end();
    throw new GridError('GG_ERR_DATABASE_UNREACHABLE', `cannot connect to the database at ${redactDatabaseUrl(url)}: ${connectProblem(e)}`, { cause: e });
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

export interface NotificationHandlers {
  onNotify(payload: string): void;
  /** The connection was lost and is back: notifications sent meanwhile are gone. */
  onReconnect(): void;
  onError(error: unknown): void;
}

/** Reconnect delays after the listening connection is lost: doubling up to the last. */
const LISTEN_RETRY_MS = [250, 500, 1000, 2000, 5000, 10_000];

/**
 * LISTENs on `channel` over a connection of its own (a pooled client would
 * miss notifications between queries), reconnecting after a loss. Resolves
 * once listening; the result stops it.
 */
export async function listenPostgres(url: string, channel: string, handlers: NotificationHandlers): Promise<() => Promise<void>> {
  if (!/^[a-z_][a-z0-9_]*$/.test(channel)) throw new Error(`channel ${channel} is not a plain identifier`);
  let current: pg.Client | null = null;
  let stopped = false;
  let failures = 0;
  let retry: NodeJS.Timeout | undefined;

  const connect = async (): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: url });
    // 'end' follows every error on an open connection; that is where it is handled.
    client.on('error', (e) => handlers.onError(e));
    client.on('notification', (n) => {
      if (n.channel === channel && n.payload !== undefined) handlers.onNotify(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${channel}`);
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
    client.once('end', () => {
      if (current !== client) return;
      current = null;
      if (!stopped) again();
    });
    return client;
  };
  const again = () => {
    retry = setTimeout(() => {
      connect().then(
        (client) => {
          if (stopped) return void client.end().catch(() => undefined);
          current = client;
          failures = 0;
          handlers.onReconnect();
        },
        (e: unknown) => {
          handlers.onError(e);
          failures++;
          if (!stopped) again();
        },
      );
    }, LISTEN_RETRY_MS[Math.min(failures, LISTEN_RETRY_MS.length - 1)]);
    retry.unref();
  };

  current = await connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    const client = current;
    current = null;
    await client?.end().catch(() => undefined);
  };
}

/** What went wrong connecting, and what to do about it, in words: pg's message alone names no remedy. */
function connectProblem(e: unknown): string {
  const err = e as { code?: string; message?: string };
  const said = err.message ?? String(e);
  switch (err.code) {
    case 'ECONNREFUSED':
      return `nothing listens there (${said}); is PostgreSQL running, and on that host and port?`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `no such host (${said}); check the host name in [database] url`;
    case '28P01':
    case '28000':
      return `${said}; check the user and password in [database] url`;
    case '3D000':
      return `${said}; create it (createdb) or name another in [database] url`;
    default:
      return /timeout/i.test(said) ? `no answer within ${CONNECT_TIMEOUT_MS / 1000} s (${said}); a firewall may drop the packets` : said;
  }
}
