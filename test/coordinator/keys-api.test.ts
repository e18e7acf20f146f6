/**
 * API keys against a real coordinator on loopback HTTPS: an admin creates,
 * lists and revokes keys; an inference key is refused on every admin route
 * and taken on the inference routes (stand-ins here, checked by the same
 * hook the coordinator uses, until the OpenAI-compatible routes exist); a
 * revoked key fails on its next request; the last admin key stays.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyList, CreatedApiKey, type ApiKeyScope } from '../../src/protocol/index.js';
import { requestJson } from '../../src/transport/https-client.js';
import { apiKeyCheck, INFERENCE_ROUTES, WrongSecrets } from '../../src/coordinator/http-auth.js';
import { answerErrors } from '../../src/common/http-errors.js';
import { removeTempDirs, startTestCoordinator, type TestCoordinator } from '../helpers/grid.js';
import { rawRequest } from '../helpers/https-raw.js';

let c: TestCoordinator;
/** The coordinator's own key check on the coordinator's store, with a stand-in for each inference route and one admin route. */
let standIn: FastifyInstance;

beforeAll(async () => {
  c = await startTestCoordinator();
  standIn = Fastify();
  answerErrors(standIn, 'coordinator');
  const check = apiKeyCheck(c.parts.db, new WrongSecrets());
  for (const route of [...INFERENCE_ROUTES, 'GET /v1/workers']) {
    const [method, url] = route.split(' ') as ['GET' | 'POST', string];
    standIn.route({ method, url, onRequest: check, handler: async () => ({ ok: route }) });
  }
  await standIn.ready();
});
afterAll(async () => {
  await standIn?.close();
  await c.stop();
  await removeTempDirs();
});

function call(key: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
  return requestJson({ url: `${c.apiUrl}${path}`, method, body, ca: c.ca.material.certPem, headers: { authorization: `Bearer ${key}` } });
}

async function createKey(scope: ApiKeyScope, name = ''): Promise<CreatedApiKey> {
  return CreatedApiKey.parse(await c.api('POST', '/v1/keys', { scope, name }));
}

async function standInCall(key: string, route: string): Promise<{ status: number; code?: string }> {
  const [method, url] = route.split(' ') as ['GET' | 'POST', string];
  const res = await standIn.inject({ method, url, headers: { authorization: `Bearer ${key}` } });
  return { status: res.statusCode, code: (res.json() as { error?: { code: string } }).error?.code };
}

describe('keys', () => {
  it('are created with a scope and a name, shown once, listed without the key', async () => {
    const created = await createKey('inference', 'chat app');
    expect(created.key).toMatch(/^ggk_[A-Za-z0-9_-]{43}$/);
    expect(created.info).toMatchObject({ name: 'chat app', scope: 'inference', status: 'active', lastUsedAt: null, revokedAt: null });
    const list = ApiKeyList.parse(await c.api('GET', '/v1/keys'));
    expect(list.map((k) => k.id)).toEqual(['admin', created.info.id]);
    expect(list[0]).toMatchObject({ name: 'admin.key', scope: 'admin', status: 'active' });
    expect(JSON.stringify(list)).not.toContain(created.key);
  });

  it('need a scope the coordinator knows', async () => {
    await expect(c.api('POST', '/v1/keys', { scope: 'root' })).rejects.toMatchObject({ code: 'GG_ERR_BAD_REQUEST', message: expect.stringMatching(/scope/) });
    await expect(c.api('POST', '/v1/keys', {})).rejects.toMatchObject({ code: 'GG_ERR_BAD_REQUEST' });
  });
});

describe('an inference key', () => {
  let key: CreatedApiKey;
  beforeAll(async () => {
    key = await createKey('inference');
  });

  it('is refused with 403 GG_ERR_KEY_SCOPE on every admin route, naming what it may call', async () => {
    const routes: ['GET' | 'POST' | 'PUT' | 'DELETE', string, unknown?][] = [
      ['GET', '/v1/workers'],
      ['GET', '/v1/keys'],
      ['POST', '/v1/keys', { scope: 'admin' }],
      ['DELETE', `/v1/keys/${key.info.id}`],
      ['POST', '/v1/tokens', {}],
      ['GET', '/v1/jobs'],
      ['GET', `/v1/models/${'a'.repeat(64)}/info`],
      ['GET', `/v1/models/${'a'.repeat(64)}`],
      ['GET', '/v1/policy'],
      ['GET', '/updates/stable/latest.yml'],
    ];
    for (const [method, path, body] of routes) {
      await expect(call(key.key, method, path, body), `${method} ${path}`).rejects.toMatchObject({
        code: 'GG_ERR_KEY_SCOPE',
        message: expect.stringContaining('POST /v1/chat/completions'),
      });
    }
    const res = await rawRequest({ url: `${c.apiUrl}/v1/workers`, ca: c.ca.material.certPem, headers: { authorization: `Bearer ${key.key}` } });
    expect(res.status).toBe(403);
    // It could not make itself an admin key, nor revoke itself.
    expect(ApiKeyList.parse(await c.api('GET', '/v1/keys')).filter((k) => k.scope === 'admin')).toHaveLength(1);
  });

  it('may call every inference route, and only those; an admin key may call all of them', async () => {
    const admin = await createKey('admin');
    for (const route of INFERENCE_ROUTES) {
      expect(await standInCall(key.key, route), route).toEqual({ status: 200 });
      expect(await standInCall(admin.key, route), route).toEqual({ status: 200 });
    }
    expect(await standInCall(key.key, 'GET /v1/workers')).toEqual({ status: 403, code: 'GG_ERR_KEY_SCOPE' });
    expect(await standInCall(admin.key, 'GET /v1/workers')).toEqual({ status: 200 });
    await c.api('DELETE', `/v1/keys/${admin.info.id}`);
  });

  it('shows when it was last used', async () => {
    const unused = await createKey('inference');
    await standInCall(key.key, 'POST /v1/chat/completions');
    const list = ApiKeyList.parse(await c.api('GET', '/v1/keys'));
    expect(Date.parse(list.find((k) => k.id === key.info.id)!.lastUsedAt!)).toBeGreaterThan(Date.now() - 60_000);
    expect(list.find((k) => k.id === unused.info.id)!.lastUsedAt).toBeNull();
  });
});

describe('revoking a key', () => {
  it('refuses it on its very next request, of either scope', async () => {
    const inference = await createKey('inference');
    const admin = await createKey('admin');
    expect(await standInCall(inference.key, 'POST /v1/embeddings')).toEqual({ status: 200 });
    await call(admin.key, 'GET', '/v1/workers');

    expect(await c.api('DELETE', `/v1/keys/${inference.info.id}`)).toMatchObject({ id: inference.info.id, status: 'revoked' });
    expect(await standInCall(inference.key, 'POST /v1/embeddings')).toEqual({ status: 401, code: 'GG_ERR_UNAUTHENTICATED' });

    await call(admin.key, 'DELETE', `/v1/keys/${admin.info.id}`);
    await expect(call(admin.key, 'GET', '/v1/workers')).rejects.toMatchObject({ code: 'GG_ERR_UNAUTHENTICATED', message: expect.stringMatching(/revoked/) });
  });

  it('is refused for the last admin key with GG_ERR_LAST_ADMIN_KEY, and for no key with GG_ERR_NOT_FOUND', async () => {
    const active = ApiKeyList.parse(await c.api('GET', '/v1/keys')).filter((k) => k.scope === 'admin' && k.status === 'active');
    expect(active.map((k) => k.id)).toEqual(['admin']);
    await expect(c.api('DELETE', '/v1/keys/admin')).rejects.toMatchObject({ code: 'GG_ERR_LAST_ADMIN_KEY' });
    await expect(c.api('DELETE', '/v1/keys/k-none')).rejects.toMatchObject({ code: 'GG_ERR_NOT_FOUND' });
    await c.api('GET', '/v1/workers');
  });

  it('lets the admin key go once another admin key exists', async () => {
    const next = await createKey('admin', 'ops');
    await call(next.key, 'DELETE', '/v1/keys/admin');
    await expect(c.api('GET', '/v1/workers')).rejects.toMatchObject({ code: 'GG_ERR_UNAUTHENTICATED' });
    await expect(call(next.key, 'DELETE', `/v1/keys/${next.info.id}`)).rejects.toMatchObject({ code: 'GG_ERR_LAST_ADMIN_KEY' });
  });
});
