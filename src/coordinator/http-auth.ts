/**
 * Who is calling the HTTPS API.
 *
 * An admin: `Authorization: Bearer <key>`, whose sha256 the store holds.
 * A key the store confirmed is remembered for a few seconds, so a busy
 * client costs a hash per request rather than a SELECT; a key not found is
 * asked for every time, so a key just created works at once. (Keys are never
 * deleted today; one that were would keep working for at most `ttlMs`.)
 *
 * A worker: the client certificate TLS already checked against the
 * coordinator CA names the worker, and the store says whether it is still
 * enrolled. A certificate outlives a revocation; the store's answer does not.
 *
 *   admin.addHook('onRequest', apiKeyCheck(db));                          // throws GG_ERR_UNAUTHENTICATED
 *   const workerId = await workerFromCertificate(req, isWorkerAllowed); // throws GG_ERR_UNAUTHENTICATED / GG_ERR_WORKER_REVOKED
 */
import { TLSSocket } from 'node:tls';
import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { GridError } from '../protocol/index.js';
import type { Db } from './store/db.js';
import { findApiKeyBySha256 } from './store/index.js';
import { sha256Hex } from './enrollment.js';

export interface ApiKeyCheckOptions {
  /** How long a confirmed key is taken without asking the store again. @default 10000 */
  ttlMs?: number;
  /** Confirmed keys remembered at most (the oldest is forgotten first). @default 1000 */
  maxKeys?: number;
}

export function apiKeyCheck(db: Db, opts: ApiKeyCheckOptions = {}): (req: FastifyRequest) => Promise<void> {
  const ttlMs = opts.ttlMs ?? 10_000;
  const maxKeys = opts.maxKeys ?? 1000;
  /** sha256 of a confirmed key → until when it is taken without asking the store. */
  const confirmed = new Map<string, number>();
  return async (req) => {
    const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    if (!match) throw new GridError('GG_ERR_UNAUTHENTICATED', 'missing API key: send "Authorization: Bearer <key>"');
    const hash = sha256Hex(match[1]!);
    const until = confirmed.get(hash);
    if (until !== undefined && until > Date.now()) return;
    confirmed.delete(hash);
    const row = await findApiKeyBySha256(db, hash);
    // The lookup is by hash; compare again in constant time so a timing
    // difference in the index cannot leak how much of a hash matched.
    const expected = row ? Buffer.from(row.keySha256, 'hex') : Buffer.alloc(32);
    if (!row || !timingSafeEqual(expected, Buffer.from(hash, 'hex'))) throw new GridError('GG_ERR_UNAUTHENTICATED', 'API key is not valid');
    if (confirmed.size >= maxKeys) confirmed.delete(confirmed.keys().next().value!);
    confirmed.set(hash, Date.now() + ttlMs);
  };
}

export async function workerFromCertificate(req: FastifyRequest, isWorkerAllowed: (workerId: string) => Promise<boolean>): Promise<string> {
  const socket = req.raw.socket;
  const peer = socket instanceof TLSSocket ? socket.getPeerCertificate() : null;
  if (!(socket instanceof TLSSocket) || !peer?.subject) {
    throw new GridError('GG_ERR_UNAUTHENTICATED', 'send a worker client certificate, or "Authorization: Bearer <key>"');
  }
  if (!socket.authorized) {
    throw new GridError('GG_ERR_UNAUTHENTICATED', `client certificate refused: ${String(socket.authorizationError ?? 'not issued by this coordinator')}`);
  }
  const workerId: unknown = peer.subject.CN;
  if (typeof workerId !== 'string' || workerId === '') throw new GridError('GG_ERR_UNAUTHENTICATED', 'client certificate names no worker');
  if (!(await isWorkerAllowed(workerId))) {
    throw new GridError('GG_ERR_WORKER_REVOKED', `worker ${workerId} is revoked or no longer enrolled; enroll it again with a new token`);
  }
  return workerId;
}
