/**
 * Every bad input the foundation must survive: each gets a clear error, and a
 * healthy worker connected to the same coordinator stays online throughout.
 */
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenInfo } from '../../src/protocol/api.js';
import { COORDINATOR_SERVER_NAME, PROTOCOL_VERSION } from '../../src/protocol/messages.js';
import { connectRaw, helloFrame } from '../helpers/raw-worker.js';
import { formatEnrollmentToken, parseEnrollmentToken } from '../../src/protocol/token.js';
import { createToken } from '../../src/coordinator/store/index.js';
import { sha256Hex } from '../../src/coordinator/enrollment.js';
import { sendRequest } from '../../src/transport/https-client.js';
import type { QuicClientConnection } from '../../src/transport/quic.js';
import { createCa, createKeyAndCsr, issueServerCert, signCsr, type CaMaterial } from '../../src/transport/pki.js';
import { enroll } from '../../src/worker/enroll.js';
import type { WorkerIdentity } from '../../src/worker/identity.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';

let c: TestCoordinator;
let healthy: Awaited<ReturnType<typeof startTestWorker>>;
let healthyWentOffline = false;
let otherCa: CaMaterial;

beforeAll(async () => {
  c = await startTestCoordinator();
  otherCa = await createCa({ commonName: 'someone else' });
  healthy = await startTestWorker(c, { token: await c.createToken() });
  await healthy.agent.waitFor('online');
  c.parts.sessions.on('offline', (id) => {
    if (id === healthy.identity.workerId) healthyWentOffline = true;
  });
});

afterAll(async () => {
  expect(healthyWentOffline, 'the healthy worker was disturbed by bad input').toBe(false);
  await healthy.agent.stop();
  await c.stop();
  await removeTempDirs();
});

const address = () => ({ host: '127.0.0.1', port: c.port });

describe('enrollment tokens', () => {
  it('refuses a wrong secret with GG_ERR_TOKEN_INVALID', async () => {
    const t = parseEnrollmentToken(await c.createToken());
    const wrong = formatEnrollmentToken({ ...t, secret: 'A'.repeat(22) });
    await expect(enroll({ dataDir: await tempDir(), coordinator: address(), token: wrong })).rejects.toMatchObject({ code: 'GG_ERR_TOKEN_INVALID' });
  });

  it('refuses an expired token with GG_ERR_TOKEN_EXPIRED', async () => {
    const secret = 'B'.repeat(22);
    const past = new Date(Date.now() - 60_000);
    await createToken(c.parts.db, { id: 'expired1', secretSha256: sha256Hex(secret), description: '', expiresAt: past, maxUses: 1, now: new Date(past.getTime() - 60_000) });
    const token = formatEnrollmentToken({ id: 'expired1', secret, caFingerprint: c.ca.fingerprint });
    await expect(enroll({ dataDir: await tempDir(), coordinator: address(), token })).rejects.toMatchObject({ code: 'GG_ERR_TOKEN_EXPIRED' });
  });

  it('refuses a used-up token with GG_ERR_TOKEN_USED_UP', async () => {
    const token = await c.createToken({ maxUses: 1 });
    await enroll({ dataDir: await tempDir(), coordinator: address(), token });
    await expect(enroll({ dataDir: await tempDir(), coordinator: address(), token })).rejects.toMatchObject({ code: 'GG_ERR_TOKEN_USED_UP' });
  });

  it('refuses a revoked token with GG_ERR_TOKEN_REVOKED', async () => {
    const token = await c.createToken();
    const info = TokenInfo.parse(await c.api('DELETE', `/v1/tokens/${parseEnrollmentToken(token).id}`));
    expect(info.status).toBe('revoked');
    await expect(enroll({ dataDir: await tempDir(), coordinator: address(), token })).rejects.toMatchObject({ code: 'GG_ERR_TOKEN_REVOKED' });
  });

  it('refuses a malformed token before contacting anyone', async () => {
    await expect(enroll({ dataDir: await tempDir(), coordinator: { host: '127.0.0.1', port: 9 }, token: 'gg1.nope' })).rejects.toMatchObject({
      code: 'GG_ERR_TOKEN_MALFORMED',
    });
  });
});

describe('a coordinator whose CA does not match the token', () => {
  it('is refused before the secret is sent', async () => {
    // An impostor with its own CA that records what it is sent.
    const impostorCert = await issueServerCert(otherCa, { dnsNames: [COORDINATOR_SERVER_NAME] });
    const seen: string[] = [];
    const impostor = Fastify({ https: { key: impostorCert.keyPem, cert: impostorCert.certPem } });
    impostor.addHook('onRequest', async (req) => {
      seen.push(`${req.method} ${req.url}`);
    });
    impostor.get('/v1/enroll/ca', async () => ({ caPem: otherCa.certPem }));
    impostor.post('/v1/enroll', async () => ({}));
    await impostor.listen({ host: '127.0.0.1', port: 0 });
    try {
      const port = (impostor.server.address() as { port: number }).port;
      const token = await c.createToken();
      await expect(enroll({ dataDir: await tempDir(), coordinator: { host: '127.0.0.1', port }, token })).rejects.toMatchObject({
        code: 'GG_ERR_CA_MISMATCH',
        // Both in the one form a person compares: the token's own last part.
        message: expect.stringContaining(`but the token expects sha256:${token.split('.')[3]};`),
      });
      expect(seen).toEqual(['GET /v1/enroll/ca']);
    } finally {
      await impostor.close();
    }
  });
});

describe('QUIC clients without a valid identity', () => {
  async function refusedAtTls(tls: { caPem: string; certPem?: string; keyPem?: string }): Promise<void> {
    const conn = await connect(tls);
    try {
      await conn.channel.send({ type: 'hello' });
      await expect(drain(conn)).rejects.toMatchObject({ code: 'GG_ERR_UNAUTHENTICATED' });
    } finally {
      await conn.close();
    }
  }

  it('refuses a client with no certificate', async () => {
    await refusedAtTls({ caPem: c.ca.material.certPem });
  });

  it('refuses a client whose certificate comes from another CA', async () => {
    const { keyPem, csrPem } = await createKeyAndCsr(healthy.identity.workerId);
    const certPem = await signCsr(otherCa, csrPem, { workerId: healthy.identity.workerId, validityDays: 1 });
    await refusedAtTls({ caPem: c.ca.material.certPem, certPem, keyPem });
  });

  it('refuses a valid certificate whose worker the coordinator has no record of', async () => {
    const { keyPem, csrPem } = await createKeyAndCsr('w-ghost');
    const certPem = await signCsr(c.ca.material, csrPem, { workerId: 'w-ghost', validityDays: 1 });
    const conn = await connect({ caPem: c.ca.material.certPem, certPem, keyPem });
    await conn.channel.send(await hello('w-ghost'));
    expect(await errorCode(conn)).toBe('GG_ERR_WORKER_UNKNOWN');
  });
});

describe('bad frames from an enrolled worker', () => {
  let identity: WorkerIdentity;
  beforeAll(async () => {
    identity = await enroll({ dataDir: await tempDir(), coordinator: address(), token: await c.createToken() });
  });

  const cases: [string, (id: string) => Promise<unknown>, string][] = [
    ['an invalid hello (no hardware)', async (id) => ({ ...(await hello(id)), hardware: undefined }), 'GG_ERR_FRAME_INVALID'],
    ['an unknown message type', async () => ({ type: 'job.steal', jobId: 'x' }), 'GG_ERR_MESSAGE_UNKNOWN'],
    ['a heartbeat before hello', async () => ({ type: 'heartbeat', status: 'idle', load: { cpu: 0, freeMemoryBytes: 0 } }), 'GG_ERR_MESSAGE_UNEXPECTED'],
    ['an unsupported protocol version', async (id) => ({ ...(await hello(id)), protocolVersion: PROTOCOL_VERSION + 41 }), 'GG_ERR_PROTOCOL_VERSION_UNSUPPORTED'],
    ['a hello naming another worker', async () => hello(healthy.identity.workerId), 'GG_ERR_UNAUTHENTICATED'],
    ['a frame over the size limit', async () => ({ type: 'hello', pad: 'x'.repeat(2 * 1024 * 1024) }), 'GG_ERR_FRAME_TOO_LARGE'],
  ];

  it.each(cases)('answers %s with an error frame and closes', async (_name, frame, code) => {
    const conn = await connect({ caPem: identity.caPem, certPem: identity.certPem, keyPem: identity.keyPem }, { maxFrameBytes: 4 * 1024 * 1024 });
    // The coordinator may stop reading mid-frame (an oversized one), so the send itself can fail.
    await conn.channel.send(await frame(identity.workerId)).catch(() => undefined);
    expect(await errorCode(conn)).toBe(code);
    await conn.closed;
  });

  it('answers a frame that is not a JSON message after a valid hello', async () => {
    const conn = await connect({ caPem: identity.caPem, certPem: identity.certPem, keyPem: identity.keyPem });
    await conn.channel.send(await hello(identity.workerId));
    await conn.channel.send(['not', 'a', 'message']);
    expect(await errorCode(conn)).toBe('GG_ERR_MESSAGE_UNKNOWN');
  });
});

describe('the HTTP API', () => {
  const call = (path: string, init: { method?: 'GET' | 'POST' | 'DELETE'; body?: unknown; key?: string | null } = {}) =>
    sendRequest({
      url: `${c.apiUrl}${path}`,
      method: init.method,
      body: init.body,
      ca: c.ca.material.certPem,
      headers: init.key === null ? {} : { authorization: `Bearer ${init.key ?? c.adminKey}` },
    });

  it('refuses calls without an API key, or with a wrong one', async () => {
    expect(await call('/v1/workers', { key: null })).toMatchObject({ status: 401, body: { error: { code: 'GG_ERR_UNAUTHENTICATED' } } });
    expect(await call('/v1/workers', { key: 'ggk_wrong' })).toMatchObject({ status: 401, body: { error: { code: 'GG_ERR_UNAUTHENTICATED' } } });
  });

  it('names the bad field of a malformed body', async () => {
    const res = await call('/v1/tokens', { method: 'POST', body: { ttlSecs: -5 } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: { code: 'GG_ERR_BAD_REQUEST', message: expect.stringMatching(/^ttlSecs:/) } });
  });

  it('answers an enrollment with a missing CSR with 400, spending nothing', async () => {
    const t = parseEnrollmentToken(await c.createToken());
    const res = await call('/v1/enroll', { method: 'POST', key: null, body: { tokenId: t.id, tokenSecret: t.secret, proposedWorkerId: 'w-x', name: 'x' } });
    expect(res).toMatchObject({ status: 400, body: { error: { code: 'GG_ERR_BAD_REQUEST', message: expect.stringMatching(/csrPem/) } } });
    const tokens = (await c.api<{ id: string; uses: number }[]>('GET', '/v1/tokens')).find((x) => x.id === t.id);
    expect(tokens?.uses).toBe(0);
  });

  it('spends no use of a token on an enrollment that fails after the token was checked', async () => {
    const t = parseEnrollmentToken(await c.createToken({ maxUses: 1 }));
    const body = { tokenId: t.id, tokenSecret: t.secret, proposedWorkerId: 'w-x', name: 'x' };
    expect(await call('/v1/enroll', { method: 'POST', key: null, body: { ...body, csrPem: 'not a CSR' } })).toMatchObject({ status: 400, body: { error: { code: 'GG_ERR_CSR_INVALID' } } });
    const tokens = (await c.api<{ id: string; uses: number }[]>('GET', '/v1/tokens')).find((x) => x.id === t.id);
    expect(tokens?.uses).toBe(0);
    // The token still enrolls a worker afterwards.
    await enroll({ dataDir: await tempDir(), coordinator: address(), token: formatEnrollmentToken(t) });
  });

  it('answers an unknown route with GG_ERR_NOT_FOUND', async () => {
    expect(await call('/v1/nothing')).toMatchObject({ status: 404, body: { error: { code: 'GG_ERR_NOT_FOUND' } } });
  });
});

// ---------------------------------------------------------------- helpers

const connect = (tls: { caPem: string; certPem?: string; keyPem?: string }, opts: { maxFrameBytes?: number } = {}) => connectRaw(c.port, tls, opts);
const hello = (workerId: string) => helloFrame(workerId);

async function drain(conn: QuicClientConnection): Promise<unknown[]> {
  const frames: unknown[] = [];
  for await (const f of conn.channel.frames()) frames.push(f);
  return frames;
}

/** The code of the fatal error frame the coordinator sends before it hangs up. */
async function errorCode(conn: QuicClientConnection): Promise<string | undefined> {
  const frames = await drain(conn);
  const error = frames.find((f): f is { type: 'error'; code: string; fatal: boolean } => (f as { type?: string }).type === 'error');
  expect(error?.fatal).toBe(true);
  return error?.code;
}
