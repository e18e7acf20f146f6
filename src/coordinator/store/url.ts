/**
 * The database URL forms `coordinator.toml` and `openDb` accept, in one place so the
 * config check and the opener cannot disagree.
 *
 *   parseDatabaseUrl('pglite://./data') // { kind: 'pglite', dataDir: './data' }
 */
import { isAbsolute } from 'node:path';

export type DatabaseTarget =
  /** Embedded PGlite in memory: gone when the process exits (local test mode). */
  | { kind: 'memory' }
  /** Embedded PGlite persisted in a data directory (path as written, relative to the working directory). */
  | { kind: 'pglite'; dataDir: string }
  /** A PostgreSQL server, several coordinator instances may share it. */
  | { kind: 'postgres'; url: string };

export const DATABASE_URL_FORMS = 'memory://, pglite:///abs/dir, pglite://./rel/dir, or postgres://user:password@host/db';

/** Null when the URL is none of the supported forms. */
export function parseDatabaseUrl(url: string): DatabaseTarget | null {
  if (url === 'memory://') return { kind: 'memory' };
  if (url.startsWith('pglite://')) {
    const dataDir = url.slice('pglite://'.length);
    // Only explicit absolute or dot-relative paths: `pglite://data` would read like a host name.
    return isAbsolute(dataDir) || dataDir.startsWith('./') || dataDir.startsWith('../') ? { kind: 'pglite', dataDir } : null;
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return URL.canParse(url) ? { kind: 'postgres', url } : null;
  }
  return null;
}

/** The URL with its password masked, for logs and error messages. */
export function redactDatabaseUrl(url: string): string {
  if (!URL.canParse(url)) return url;
  const u = new URL(url);
  if (u.password === '') return url;
  u.password = '***';
  return u.toString();
}
