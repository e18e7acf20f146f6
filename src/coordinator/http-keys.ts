/**
 * API keys (registered inside buildHttpApi's authenticated scope; an admin
 * key's routes, as every route outside INFERENCE_ROUTES):
 *
 *   POST   /v1/keys      CreateApiKeyRequest → CreatedApiKey (the key, shown this once)
 *   GET    /v1/keys      → ApiKeyList (oldest first, revoked ones included)
 *   DELETE /v1/keys/:id  → ApiKeyInfo (GG_ERR_LAST_ADMIN_KEY for the last admin key)
 *
 *   registerKeyRoutes(admin, { db });
 *   const { key } = await issueApiKey(db, { scope: 'admin', name: 'admin.key' }); // what the first start does
 */
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { CreateApiKeyRequest, GridError, type ApiKeyInfo, type CreatedApiKey } from '../protocol/index.js';
import type { Db } from './store/db.js';
import { createApiKey, listApiKeys, revokeApiKey, type ApiKeyRow } from './store/index.js';
import { parseBody } from '../common/http-errors.js';
import { sha256Hex } from './enrollment.js';

/** A new key of `scope`; only its sha256 is stored. `id` is random unless given. */
export async function issueApiKey(db: Db, req: CreateApiKeyRequest & { id?: string }, now = new Date()): Promise<CreatedApiKey> {
  const key = `ggk_${randomBytes(32).toString('base64url')}`;
  const row = await createApiKey(db, { id: req.id ?? `k-${randomBytes(6).toString('hex')}`, keySha256: sha256Hex(key), name: req.name, scope: req.scope, now });
  return { key, info: toApiKeyInfo(row) };
}

export function toApiKeyInfo(row: ApiKeyRow): ApiKeyInfo {
  return {
    id: row.id,
    name: row.name,
    scope: row.scope,
    createdAt: row.createdAt.toISOString(),
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    revokedAt: row.revokedAt?.toISOString() ?? null,
    status: row.revokedAt ? 'revoked' : 'active',
  };
}

export function registerKeyRoutes(admin: FastifyInstance, deps: { db: Db }): void {
  const { db } = deps;

  admin.post('/v1/keys', async (req): Promise<CreatedApiKey> => {
    const created = await issueApiKey(db, parseBody(CreateApiKeyRequest, req.body ?? {}));
    req.log.info({ keyId: created.info.id, scope: created.info.scope }, 'API key created');
    return created;
  });

  admin.get('/v1/keys', async (): Promise<ApiKeyInfo[]> => (await listApiKeys(db)).map(toApiKeyInfo));

  admin.delete<{ Params: { id: string } }>('/v1/keys/:id', async (req): Promise<ApiKeyInfo> => {
    const row = await revokeApiKey(db, req.params.id, new Date());
    if (!row) throw new GridError('GG_ERR_NOT_FOUND', `no API key ${req.params.id}`);
    req.log.info({ keyId: row.id }, 'API key revoked');
    return toApiKeyInfo(row);
  });
}
