/**
 * Two coordinator instances sharing one PostgreSQL (run when
 * GOGRID_TEST_PG_URL is set; `.ci/run` starts one): a worker connected to
 * instance B is driven through instance A's API. The instances share the CA
 * files and the models directory, as a deployment must. Their scheduling
 * poll is set to a minute, so every step that finishes within seconds here
 * came through the cluster's notifications, not the poll.
 */
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertWorker, markOnline, openDb, type Db } from '../../src/coordinator/store/index.js';
import { JobInfo, WorkerList, type AdminOverride } from '../../src/protocol/index.js';
import { PG_URL } from '../helpers/backends.js';
import { SLOW, slowModel, writeOnnxFixtures, type OnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { within } from '../helpers/within.js';

const MINUTE = 60_000;

describe.runIf(PG_URL !== undefined)('two coordinator instances on one PostgreSQL', () => {
  let admin: Db | undefined;
  const schema = `gg_cluster_${process.pid}_${randomBytes(4).toString('hex')}`;
  let a: TestCoordinator;
  let b: TestCoordinator;
  let w: Awaited<ReturnType<typeof startTestWorker>>;
  let fixtures: OnnxFixtures;

  beforeAll(async () => {
    admin = await openDb(PG_URL!, { poolSize: 1 });
    await admin.exec(`CREATE SCHEMA ${schema}`);
    const url = new URL(PG_URL!);
    url.searchParams.set('options', `-c search_path=${schema}`);
    a = await startTestCoordinator({ databaseUrl: url.toString(), schedulerPollMs: MINUTE });
    // B is set up as an operator adds an instance: the same CA and admin key, the models directory shared.
    const bDir = await tempDir();
    for (const f of ['ca.crt', 'ca.key', 'admin.key']) await copyFile(join(a.dataDir, f), join(bDir, f));
    await mkdir(join(a.dataDir, 'models'), { recursive: true });
    await symlink(join(a.dataDir, 'models'), join(bDir, 'models'));
    b = await startTestCoordinator({ dataDir: bDir, databaseUrl: url.toString(), schedulerPollMs: MINUTE });
    // Enrolled with a token made on A, connected to B.
    w = await startTestWorker(b, { token: await a.createToken() });
    await w.agent.waitFor('online');
    fixtures = writeOnnxFixtures(await tempDir());
  }, 60_000);

  afterAll(async () => {
    await w?.agent.stop();
    await b?.stop();
    await a?.stop();
    await admin?.exec(`DROP SCHEMA ${schema} CASCADE`);
    await admin?.close();
    await removeTempDirs();
  });

  it("runs a job submitted to A on B's worker, and answers A's waiting client as it ends", { timeout: 60_000 }, async () => {
    const sha256 = await a.addModel(fixtures.mlp);
    const t0 = Date.now();
    const job = JobInfo.parse(await a.api('POST', '/v1/jobs', { model: { sha256 }, input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } } }));
    // finished() long-polls A with ?wait=20: only a notification from B answers it sooner.
    const done = await a.finished(job.id);
    expect(done).toMatchObject({ state: 'succeeded', workerId: w.identity.workerId });
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it("stops B's worker's job when A gets the cancel", { timeout: 60_000 }, async () => {
    // Minutes of matrix products: it ends in seconds only if the cancel reaches it.
    const file = join(await tempDir(), 'slower.onnx');
    await writeFile(file, slowModel(SLOW.n, 30 * SLOW.matmuls));
    const sha256 = await a.addModel(file);
    const job = JobInfo.parse(await a.api('POST', '/v1/jobs', { model: { sha256 }, input: { inputs: { x: { dtype: 'float32', dims: [1, 1], data: [1] } } }, timeoutMs: 10 * MINUTE }));
    await expect.poll(async () => JobInfo.parse(await a.api('GET', `/v1/jobs/${job.id}`)).state, { timeout: 20_000, interval: 50 }).toBe('running');
    expect(w.runner.busy).toBe(1);
    expect(JobInfo.parse(await a.api('POST', `/v1/jobs/${job.id}/cancel`)).state).toBe('canceled');
    await expect.poll(() => w.runner.busy, { timeout: 5000, interval: 20 }).toBe(0);
  });

  it("lists B's worker as online through A's API, and a worker a dead instance left online as offline", async () => {
    // As an instance that died would leave it: online, on an instance nobody runs, last heard of long ago.
    const now = new Date();
    await insertWorker(a.parts.db, { id: 'w-left-behind', name: 'ghost', certFingerprint: 'f'.repeat(64), certNotAfter: new Date(now.getTime() + 86_400_000), tokenId: null, now });
    await markOnline(a.parts.db, 'w-left-behind', { name: 'ghost', hardware: w.hardware, appVersion: 'test', transport: 'quic', labels: [], instanceId: 'c-dead', now: new Date(now.getTime() - 3_600_000) });
    const listed = WorkerList.parse(await a.api('GET', '/v1/workers'));
    expect(listed.find((x) => x.id === w.identity.workerId)?.state).toBe('online');
    expect(listed.find((x) => x.id === 'w-left-behind')?.state).toBe('offline');
  });

  it("pushes an administrator's pause set on A to B's worker", { timeout: 30_000 }, async () => {
    const received: AdminOverride[] = [];
    w.agent.on('adminPolicy', (p) => received.push(p));
    await a.api('PUT', `/v1/workers/${w.identity.workerId}/policy`, { paused: true, message: 'Rack move' });
    await expect.poll(() => received.at(-1), { timeout: 5000 }).toEqual({ paused: true, message: 'Rack move' });
    await a.api('DELETE', `/v1/workers/${w.identity.workerId}/policy`);
    await expect.poll(() => received.at(-1), { timeout: 5000 }).toEqual({});
  });

  // Last: the worker is gone after it.
  it("disconnects B's worker at once when A revokes it", { timeout: 30_000 }, async () => {
    const failed = w.agent.waitFor('failed');
    await a.api('POST', `/v1/workers/${w.identity.workerId}/revoke`);
    // Nothing but A's notice to B ends this healthy session: without it, it never ends.
    const event = await within(5000, "B's worker disconnected after A's revocation", failed);
    expect(event.error?.code).toBe('GG_ERR_WORKER_REVOKED');
  });
});
