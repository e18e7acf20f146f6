/**
 * POST /v1/jobs with many jobs, and the API key check, against a real
 * coordinator on loopback HTTPS: a batch is queued whole and in order or not
 * at all, a bad job is named by its index, and one worker runs a batch to the
 * end with every step recorded.
 */
import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COORDINATOR_SERVER_NAME, JobInfo, MAX_SUBMIT_BATCH, SubmitJobsResponse } from '../../src/protocol/index.js';
import { requestJson } from '../../src/transport/https-client.js';
import { createApiKey, getJobEvents, listJobs, listQueueHead } from '../../src/coordinator/store/index.js';
import { sha256Hex } from '../../src/coordinator/enrollment.js';
import { MLP, writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { rawRequest } from '../helpers/https-raw.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';

let c: TestCoordinator;
let mlpSha: string;

beforeAll(async () => {
  const fixtures = writeOnnxFixtures(await tempDir());
  c = await startTestCoordinator();
  mlpSha = await c.addModel(fixtures.mlp);
});
afterAll(async () => {
  await c.stop();
  await removeTempDirs();
});

const tiny = (n: number, extra: Record<string, unknown> = {}) => ({
  model: { sha256: mlpSha },
  input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [n, 1, 2, 3] } } },
  ...extra,
});

/** y = relu(x · w1 + b1) · w2 + b2, the fixture's known answer. */
function mlp(x: number[]): number[] {
  const h = MLP.b1.map((b, j) => Math.max(0, b + x.reduce((s, xi, i) => s + xi * MLP.w1[i]![j]!, 0)));
  return MLP.b2.map((b, k) => b + h.reduce((s, hj, j) => s + hj * MLP.w2[j]![k]!, 0));
}

async function submitBatch(jobs: unknown[]): Promise<JobInfo[]> {
  return SubmitJobsResponse.parse(await c.api('POST', '/v1/jobs', { jobs })).jobs;
}

const jobCount = async () => (await listJobs(c.parts.db, { limit: 100_000 })).length;

describe('POST /v1/jobs with { jobs: [...] }', () => {
  it('queues every job, answers them in the order sent, and the queue serves them in that order', async () => {
    const infos = await submitBatch(Array.from({ length: 25 }, (_, i) => tiny(i, { priority: 900, requirements: { labels: ['nobody-has-this'] } })));
    expect(infos).toHaveLength(25);
    expect(infos.every((j) => j.state === 'queued' && j.model.name === 'mlp.onnx' && j.priority === 900)).toBe(true);
    expect((await listQueueHead(c.parts.db, 25)).map((j) => j.id)).toEqual(infos.map((j) => j.id));
    const one = JobInfo.parse(await c.api('GET', `/v1/jobs/${infos[3]!.id}`));
    expect(one).toMatchObject({ id: infos[3]!.id, state: 'queued', requirements: { labels: ['nobody-has-this'] } });
    for (const j of infos) await c.api('POST', `/v1/jobs/${j.id}/cancel`);
  });

  it('refuses the whole batch when one job is malformed, naming its index', async () => {
    const before = await jobCount();
    const bad = { ...tiny(2), input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2] } } } };
    await expect(c.api('POST', '/v1/jobs', { jobs: [tiny(0), tiny(1), bad] })).rejects.toMatchObject({
      code: 'GG_ERR_BAD_REQUEST',
      message: expect.stringMatching(/^jobs\.2\.input\.inputs\.x: /),
    });
    await expect(c.api('POST', '/v1/jobs', { jobs: [tiny(0), { ...tiny(1), timeoutMs: -5 }] })).rejects.toMatchObject({
      code: 'GG_ERR_BAD_REQUEST',
      message: expect.stringMatching(/^jobs\.1\.timeoutMs: /),
    });
    expect(await jobCount()).toBe(before);
  });

  it('refuses the whole batch when one job names a model the coordinator does not have', async () => {
    const before = await jobCount();
    await expect(c.api('POST', '/v1/jobs', { jobs: [tiny(0), { ...tiny(1), model: { sha256: 'e'.repeat(64) } }] })).rejects.toMatchObject({
      code: 'GG_ERR_MODEL_NOT_FOUND',
      message: expect.stringMatching(/^jobs\.1\.model\.sha256: no model e{64}/),
    });
    expect(await jobCount()).toBe(before);
  });

  it(`takes 1 to ${MAX_SUBMIT_BATCH} jobs`, async () => {
    await expect(c.api('POST', '/v1/jobs', { jobs: [] })).rejects.toMatchObject({ code: 'GG_ERR_BAD_REQUEST', message: expect.stringMatching(/^jobs: /) });
    const tooMany = Array.from({ length: MAX_SUBMIT_BATCH + 1 }, (_, i) => tiny(i));
    await expect(c.api('POST', '/v1/jobs', { jobs: tooMany })).rejects.toMatchObject({ code: 'GG_ERR_BAD_REQUEST', message: expect.stringMatching(/^jobs: /) });
  });

  it('closes the connection after a large answer, so no request follows it on that connection', async () => {
    const jobs = Array.from({ length: 100 }, (_, i) => tiny(i, { requirements: { labels: ['nobody-has-this'] } }));
    const answer = await new Promise<{ status: number; connection: string | undefined; body: string }>((resolve, reject) => {
      const body = JSON.stringify({ jobs });
      const req = https.request(
        `${c.apiUrl}/v1/jobs`,
        {
          method: 'POST',
          ca: c.ca.material.certPem,
          servername: COORDINATOR_SERVER_NAME,
          headers: { authorization: `Bearer ${c.adminKey}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'keep-alive' },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, connection: res.headers.connection, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    expect(answer.status).toBe(201);
    expect(answer.body.length).toBeGreaterThan(16 * 1024);
    expect(answer.connection).toBe('close');
    for (const j of SubmitJobsResponse.parse(JSON.parse(answer.body)).jobs) await c.api('POST', `/v1/jobs/${j.id}/cancel`);
  });

  it('fails a job no worker takes within its queueTimeoutMs, with why it waited', async () => {
    const info = JobInfo.parse(await c.api('POST', '/v1/jobs', tiny(8, { kind: 'nobody-runs-this', queueTimeoutMs: 1500 })));
    expect(Date.parse(info.queueDeadline!) - Date.parse(info.submittedAt)).toBe(1500);
    const done = await c.finished(info.id, 20_000);
    expect(done).toMatchObject({ state: 'failed', error: { code: 'GG_ERR_NO_WORKER_AVAILABLE', message: expect.stringMatching(/^no worker took it within its queue timeout of 2 s; it was waiting because /) } });
    // Without one, a week.
    const plain = JobInfo.parse(await c.api('POST', '/v1/jobs', tiny(9, { requirements: { labels: ['nobody-has-this'] } })));
    expect(Date.parse(plain.queueDeadline!) - Date.parse(plain.submittedAt)).toBe(7 * 24 * 3600 * 1000);
    await c.api('POST', `/v1/jobs/${plain.id}/cancel`);
  });

  it('still takes a single job and answers it alone', async () => {
    const info = JobInfo.parse(await c.api('POST', '/v1/jobs', tiny(7, { requirements: { labels: ['nobody-has-this'] } })));
    expect(info).toMatchObject({ state: 'queued', attempt: 0, model: { sha256: mlpSha } });
    await c.api('POST', `/v1/jobs/${info.id}/cancel`);
  });

  it('runs a batch on a worker to the end, each job through every step, each output its own answer', async () => {
    const w = await startTestWorker(c, { token: await c.createToken() });
    try {
      const infos = await submitBatch(Array.from({ length: 12 }, (_, i) => tiny(i)));
      const done = await Promise.all(infos.map((j) => c.finished(j.id)));
      expect(done.map((j) => j.state)).toEqual(infos.map(() => 'succeeded'));
      for (const [i, j] of done.entries()) {
        const y = (j.output as { outputs: { y: { data: number[] } } }).outputs.y.data;
        mlp([i, 1, 2, 3]).forEach((want, k) => expect(y[k]).toBeCloseTo(want, 4));
      }
      for (const j of infos) {
        expect((await getJobEvents(c.parts.db, j.id)).map((e) => e.state)).toEqual(['queued', 'leased', 'running', 'succeeded']);
      }
    } finally {
      await w.agent.stop();
    }
  });
});

describe('POST /v1/jobs with an Idempotency-Key', () => {
  const submit = (body: unknown, key: string | null, apiKey = c.adminKey) =>
    rawRequest({
      url: `${c.apiUrl}/v1/jobs`,
      method: 'POST',
      ca: c.ca.material.certPem,
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json', ...(key === null ? {} : { 'idempotency-key': key }) },
      body: Buffer.from(JSON.stringify(body)),
    });
  const parked = (n: number) => tiny(n, { requirements: { labels: ['nobody-has-this'] } });

  it('queues a retried request once and answers the retry with the same job, marked as replayed', async () => {
    const before = await jobCount();
    const first = await submit(parked(1), 'retry-1');
    const again = await submit(parked(1), 'retry-1');
    expect([first.status, again.status]).toEqual([201, 201]);
    expect([first.headers['idempotent-replayed'], again.headers['idempotent-replayed']]).toEqual([undefined, 'true']);
    expect(JobInfo.parse(again.json()).id).toBe(JobInfo.parse(first.json()).id);
    expect(await jobCount()).toBe(before + 1);
    // Without a key every request is a new job, as before.
    await submit(parked(1), null);
    await submit(parked(1), null);
    expect(await jobCount()).toBe(before + 3);
  });

  it('answers a retried batch with its jobs in order, as they are now', async () => {
    const body = { jobs: [parked(2), parked(3), parked(4)] };
    const first = SubmitJobsResponse.parse((await submit(body, 'batch-7')).json()).jobs;
    await c.api('POST', `/v1/jobs/${first[1]!.id}/cancel`);
    const again = SubmitJobsResponse.parse((await submit(body, 'batch-7')).json()).jobs;
    expect(again.map((j) => j.id)).toEqual(first.map((j) => j.id));
    expect(again.map((j) => j.state)).toEqual(['queued', 'canceled', 'queued']);
  });

  it('refuses the same key with another request (422) and queues nothing for it', async () => {
    await submit(parked(5), 'reused');
    const before = await jobCount();
    const other = await submit(parked(6), 'reused');
    expect(other.status).toBe(422);
    expect(other.json()).toMatchObject({ error: { code: 'GG_ERR_IDEMPOTENCY_KEY_REUSED', message: expect.stringContaining('reused') } });
    expect(await jobCount()).toBe(before);
  });

  it("keeps one API key's keys apart from another's", async () => {
    const key = 'ggk_second_admin_key_for_idempotency';
    await createApiKey(c.parts.db, { id: 'second-admin', keySha256: sha256Hex(key), name: 'test', scope: 'admin', now: new Date() });
    const mine = JobInfo.parse((await submit(parked(8), 'shared-name')).json());
    const theirs = JobInfo.parse((await submit(parked(8), 'shared-name', key)).json());
    expect(theirs.id).not.toBe(mine.id);
  });

  it('refuses a key that is empty, too long or not visible ASCII, naming the header', async () => {
    for (const bad of ['', 'x'.repeat(256), 'has space', 'caf\u00e9']) {
      const reply = await submit(parked(9), bad);
      expect(reply.status, bad).toBe(400);
      expect(reply.json(), bad).toMatchObject({ error: { code: 'GG_ERR_BAD_REQUEST', message: expect.stringMatching(/^Idempotency-Key: /) } });
    }
  });
});

describe('the API key check', () => {
  const get = (key: string) =>
    requestJson({ url: `${c.apiUrl}/v1/jobs?limit=1`, ca: c.ca.material.certPem, headers: { authorization: `Bearer ${key}` } });

  it('refuses a wrong key every time, also right after the right one was taken', async () => {
    await get(c.adminKey);
    await get(c.adminKey);
    await expect(get(`${c.adminKey}x`)).rejects.toMatchObject({ code: 'GG_ERR_UNAUTHENTICATED' });
    await expect(get('ggk_wrong')).rejects.toMatchObject({ code: 'GG_ERR_UNAUTHENTICATED' });
  });

  it('takes a key created a moment ago at once', async () => {
    const key = 'ggk_created_just_now_for_this_test';
    await expect(get(key)).rejects.toMatchObject({ code: 'GG_ERR_UNAUTHENTICATED' });
    await createApiKey(c.parts.db, { id: 'fresh', keySha256: sha256Hex(key), name: 'test', scope: 'admin', now: new Date() });
    await expect(get(key)).resolves.toBeDefined();
  });
});
