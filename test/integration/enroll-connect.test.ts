/**
 * The foundation end to end on loopback: enrollment over HTTPS, the mTLS
 * session, heartbeats, revocation, duplicate sessions, max_connections; the
 * session tests on each transport (QUIC, and TLS on TCP for networks that drop UDP).
 */
import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkerInfo, WorkerList, TokenList } from '../../src/protocol/api.js';
import { ERROR_CODES } from '../../src/protocol/errors.js';
import { enroll } from '../../src/worker/enroll.js';
import { WorkerAgent } from '../../src/worker/agent.js';
import { loadIdentity } from '../../src/worker/identity.js';
import { collectHardware, sampleLoad } from '../../src/worker/hardware.js';
import { probeLlmRuntime } from '../../src/worker/executors/llm-probe.js';
import { removeTempDirs, silent, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { within } from '../helpers/within.js';
import { rawWorker } from '../helpers/raw-worker.js';

let c: TestCoordinator;

beforeAll(async () => {
  c = await startTestCoordinator();
});
afterAll(async () => {
  await c.stop();
  await removeTempDirs();
});

async function workerInfo(id: string): Promise<WorkerInfo> {
  return WorkerInfo.parse(await c.api('GET', `/v1/workers/${id}`));
}

describe.each(['quic', 'tcp'] as const)('over %s', (transport) => {
  describe('enroll and connect', () => {
    it('enrolls with a token, connects with mutual TLS and shows online with its hardware and transport', async () => {
      const token = await c.createToken();
      const w = await startTestWorker(c, { token, name: 'bench-box', transport });
      await w.agent.waitFor('online');
      const info = await workerInfo(w.identity.workerId);
      expect(info).toMatchObject({ state: 'online', name: 'bench-box', appVersion: '0.0.0-test', transport });
      expect(info.hardware?.cpu.threads).toBeGreaterThan(0);
      expect(info.hardware?.memory.totalBytes).toBeGreaterThan(0);
      expect(info.hardware?.os.platform).toBe(process.platform);
      // What llama.cpp itself found (here the CPU only, unless the machine has a GPU it can use).
      expect(info.hardware?.llm).toBeTruthy();
      expect(info.hardware?.llm).toEqual(await probeLlmRuntime());
      const listed = WorkerList.parse(await c.api('GET', '/v1/workers'));
      expect(listed.map((x) => x.id)).toContain(w.identity.workerId);

      // The private key and certificate are the worker's alone.
      for (const f of ['worker.key', 'worker.crt']) {
        expect((await stat(join(w.dataDir, f))).mode & 0o777, f).toBe(0o600);
      }
      // The heartbeat keeps last_seen moving.
      const before = info.lastSeen!;
      await expect.poll(async () => (await workerInfo(w.identity.workerId)).lastSeen, { timeout: 5000 }).not.toBe(before);
      await w.agent.stop();
      await expect.poll(async () => (await workerInfo(w.identity.workerId)).state).toBe('offline');
    });

    it('reconnects with the stored identity without a token and without spending one', async () => {
      const token = await c.createToken({ maxUses: 5 });
      const first = await startTestWorker(c, { token, transport });
      await first.agent.waitFor('online');
      await first.agent.stop();

      const again = await startTestWorker(c, { dataDir: first.dataDir, transport });
      expect(again.enrolled).toBe(false);
      await again.agent.waitFor('online');
      expect(again.identity.workerId).toBe(first.identity.workerId);

      // The same command with the token again (a service unit) does not enroll twice either.
      await again.agent.stop();
      const third = await startTestWorker(c, { dataDir: first.dataDir, token, transport });
      expect(third.enrolled).toBe(false);
      await third.agent.waitFor('online');
      await third.agent.stop();
      const tokens = TokenList.parse(await c.api('GET', '/v1/tokens'));
      expect(tokens.find((t) => token.includes(`.${t.id}.`))?.uses).toBe(1);
    });

    it('gives a fresh id when the proposed one belongs to another worker', async () => {
      const a = await startTestWorker(c, { token: await c.createToken(), transport });
      await a.agent.waitFor('online');
      // A copy of a's worker.json without its key: a second machine claiming a's id.
      const b = await tempDir();
      const { writeFile } = await import('node:fs/promises');
      await writeFile(join(b, 'worker.json'), await readFile(join(a.dataDir, 'worker.json'), 'utf8'), { mode: 0o600 });
      const id = await enroll({ dataDir: b, coordinator: { host: '127.0.0.1', port: c.port }, token: await c.createToken() });
      expect(id.workerId).not.toBe(a.identity.workerId);
      expect((await workerInfo(a.identity.workerId)).state).toBe('online');
      await a.agent.stop();
    });
  });

  describe('revocation', () => {
    it('disconnects a revoked worker at once and refuses it afterwards', async () => {
      const w = await startTestWorker(c, { token: await c.createToken(), transport });
      await w.agent.waitFor('online');
      const failed = w.agent.waitFor('failed');
      const revoked = WorkerInfo.parse(await c.api('POST', `/v1/workers/${w.identity.workerId}/revoke`));
      expect(revoked.state).toBe('revoked');
      // Nothing but the revocation ends this healthy session: a revocation that kicks nobody never gets here.
      const event = await within(5000, 'the revoked worker disconnected', failed);
      expect(event.error?.code).toBe('GG_ERR_WORKER_REVOKED');

      const again = await startTestWorker(c, { dataDir: w.dataDir, transport });
      const refused = await within(5000, 'the revoked worker refused', again.agent.waitFor('failed'));
      expect(refused.error?.code).toBe('GG_ERR_WORKER_REVOKED');
      expect((await workerInfo(w.identity.workerId)).state).toBe('revoked');
    });

    it('answers 404 for revoking an unknown worker', async () => {
      await expect(c.api('POST', '/v1/workers/w-nope/revoke')).rejects.toMatchObject({ code: 'GG_ERR_NOT_FOUND' });
    });
  });

  describe('a second connection with the same certificate', () => {
    it('replaces the first: the newest connection wins and the old agent stops for good', async () => {
      const w = await startTestWorker(c, { token: await c.createToken(), transport });
      await w.agent.waitFor('online');
      const identity = (await loadIdentity(w.dataDir))!;
      const twin = new WorkerAgent({
        dataDir: w.dataDir,
        identity,
        appVersion: 'twin',
        logger: silent,
        probes: { hardware: () => collectHardware(), load: () => sampleLoad() },
        maxIdleTimeoutMs: 1500,
        transport,
      });
      const replaced = w.agent.waitFor('failed');
      twin.start();
      await within(10_000, 'the twin online', twin.waitFor('online'));
      expect((await within(10_000, 'the first agent replaced', replaced)).error?.code).toBe('GG_ERR_SESSION_REPLACED');
      const info = await workerInfo(identity.workerId);
      expect(info).toMatchObject({ state: 'online', appVersion: 'twin' });
      await twin.stop();
    });
  });

  describe('heartbeat timeout', () => {
    it('keeps a worker online while its load probe hangs: a heartbeat never waits for a probe', async () => {
      let hung = false;
      const w = await startTestWorker(c, {
        token: await c.createToken(),
        probes: { hardware: () => collectHardware(), load: () => (hung ? new Promise(() => undefined) : sampleLoad()) },
        transport,
      });
      await w.agent.waitFor('online');
      let wentOffline = false;
      const onOffline = (id: string) => (wentOffline ||= id === w.identity.workerId);
      c.parts.sessions.on('offline', onOffline);
      hung = true;
      const hungAt = Date.now();
      try {
        // Heartbeats still arriving well past the 1.5 s timeout: the worker was never dropped.
        await expect.poll(async () => Date.parse((await workerInfo(w.identity.workerId)).lastSeen ?? ''), { timeout: 10_000 }).toBeGreaterThan(hungAt + 3000);
        expect(wentOffline).toBe(false);
        expect((await workerInfo(w.identity.workerId)).state).toBe('online');
      } finally {
        c.parts.sessions.off('offline', onOffline);
        await w.agent.stop();
      }
    });

    it('drops a worker that says hello and then goes silent, with a retryable GG_ERR_HEARTBEAT_TIMEOUT', async () => {
      const identity = await enroll({ dataDir: await tempDir(), coordinator: { host: '127.0.0.1', port: c.port }, token: await c.createToken() });
      const w = await rawWorker(c, identity, { executors: [], slots: 0 }, transport);
      const started = Date.now();
      const error = await w.next('error');
      expect(error).toMatchObject({ code: 'GG_ERR_HEARTBEAT_TIMEOUT', fatal: true });
      // The agent reconnects after a retryable error (test/worker/agent.test.ts); this one is.
      expect(ERROR_CODES.GG_ERR_HEARTBEAT_TIMEOUT.retryable).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      await w.conn.closed;
    });
  });

  describe('certificate renewal', () => {
    it('renews a client certificate past half its life over the authenticated channel', async () => {
      // 20 s certificates: at connect the worker's has less than half its life left (notBefore is back-dated a day for clock skew).
      const short = await startTestCoordinator({ certValidityDays: 20 / 86_400 });
      try {
        const w = await startTestWorker(short, { token: await short.createToken(), transport });
        const enrolledCert = w.identity.certPem;
        await w.agent.waitFor('online');
        await expect.poll(async () => (await readFile(join(w.dataDir, 'worker.crt'), 'utf8')) !== enrolledCert, { timeout: 5000 }).toBe(true);
        const renewed = await readFile(join(w.dataDir, 'worker.crt'), 'utf8');
        const { readCert } = await import('../../src/transport/pki.js');
        const info = WorkerInfo.parse(await short.api('GET', `/v1/workers/${w.identity.workerId}`));
        expect(info.certNotAfter).toBe(readCert(renewed).notAfter.toISOString());
        expect(readCert(renewed).subjectCommonName).toBe(w.identity.workerId);
        // The renewed certificate is good for the next connection.
        await w.agent.stop();
        const again = await startTestWorker(short, { dataDir: w.dataDir, transport });
        await again.agent.waitFor('online');
        await again.agent.stop();
      } finally {
        await short.stop();
      }
    });
  });

  describe('max_connections', () => {
    it('refuses connections over the limit with GG_ERR_TOO_MANY_CONNECTIONS and keeps serving the others', async () => {
      const small = await startTestCoordinator({ maxConnections: 1 });
      try {
        const a = await startTestWorker(small, { token: await small.createToken(), transport });
        await a.agent.waitFor('online');
        const b = await startTestWorker(small, { token: await small.createToken(), transport });
        const waiting = await b.agent.waitFor('waiting');
        expect(waiting.detail).toMatch(/reconnecting/);
        expect(b.agent.state.state).not.toBe('online');
        // Once a leaves, b gets in.
        await a.agent.stop();
        await b.agent.waitFor('online');
        await b.agent.stop();
      } finally {
        await small.stop();
      }
    });
  });
});
