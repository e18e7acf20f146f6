/**
 * API keys for the coordinator HTTP API, stored as sha256 of the key.
 *
 *   await createApiKey(db, { id, keySha256, description: 'ci', now });
 *   const key = await findApiKeyBySha256(db, sha256Hex(presentedKey)); // null: reject
 */
import { z } from 'zod';
import type { Db } from './db.js';

export const ApiKeyRow = z
  .object({
    id: z.string(),
    key_sha256: z.string().regex(/^[0-9a-f]{64}$/),
    created_at: z.date(),
    description: z.string(),
  })
  .transform((r) => ({ id: r.id, keySha256: r.key_sha256, createdAt: r.created_at, description: r.description }));
export type ApiKeyRow = z.output<typeof ApiKeyRow>;

export interface NewApiKey {
  id: string;
  /** Lowercase hex sha256 of the key; the key itself is never stored. */
  keySha256: string;
  description: string;
  now: Date;
}

export async function createApiKey(db: Db, k: NewApiKey): Promise<ApiKeyRow> {
  const rows = await db.query(
    'INSERT INTO api_keys (id, key_sha256, description, created_at) VALUES ($1, $2, $3, $4) RETURNING *',
    [k.id, k.keySha256, k.description, k.now],
  );
  return ApiKeyRow.parse(rows[0]);
}

// A lookup by hash needs no constant-time compare: an attacker cannot steer the
// digest of a guess towards a stored one byte by byte.
export async function findApiKeyBySha256(db: Db, keySha256: string): Promise<ApiKeyRow | null> {
  const rows = await db.query('SELECT * FROM api_keys WHERE key_sha256 = $1', [keySha256]);
  return rows[0] === undefined ? null : ApiKeyRow.parse(rows[0]);
}

export async function countApiKeys(db: Db): Promise<number> {
  const rows = await db.query('SELECT count(*)::int AS n FROM api_keys');
  return z.object({ n: z.number().int() }).parse(rows[0]).n;
}
