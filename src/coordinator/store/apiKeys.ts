/**
 * API keys for the coordinator HTTP API, stored as sha256 of the key. A key
 * has a scope (`admin`: everything; `inference`: the OpenAI-compatible routes)
 * and is revoked, never deleted, so `keys list` still says what it was.
 *
 *   await createApiKey(db, { id, keySha256, name: 'ci', scope: 'inference', now });
 *   const key = await findApiKeyBySha256(db, sha256Hex(presentedKey)); // null, or revokedAt set: reject
 *   await revokeApiKey(db, id, now); // throws GG_ERR_LAST_ADMIN_KEY rather than leave no admin key
 */
import { z } from 'zod';
import { ApiKeyScope, GridError } from '../../protocol/index.js';
import type { Db } from './db.js';

export const ApiKeyRow = z
  .object({
    id: z.string(),
    key_sha256: z.string().regex(/^[0-9a-f]{64}$/),
    name: z.string(),
    scope: ApiKeyScope,
    created_at: z.date(),
    last_used_at: z.date().nullable(),
    revoked_at: z.date().nullable(),
  })
  .transform((r) => ({
    id: r.id,
    keySha256: r.key_sha256,
    name: r.name,
    scope: r.scope,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  }));
export type ApiKeyRow = z.output<typeof ApiKeyRow>;

export interface NewApiKey {
  id: string;
  /** Lowercase hex sha256 of the key; the key itself is never stored. */
  keySha256: string;
  name: string;
  scope: ApiKeyScope;
  now: Date;
}

export async function createApiKey(db: Db, k: NewApiKey): Promise<ApiKeyRow> {
  const rows = await db.query(
    'INSERT INTO api_keys (id, key_sha256, name, scope, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING *',
    [k.id, k.keySha256, k.name, k.scope, k.now],
  );
  return ApiKeyRow.parse(rows[0]);
}

// A lookup by hash needs no constant-time compare: an attacker cannot steer the
// digest of a guess towards a stored one byte by byte.
export async function findApiKeyBySha256(db: Db, keySha256: string): Promise<ApiKeyRow | null> {
  const rows = await db.query('SELECT * FROM api_keys WHERE key_sha256 = $1', [keySha256]);
  return rows[0] === undefined ? null : ApiKeyRow.parse(rows[0]);
}

export async function getApiKey(db: Db, id: string): Promise<ApiKeyRow | null> {
  const rows = await db.query('SELECT * FROM api_keys WHERE id = $1', [id]);
  return rows[0] === undefined ? null : ApiKeyRow.parse(rows[0]);
}

export async function listApiKeys(db: Db): Promise<ApiKeyRow[]> {
  const rows = await db.query('SELECT * FROM api_keys ORDER BY created_at, id');
  return rows.map((r) => ApiKeyRow.parse(r));
}

export async function countApiKeys(db: Db): Promise<number> {
  const rows = await db.query('SELECT count(*)::int AS n FROM api_keys');
  return z.object({ n: z.number().int() }).parse(rows[0]).n;
}

/**
 * Revokes key `id` (a revoked key stays as it was); null if there is none.
 * The last active admin key is refused: without one nobody could manage the
 * grid, or create an admin key again, through the API.
 */
export async function revokeApiKey(db: Db, id: string, now: Date): Promise<ApiKeyRow | null> {
  return db.transaction(async (tx) => {
    // Locks every active admin key, so two revocations of the last two cannot both see the other still active.
    const admins = await tx.query("SELECT id FROM api_keys WHERE scope = 'admin' AND revoked_at IS NULL FOR UPDATE");
    const key = await getApiKey(tx, id);
    if (!key || key.revokedAt) return key;
    if (key.scope === 'admin' && admins.length === 1) {
      throw new GridError('GG_ERR_LAST_ADMIN_KEY', `API key ${id} is the last admin key; create another with "gogrid keys create --scope admin" first`);
    }
    const rows = await tx.query('UPDATE api_keys SET revoked_at = $2 WHERE id = $1 RETURNING *', [id, now]);
    return ApiKeyRow.parse(rows[0]);
  });
}

export async function markApiKeyUsed(db: Db, id: string, now: Date): Promise<void> {
  await db.query('UPDATE api_keys SET last_used_at = $2 WHERE id = $1', [id, now]);
}
