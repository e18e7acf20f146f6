/**
 * Jobs end to end on loopback: real QUIC, real HTTPS model downloads, real
 * onnxruntime in job processes. Outputs are checked against answers computed
 * here; faults are injected for real (bad bytes on disk, killed processes).
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobInfo } from '../../src/protocol/api.js';
import { TENSOR_DTYPES } from '../../src/protocol/tensor.js';
import { getJob } from '../../src/coordinator/store/index.js';
import { sendRequest } from '../../src/transport/https-client.js';
import { mlpAnswer, SLOW, slowModel, writeOnnxFixtures, type OnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, runCli, startTestCoordinator, startTestWorker, tempDir, untilFinished, type CliProcess, type TestCoordinator } from '../helpers/grid.js';

let fixtures: OnnxFixtures;
const children: CliProcess[] = [];

beforeAll(async () => {
  fixtures = writeOnnxFixtures(await tempDir());
});
afterAll(async () => {
  for (const p of children) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all(children.map((p) => p.exited));
  await removeTempDirs();
});

const mlp = mlpAnswer;

const mlpInput = (x: number[]) => ({ inputs: { x: { dtype: 'float32', dims: [1, 4], data: x } } });
const slowInput = { inputs: { x: { dtype: 'float32', dims: [1, 1], data: [1] } } };

async function submit(c: TestCoordinator, body: Record<string, unknown>): Promise<JobInfo> {
  return JobInfo.parse(await c.api('POST', '/v1/jobs', body));
}

async function untilState(c: TestCoordinator, id: string, state: string): Promise<void> {
  await expect.poll(async () => JobInfo.parse(await c.api('GET', `/v1/jobs/${id}`)).state, { timeout: 30_000, interval: 50 }).toBe(state);
}

describe('three workers, a hundred jobs', () => {
  it('runs every job once and every output equals the known answer', { timeout: 180_000 }, async () => {
    const c = await startTestCoordinator();
    const workers = await Promise.all([1, 2, 3].map(async () => startTestWorker(c, { token: await c.createToken() })));
    try {
      await Promise.all(workers.map((w) => w.agent.waitFor('online')));
      const sha256 = await c.addModel(fixtures.mlp);
      const xs = Array.from({ length: 100 }, (_, i) => [i / 10, -i / 20, 1 - i / 50, (i % 7) - 3]);
      const jobs = await Promise.all(xs.map((x) => submit(c, { model: { sha256 }, input: mlpInput(x) })));
      const done = await Promise.all(jobs.map((j) => c.finished(j.id, 150_000)));
      for (const [i, job] of done.entries()) {
        expect(job.state, job.error?.message).toBe('succeeded');
        const y = (job.output as { outputs: { y: { dtype: string; dims: number[]; data: number[] } } }).outputs.y;
        expect(y.dtype).toBe('float32');
        expect(y.dims).toEqual([1, 3]);
        mlp(xs[i]!).forEach((want, k) => expect(y.data[k]).toBeCloseTo(want, 4));
        // Why an attempt was repeated (a worker dropped, a lease expired) is in the history: say it.
        expect(job.attempt, JSON.stringify(job.events)).toBe(1);
        // These jobs end before a start report is due: the start comes from the result's runMs.
        const steps = job.events!.map((e) => [e.state, Date.parse(e.at)] as const);
        expect(steps.map(([state]) => state)).toEqual(['queued', 'leased', 'running', 'succeeded']);
        const times = steps.map(([, t]) => t);
        expect([...times].sort((a, b) => a - b)).toEqual(times);
        expect(Date.parse(job.startedAt!)).toBe(times[2]);
      }
    } finally {
      await Promise.all(workers.map((w) => w.agent.stop()));
      await c.stop();
    }
  });
});

describe('payloads over a control frame', () => {
  it('moves inputs and outputs too large for a control frame over HTTPS', { timeout: 120_000 }, async () => {
    // Parsing and checking megabytes of JSON stalls this process (coordinator and worker both) for seconds on a
    // busy 2-core machine: longer than FAST's 1.5 s heartbeat timeout, which is not what this test is about.
    const c = await startTestCoordinator({ heartbeat: { heartbeatTimeoutSecs: 30 } });
    const w = await startTestWorker(c, { token: await c.createToken(), maxIdleTimeoutMs: 30_000 });
    try {
      await w.agent.waitFor('online');
      const sha256 = await c.addModel(fixtures.identity);
    // 1 MiB of uint8 in b64 is 1.4 MB of JSON in, and about 3.5 MB of JSON numbers out.
      const bytes = Buffer.alloc(1024 * 1024);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) % 251;
      const inputs: Record<string, unknown> = Object.fromEntries(TENSOR_DTYPES.map((t) => [`x_${t}`, { dtype: t, dims: [0], data: [] }]));
      inputs['x_uint8'] = { dtype: 'uint8', dims: [bytes.length], b64: bytes.toString('base64') };
      const job = await submit(c, { model: { sha256 }, input: { inputs } });
      const done = await c.finished(job.id);
      expect(done.state, done.error?.message).toBe('succeeded');
      // The job ran once: no attempt was lost to a dropped worker.
      expect(done.attempt, JSON.stringify(done.events)).toBe(1);
      const y = (done.output as { outputs: Record<string, { data: number[] }> }).outputs['y_uint8']!;
      expect(y.data).toHaveLength(bytes.length);
      expect(Buffer.from(y.data).equals(bytes)).toBe(true);
      // Both were kept outside the job's row, and streamed from there (the worker's input, the answer above).
      expect(await getJob(c.parts.db, job.id)).toMatchObject({ inputPieces: 2, outputPieces: 4 });
    } finally {
      await w.agent.stop();
      await c.stop();
    }
  });

});

describe('faults', () => {
  let c: TestCoordinator;
  let w: Awaited<ReturnType<typeof startTestWorker>>;
  let mlpSha: string;
  beforeAll(async () => {
    c = await startTestCoordinator();
    w = await startTestWorker(c, { token: await c.createToken() });
    await w.agent.waitFor('online');
    mlpSha = await c.addModel(fixtures.mlp);
  });
  afterAll(async () => {
    await w.agent.stop();
    await c.stop();
  });

  it("fails a model the runtime cannot load without telling the submitter where the worker keeps its files", async () => {
    const file = join(await tempDir(), 'not-a-model.onnx');
    // Past the coordinator's first-bytes check (an ONNX file's ir_version field), not past the runtime.
    await writeFile(file, Buffer.concat([Buffer.from([0x08, 0x07]), Buffer.from('these bytes are no ONNX model')]));
    const sha256 = await c.addModel(file);
    const job = JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256 }, input: mlpInput([1, 2, 3, 4]), maxAttempts: 1 }));
    const done = await c.finished(job.id);
    expect(done).toMatchObject({ state: 'failed', error: { code: 'GG_ERR_MODEL_UNSUPPORTED' } });
    expect(done.error?.message).toContain('the model file of not-a-model.onnx');
    expect(done.error?.message).not.toContain(w.dataDir);
  });

  it('answers a malformed job body with 400 naming the field', async () => {
    const call = (body: unknown) => sendRequest({ url: `${c.apiUrl}/v1/jobs`, method: 'POST', body, ca: c.ca.material.certPem, headers: { authorization: `Bearer ${c.adminKey}` } });
    expect(await call({ model: { sha256: 'nope' }, input: {} })).toMatchObject({ status: 400, body: { error: { code: 'GG_ERR_BAD_REQUEST', message: expect.stringMatching(/^model\.sha256:/) } } });
    expect(await call({ model: { sha256: mlpSha } })).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/^input:/) } } });
    expect(await call({ model: { sha256: mlpSha }, input: { inputs: { x: { dtype: 'float32', dims: [2, 2], data: [1] } } } })).toMatchObject({
      status: 400,
      body: { error: { message: 'input.inputs.x: dims [2, 2] need 4 values, data has 1' } },
    });
    expect(await call({ model: { sha256: mlpSha }, input: mlpInput([1, 2, 3, 4]), timeoutMs: -1 })).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/^timeoutMs:/) } } });
  });

  it('keeps a job no connected worker can run queued, says why, and runs it when a fitting worker comes', async () => {
    const job = await submit(c, { model: { sha256: mlpSha }, input: mlpInput([1, 2, 3, 4]), requirements: { labels: ['gpu-lab'] } });
    await expect
      .poll(async () => JobInfo.parse(await c.api('GET', `/v1/jobs/${job.id}`)).waitingReason, { timeout: 10_000, interval: 50 })
      .toBe('no connected worker can run this job: lacks the label gpu-lab (1 worker)');
    const labeled = await startTestWorker(c, { token: await c.createToken(), jobs: { labels: ['gpu-lab'] } });
    try {
      expect(await c.finished(job.id)).toMatchObject({ state: 'succeeded', workerId: labeled.identity.workerId, waitingReason: null });
    } finally {
      await labeled.agent.stop();
    }
  });

  it('refuses an unknown model sha256', async () => {
    await expect(submit(c, { model: { sha256: 'e'.repeat(64) }, input: mlpInput([1, 2, 3, 4]) })).rejects.toMatchObject({ code: 'GG_ERR_MODEL_NOT_FOUND' });
  });

  it('never runs a model whose bytes do not match its hash, and fails the job with that reason after its attempts', async () => {
    const file = join(await tempDir(), 'tiny.onnx');
    await writeFile(file, slowModel(4, 1));
    const sha256 = await c.addModel(file);
    // Corrupt the stored copy: same size, other bytes.
    const stored = join(c.dataDir, 'models', sha256);
    const bytes = slowModel(4, 1);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(stored, bytes);
    const job = await submit(c, { model: { sha256 }, input: slowInput, maxAttempts: 2 });
    const done = await c.finished(job.id);
    expect(done).toMatchObject({ state: 'failed', attempt: 2, error: { code: 'GG_ERR_MODEL_HASH_MISMATCH' } });
    expect(await readdir(join(w.dataDir, 'models'))).not.toContain(sha256);
  });

  it('fails an input that does not fit the model, and the worker carries on', async () => {
    const bad = await submit(c, { model: { sha256: mlpSha }, input: { inputs: { z: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } } });
    expect(await c.finished(bad.id)).toMatchObject({ state: 'failed', attempt: 1, error: { code: 'GG_ERR_INPUT_INVALID', message: expect.stringContaining('"z"') } });
    const good = await submit(c, { model: { sha256: mlpSha }, input: mlpInput([1, 2, 3, 4]) });
    expect((await c.finished(good.id)).state).toBe('succeeded');
    expect(w.agent.state.state).toBe('online');
  });

  it('kills a job past its timeout, retries it, then fails it with GG_ERR_JOB_TIMEOUT', async () => {
    const sha256 = await c.addModel(fixtures.slow);
    const job = await submit(c, { model: { sha256 }, input: slowInput, timeoutMs: 300, maxAttempts: 2 });
    expect(await c.finished(job.id)).toMatchObject({ state: 'failed', attempt: 2, error: { code: 'GG_ERR_JOB_TIMEOUT' } });
    await expect.poll(() => w.runner.busy).toBe(0);
  });

  it('refuses input and result requests without a certificate or with a stale lease', async () => {
    const noCert = await sendRequest({ url: `${c.apiUrl}/v1/jobs/j-x/input`, ca: c.ca.material.certPem, headers: { 'x-gogrid-lease': 'l' } });
    expect(noCert).toMatchObject({ status: 401, body: { error: { code: 'GG_ERR_UNAUTHENTICATED' } } });
    const id = w.agent.currentIdentity;
    const stale = await sendRequest({ url: `${c.apiUrl}/v1/jobs/j-x/input`, tls: id, headers: { 'x-gogrid-lease': 'l-old' } });
    expect(stale).toMatchObject({ status: 409, body: { error: { code: 'GG_ERR_JOB_LEASE_STALE' } } });
    const result = { type: 'job.result', jobId: 'j-x', leaseId: 'l-old', outcome: { ok: true, output: 1 } };
    const late = await sendRequest({ url: `${c.apiUrl}/v1/jobs/j-x/result`, method: 'POST', body: result, tls: id, headers: { 'x-gogrid-lease': 'l-old' } });
    expect(late).toMatchObject({ status: 409, body: { error: { code: 'GG_ERR_JOB_LEASE_STALE' } } });
  });

  it('stops a running job at once on a cancel, long before it would end', async () => {
    const sha256 = await c.addModel(fixtures.slow);
    const job = await submit(c, { model: { sha256 }, input: slowInput, timeoutMs: 60_000 });
    await untilState(c, job.id, 'running');
    const canceled = JobInfo.parse(await c.api('POST', `/v1/jobs/${job.id}/cancel`));
    expect(canceled.state).toBe('canceled');
    // The slow job computes for many seconds: only the cancel frees the slot within this bound.
    await expect.poll(() => w.runner.busy, { timeout: 5000, interval: 10 }).toBe(0);
    await expect(c.api('POST', `/v1/jobs/${job.id}/cancel`)).rejects.toMatchObject({ code: 'GG_ERR_BAD_REQUEST' });
  });
});

describe('a worker killed mid-job', () => {
  it('loses the job to another worker, which finishes it; only that result counts', { timeout: 120_000 }, async () => {
    const c = await startTestCoordinator();
    try {
      const online = new Promise<string>((resolve) => c.parts.sessions.once('online', resolve));
      const a = runCli(['worker', '--coordinator', `127.0.0.1:${c.port}`, '--token', await c.createToken(), '--data', await tempDir(), '--log-format', 'json']);
      children.push(a);
      const aId = await online;
      const sha256 = await c.addModel(fixtures.slow);
      const job = await submit(c, { model: { sha256 }, input: slowInput, timeoutMs: 60_000 });
      await untilState(c, job.id, 'running');
      a.child.kill('SIGKILL');
      await a.exited;

      const b = await startTestWorker(c, { token: await c.createToken() });
      try {
        const done = await c.finished(job.id, 100_000);
        expect(done).toMatchObject({ state: 'succeeded', attempt: 2, workerId: b.identity.workerId });
        expect(done.output).toMatchObject({ outputs: { y: { data: [SLOW.n * SLOW.n] } } });
        const history = done.events!.map((e) => [e.state, e.workerId]);
        expect(history).toEqual([
          ['queued', null],
          ['leased', aId],
          ['running', aId],
          ['queued', aId],
          ['leased', b.identity.workerId],
          ['running', b.identity.workerId],
          ['succeeded', b.identity.workerId],
        ]);
      } finally {
        await b.agent.stop();
      }
    } finally {
      await c.stop();
    }
  });
});

describe('a coordinator restarted mid-job', () => {
  it('loses nothing: finished jobs stay finished, queued stay queued, the running one is requeued and completes', { timeout: 120_000 }, async () => {
    const dataDir = await tempDir();
    const flags = ['--data', dataDir, '--bind', '127.0.0.1', '--heartbeat-interval', '0.3', '--heartbeat-timeout', '1.5', '--log-format', 'json'];
    const first = runCli(['coordinator', ...flags, '--port', '0']);
    children.push(first);
    await first.waitFor(/listening on 127\.0\.0\.1:\d+/);
    const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(first.stdout())![1]);
    // Admin calls through a TestCoordinator-like view of the child's data dir.
    const api = await adminOf(dataDir);
    const w = await startTestWorker({ port }, { token: await api.createToken() });
    try {
      await w.agent.waitFor('online');
      const mlpSha = await api.addModel(fixtures.mlp);
      const slowSha = await api.addModel(fixtures.slow);
      const finished = await api.finished((await submitTo(api, { model: { sha256: mlpSha }, input: mlpInput([1, 2, 3, 4]) })).id);
      expect(finished.state).toBe('succeeded');
      const running = await submitTo(api, { model: { sha256: slowSha }, input: slowInput, timeoutMs: 60_000 });
      await expect.poll(async () => (await api.job(running.id)).state, { timeout: 30_000, interval: 50 }).toBe('running');
      const queued = await submitTo(api, { model: { sha256: mlpSha }, input: mlpInput([4, 3, 2, 1]) });
      expect((await api.job(queued.id)).state).toBe('queued');

      first.child.kill('SIGKILL');
      await first.exited;
      const second = runCli(['coordinator', ...flags, '--port', String(port)]);
      children.push(second);
      await second.waitFor(/listening on/);

      expect(await api.job(finished.id)).toMatchObject({ state: 'succeeded', output: finished.output });
      const [r, q] = await Promise.all([api.finished(running.id, 100_000), api.finished(queued.id, 100_000)]);
      expect(r).toMatchObject({ state: 'succeeded', attempt: 2, output: { outputs: { y: { data: [SLOW.n * SLOW.n] } } } });
      expect(r.events!.some((e) => e.state === 'queued' && e.detail?.includes('coordinator restarted'))).toBe(true);
      expect(q).toMatchObject({ state: 'succeeded', attempt: 1 });
      second.child.kill('SIGTERM');
      await second.exited;
    } finally {
      await w.agent.stop();
    }
  });
});

// ---------------------------------------------------------------- a coordinator in another process, by its data dir

async function adminOf(dataDir: string) {
  const { readFile } = await import('node:fs/promises');
  const { readApiInfo, adminKeyPath, caCertPath } = await import('../../src/coordinator/local-files.js');
  const { requestJson } = await import('../../src/transport/https-client.js');
  const { CreatedToken, ModelInfo } = await import('../../src/protocol/api.js');
  const { createReadStream } = await import('node:fs');
  const { stat } = await import('node:fs/promises');
  const info = (await readApiInfo(dataDir))!;
  const key = (await readFile(adminKeyPath(dataDir), 'utf8')).trim();
  const ca = await readFile(caCertPath(dataDir), 'utf8');
  const call = (method: 'GET' | 'POST', path: string, body?: unknown, bodyLength?: number) =>
    requestJson({ url: `${info.apiUrl}${path}`, method, body, bodyLength, ca, headers: { authorization: `Bearer ${key}` }, timeoutMs: 30_000 });
  const api = {
    call,
    createToken: async () => CreatedToken.parse(await call('POST', '/v1/tokens', {})).token,
    addModel: async (file: string) => ModelInfo.parse(await call('POST', '/v1/models', createReadStream(file), (await stat(file)).size)).sha256,
    job: async (id: string) => JobInfo.parse(await call('GET', `/v1/jobs/${id}`)),
    finished: (id: string, ms?: number) => untilFinished((path) => call('GET', path), id, ms),
  };
  return api;
}

async function submitTo(api: Awaited<ReturnType<typeof adminOf>>, body: Record<string, unknown>): Promise<JobInfo> {
  return JobInfo.parse(await api.call('POST', '/v1/jobs', body));
}
