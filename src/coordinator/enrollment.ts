/**
 * Enrollment tokens and the enrollment itself: a token holder sends a CSR and
 * gets back a client certificate whose subject is its worker id.
 *
 *   const { token } = await createEnrollmentToken(db, ca, { ttlSecs: 3600, maxUses: 1, description: 'lab' });
 *   const reply = await enrollWorker(db, ca, request, { certValidityDays: 30 }); // throws GG_ERR_TOKEN_*
 */
import { randomBytes, createHash } from 'node:crypto';
import { formatEnrollmentToken, type CreateTokenRequest, type CreatedToken, type EnrollRequest, type EnrollResponse, type TokenInfo } from '../protocol/index.js';
import { readCert, signCsr } from '../transport/pki.js';
import type { CoordinatorCa } from './ca.js';
import type { Db } from './store/db.js';
import { consumeToken, createToken, getWorker, insertWorker, type TokenRow } from './store/index.js';

// 32 symbols, so `byte & 31` picks each with equal probability.
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

export async function createEnrollmentToken(db: Db, ca: CoordinatorCa, req: CreateTokenRequest, now = new Date()): Promise<CreatedToken> {
  const id = randomId(8);
  const secret = randomBytes(16).toString('base64url');
  const row = await createToken(db, {
    id,
    secretSha256: sha256Hex(secret),
    description: req.description,
    expiresAt: new Date(now.getTime() + req.ttlSecs * 1000),
    maxUses: req.maxUses,
    now,
  });
  return { token: formatEnrollmentToken({ id, secret, caFingerprint: ca.fingerprint }), info: toTokenInfo(row, now) };
}

export async function enrollWorker(
  db: Db,
  ca: CoordinatorCa,
  req: EnrollRequest,
  opts: { certValidityDays: number },
  now = new Date(),
): Promise<EnrollResponse> {
  // One transaction: a use of the token counts only if the worker it enrolls is
  // stored (a bad CSR or a refused row once used up a one-use token for nothing).
  return db.transaction(async (tx) => {
    await consumeToken(tx, req.tokenId, req.tokenSecret, now);
    // A worker keeps the id it already has, unless another worker (or a revoked
    // one) holds it: a token must never let one machine take over another's identity.
    const workerId = (await getWorker(tx, req.proposedWorkerId)) ? `w-${randomId(16)}` : req.proposedWorkerId;
    const certPem = await signCsr(ca.material, req.csrPem, { workerId, validityDays: opts.certValidityDays });
    const cert = readCert(certPem);
    await insertWorker(tx, { id: workerId, name: req.name, certFingerprint: cert.fingerprint, certNotAfter: cert.notAfter, tokenId: req.tokenId, now });
    return { workerId, certPem, caPem: ca.material.certPem };
  });
}

export function toTokenInfo(row: TokenRow, now = new Date()): TokenInfo {
  const status = row.revokedAt ? 'revoked' : row.expiresAt <= now ? 'expired' : row.uses >= row.maxUses ? 'used_up' : 'active';
  return {
    id: row.id,
    description: row.description,
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt.toISOString(),
    maxUses: row.maxUses,
    uses: row.uses,
    revokedAt: row.revokedAt?.toISOString() ?? null,
    status,
  };
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function randomId(length: number): string {
  const bytes = randomBytes(length);
  return Array.from(bytes, (b) => ID_ALPHABET[b & 31]).join('');
}
