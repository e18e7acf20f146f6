/**
 * Enrollment tokens: only sha256(secret) is stored. `consumeToken` checks a
 * presented secret and takes one use atomically, so a 1-use token enrolls
 * exactly one worker however many try at once.
 *
 *   await createToken(db, { id, secretSha256, description, expiresAt, maxUses: 1, now });
 *   const token = await consumeToken(db, id, secret, now); // throws GridError GG_ERR_TOKEN_*
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { GridError } from '../../protocol/index.js';
import type { Db } from './db.js';

export const TokenRow = z
  .object({
    id: z.string(),
    secret_sha256: z.string().regex(/^[0-9a-f]{64}$/),
    description: z.string(),
    created_at: z.date(),
    expires_at: z.date(),
    max_uses: z.number().int(),
    uses: z.number().int(),
    revoked_at: z.date().nullable(),
  })
  .transform((r) => ({
    id: r.id,
    secretSha256: r.secret_sha256,
    description: r.description,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    maxUses: r.max_uses,
    uses: r.uses,
    revokedAt: r.revoked_at,
  }));
export type TokenRow = z.output<typeof TokenRow>;

export interface NewToken {
  id: string;
  /** Lowercase hex sha256 of the secret; the secret itself is never stored. */
  secretSha256: string;
  description: string;
  expiresAt: Date;
  maxUses: number;
  now: Date;
}

export async function createToken(db: Db, t: NewToken): Promise<TokenRow> {
  const rows = await db.query(
    `INSERT INTO enrollment_tokens (id, secret_sha256, description, created_at, expires_at, max_uses)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
    [t.id, t.secretSha256, t.description, t.now, t.expiresAt, t.maxUses],
  );
  return TokenRow.parse(rows[0]);
}

export async function listTokens(db: Db): Promise<TokenRow[]> {
  const rows = await db.query('SELECT * FROM enrollment_tokens ORDER BY created_at, id');
  return rows.map((r) => TokenRow.parse(r));
}

/** False when the token is unknown. Revoking twice keeps the first revocation time. */
export async function revokeToken(db: Db, id: string, now: Date): Promise<boolean> {
  const rows = await db.query(
    'UPDATE enrollment_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING id',
    [id, now],
  );
  return rows.length > 0;
}

/** Checks `secret` and takes one use; returns the token as it is after that use. */
export async function consumeToken(db: Db, id: string, secret: string, now: Date): Promise<TokenRow> {
  const token = await getToken(db, id);
  // One code for "no such id" and "wrong secret", and the state of a token is only
  // revealed to someone who holds its secret.
  if (token === null || !secretMatches(token.secretSha256, secret)) {
    throw new GridError('GG_ERR_TOKEN_INVALID', `enrollment token ${id}: unknown token or wrong secret`);
  }
  const refused = refusal(token, now);
  if (refused !== null) throw refused;
  // The conditional UPDATE is the atomic step: PostgreSQL re-checks the WHERE clause
  // on the locked row, so of several concurrent consumers only as many as there are
  // uses left get a row back.
  const rows = await db.query(
    `UPDATE enrollment_tokens SET uses = uses + 1
     WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 AND uses < max_uses RETURNING *`,
    [id, now],
  );
  if (rows[0] !== undefined) return TokenRow.parse(rows[0]);
  // Lost a race to another consumer (or to an admin's revoke) since the read above.
  const after = await getToken(db, id);
  const lost = after === null ? null : refusal(after, now);
  if (lost === null) throw new Error(`invariant: token ${id} is usable but the conditional update matched no row`);
  throw lost;
}

export async function getToken(db: Db, id: string): Promise<TokenRow | null> {
  const rows = await db.query('SELECT * FROM enrollment_tokens WHERE id = $1', [id]);
  return rows[0] === undefined ? null : TokenRow.parse(rows[0]);
}

function secretMatches(storedSha256: string, secret: string): boolean {
  const presented = createHash('sha256').update(secret, 'utf8').digest();
  return timingSafeEqual(presented, Buffer.from(storedSha256, 'hex'));
}

function refusal(t: TokenRow, now: Date): GridError | null {
  if (t.revokedAt !== null) {
    return new GridError('GG_ERR_TOKEN_REVOKED', `enrollment token ${t.id} was revoked at ${t.revokedAt.toISOString()}`);
  }
  if (t.expiresAt <= now) {
    return new GridError('GG_ERR_TOKEN_EXPIRED', `enrollment token ${t.id} expired at ${t.expiresAt.toISOString()}`);
  }
  if (t.uses >= t.maxUses) {
    return new GridError('GG_ERR_TOKEN_USED_UP', `enrollment token ${t.id} has been used ${t.uses} of ${t.maxUses} times`);
  }
  return null;
}
