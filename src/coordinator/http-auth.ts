/**
 * Who is calling the HTTPS API.
 *
 * A key holder: `Authorization: Bearer <key>`, whose sha256 the store holds.
 * An `admin` key may call every route that takes a key; an `inference` key
 * only the routes in INFERENCE_ROUTES, so an application that talks to the
 * OpenAI-compatible API never holds a key that can enroll or revoke workers;
 * a `metrics` key only `GET /metrics`.
 * The store is asked on every request: a revoked key fails on its next one,
 * also on another coordinator instance sharing the database.
 *
 * A worker: the client certificate TLS already checked against the
 * coordinator CA names the worker, and the store says whether it is still
 * enrolled. A certificate outlives a revocation; the store's answer does not.
 *
 *   admin.addHook('onRequest', apiKeyCheck(db, wrongSecrets));            // throws GG_ERR_UNAUTHENTICATED / GG_ERR_KEY_SCOPE / GG_ERR_RATE_LIMITED
 *   const workerId = await workerFromCertificate(req, isWorkerAllowed); // throws GG_ERR_UNAUTHENTICATED / GG_ERR_WORKER_REVOKED
 */
import { TLSSocket } from 'node:tls';
import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { GridError, type ApiKeyScope } from '../protocol/index.js';
import type { Db } from './store/db.js';
import { findApiKeyBySha256, markApiKeyUsed } from './store/index.js';
import { sha256Hex } from './enrollment.js';
import { ipKey, Throttle } from './ip-limits.js';

/**
 * The routes an `inference` key may call, as `METHOD /route/template`: the
 * whole of what such a key can do. The OpenAI-format model list joins them
 * once its route is settled (issue #13).
 */
export const INFERENCE_ROUTES: ReadonlySet<string> = new Set(['GET /v1/models', 'POST /v1/chat/completions', 'POST /v1/completions', 'POST /v1/embeddings']);

/** What each scope but `admin` may call: a scrape key in a Prometheus configuration can read metrics, nothing else. */
const ROUTES_OF_SCOPE: Record<Exclude<ApiKeyScope, 'admin'>, ReadonlySet<string>> = { inference: INFERENCE_ROUTES, metrics: new Set(['GET /metrics']) };

/** A key's use is written when the stored one is older than this: `keys list` is right to within it, at one write per key per interval. */
const LAST_USED_PRECISION_MS = 60_000;

/** The key each request that passed apiKeyCheck came with. A WeakMap rather than a request decoration: nothing outside this file writes it. */
const callers = new WeakMap<FastifyRequest, string>();

/** The id of the API key `req` was authorized with; only on routes behind apiKeyCheck. */
export function callerKeyId(req: FastifyRequest): string {
  const id = callers.get(req);
  if (id === undefined) throw new Error(`${req.method} ${req.url} did not pass apiKeyCheck`);
  return id;
}

/**
 * How many wrong secrets (enrollment tokens, API keys) are answered before
 * 429: from one address 20 at once, then one every 3 s; for one token id 10,
 * then one every 6 s. Secrets of 128 bits are not guessed either way: this
 * keeps a scanner's flood out of the CPU, the database and the log, and a
 * person who mistyped a token still gets through.
 */
export class WrongSecrets {
  readonly byAddress = new Throttle({ burst: 20, perSecond: 1 / 3 });
  readonly byToken = new Throttle({ burst: 10, perSecond: 1 / 6 });

  /** `refused` hears of each request answered 429 (the metrics). */
  constructor(private readonly refused: () => void = () => {}) {}

  /** Throws GG_ERR_RATE_LIMITED while `req`'s address (or `tokenId`) has no tries left. */
  check(req: FastifyRequest, tokenId?: string): void {
    const address = ipKey(req.ip);
    try {
      this.byAddress.check(address, `too many wrong enrollment tokens or API keys from ${address}`);
      if (tokenId !== undefined) this.byToken.check(tokenId, `too many wrong secrets for enrollment token ${tokenId}`);
    } catch (e) {
      this.refused();
      throw e;
    }
  }

  /** Counts a wrong secret against `req`'s address (and `tokenId`). */
  spend(req: FastifyRequest, tokenId?: string): void {
    this.byAddress.spend(ipKey(req.ip));
    if (tokenId !== undefined) this.byToken.spend(tokenId);
  }
}

export function apiKeyCheck(db: Db, wrongSecrets: WrongSecrets): (req: FastifyRequest) => Promise<void> {
  return async (req) => {
    const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    if (!match) throw new GridError('GG_ERR_UNAUTHENTICATED', 'missing API key: send "Authorization: Bearer <key>"');
    wrongSecrets.check(req);
    const hash = sha256Hex(match[1]!);
    const key = await findApiKeyBySha256(db, hash);
    // The lookup is by hash; compare again in constant time so a timing
    // difference in the index cannot leak how much of a hash matched.
    const expected = key ? Buffer.from(key.keySha256, 'hex') : Buffer.alloc(32);
    if (!key || !timingSafeEqual(expected, Buffer.from(hash, 'hex'))) {
      wrongSecrets.spend(req);
      throw new GridError('GG_ERR_UNAUTHENTICATED', 'API key is not valid');
    }
    if (key.revokedAt) {
      wrongSecrets.spend(req);
      throw new GridError('GG_ERR_UNAUTHENTICATED', `API key ${key.id} was revoked at ${key.revokedAt.toISOString()}`);
    }
    const route = `${req.method} ${req.routeOptions.url ?? ''}`;
    if (key.scope !== 'admin' && !ROUTES_OF_SCOPE[key.scope].has(route)) {
      const allowed = [...ROUTES_OF_SCOPE[key.scope]].join(', ');
      throw new GridError('GG_ERR_KEY_SCOPE', `API key ${key.id} is ${key.scope === 'inference' ? 'an' : 'a'} ${key.scope} key: it may call only ${allowed}; ${route} needs an admin key`);
    }
    callers.set(req, key.id);
    const now = new Date();
    if (!key.lastUsedAt || now.getTime() - key.lastUsedAt.getTime() >= LAST_USED_PRECISION_MS) await markApiKeyUsed(db, key.id, now);
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
