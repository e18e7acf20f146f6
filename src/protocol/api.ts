/**
 * The coordinator's HTTPS API bodies, shared by the server (fastify routes)
 * and its clients (the worker's enrollment, the `gogrid` admin commands).
 * The `--json` output of `gogrid workers` and `gogrid token list` is exactly
 * these shapes, so they are part of the documented, stable interface.
 *
 *   const workers = WorkerList.parse(await api.get('/v1/workers'));
 */
import { z } from 'zod';
import { HardwareReport } from './messages.js';
import { TOKEN_ID_PATTERN, TOKEN_SECRET_PATTERN } from './token.js';

const isoDate = z.iso.datetime();

/** Every failed API call answers with this body and the code's HTTP status. */
export const ApiErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

// ---------------------------------------------------------------- enrollment (no API key: the token is the credential)

export const CaResponse = z.object({ caPem: z.string() });

export const EnrollRequest = z.object({
  tokenId: z.string().regex(TOKEN_ID_PATTERN),
  tokenSecret: z.string().regex(TOKEN_SECRET_PATTERN),
  csrPem: z.string().min(1).max(16_384),
  /** The id the worker already has in its data dir; used unless another worker holds it. */
  proposedWorkerId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  name: z.string().min(1).max(256),
});

export const EnrollResponse = z.object({
  /** Authoritative: the worker stores this id (it differs from the proposed one only on a clash). */
  workerId: z.string(),
  certPem: z.string(),
  caPem: z.string(),
});

// ---------------------------------------------------------------- tokens

export const CreateTokenRequest = z.object({
  /** Seconds until the token expires. */
  ttlSecs: z.number().int().positive().max(365 * 24 * 3600).default(24 * 3600),
  maxUses: z.number().int().positive().max(100_000).default(1),
  description: z.string().max(256).default(''),
});

export const TokenInfo = z.object({
  id: z.string(),
  description: z.string(),
  createdAt: isoDate,
  expiresAt: isoDate,
  maxUses: z.number().int(),
  uses: z.number().int(),
  revokedAt: isoDate.nullable(),
  /** Derived: `active` while usable, else why not. */
  status: z.enum(['active', 'expired', 'used_up', 'revoked']),
});

export const CreatedToken = z.object({ token: z.string(), info: TokenInfo });
export const TokenList = z.array(TokenInfo);

// ---------------------------------------------------------------- workers

export const WorkerState = z.enum(['online', 'offline', 'paused', 'revoked']);

export const WorkerInfo = z.object({
  id: z.string(),
  name: z.string(),
  state: WorkerState,
  /** Why the worker is paused, in words; null unless state is `paused`. */
  pausedReason: z.string().nullable(),
  lastSeen: isoDate.nullable(),
  enrolledAt: isoDate,
  appVersion: z.string().nullable(),
  hardware: HardwareReport.nullable(),
  certNotAfter: isoDate,
});

export const WorkerList = z.array(WorkerInfo);

export type ApiErrorBody = z.infer<typeof ApiErrorBody>;
export type EnrollRequest = z.infer<typeof EnrollRequest>;
export type EnrollResponse = z.infer<typeof EnrollResponse>;
export type CreateTokenRequest = z.infer<typeof CreateTokenRequest>;
export type TokenInfo = z.infer<typeof TokenInfo>;
export type CreatedToken = z.infer<typeof CreatedToken>;
export type WorkerState = z.infer<typeof WorkerState>;
export type WorkerInfo = z.infer<typeof WorkerInfo>;
