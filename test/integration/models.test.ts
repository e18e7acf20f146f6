/**
 * Models end to end on loopback: an administrator uploads a model to a real
 * coordinator over HTTPS, an enrolled worker's cache downloads it with its
 * own client certificate (verified, resumed with a real range request), and a
 * revoked worker is refused. The `gogrid models` commands name, alias and
 * list them, and a job's kind must fit its model's format.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobInfo, ModelInfo, ModelList, type ModelRef } from '../../src/protocol/index.js';
import { enroll } from '../../src/worker/enroll.js';
import type { WorkerIdentity } from '../../src/worker/identity.js';
import { ModelCache } from '../../src/worker/model-cache.js';
import { httpsModelDownloader, type ModelDownloader } from '../../src/worker/model-download.js';
import { removeTempDirs, runCli, startTestCoordinator, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { writeTinyGguf } from '../fixtures/make-gguf.js';
import { rawRequest } from '../helpers/https-raw.js';

let c: TestCoordinator;
let worker: WorkerIdentity;
// Behind an ONNX file's first field (ir_version 7), so the coordinator takes it for ONNX.
const bytes = Buffer.concat([Buffer.from([0x08, 0x07]), randomBytes(6 * 1024 * 1024 + 3)]);
const sha256 = createHash('sha256').update(bytes).digest('hex');
const ref: ModelRef = { sha256, size: bytes.length, name: 'six-megs' };

async function enrolled(): Promise<WorkerIdentity> {
  return enroll({ dataDir: await tempDir('gogrid-worker-'), coordinator: { host: '127.0.0.1', port: c.port }, token: await c.createToken() });
}

function cacheFor(identity: WorkerIdentity, dir: string, wrap: (d: ModelDownloader) => ModelDownloader = (d) => d) {
  return ModelCache.open({ dir, maxBytes: 1 << 30, download: wrap(httpsModelDownloader({ baseUrl: c.apiUrl, tls: () => identity })) });
}

beforeAll(async () => {
  c = await startTestCoordinator();
  worker = await enrolled();
  const res = await rawRequest({
    url: `${c.apiUrl}/v1/models?name=${ref.name}`,
    method: 'POST',
    ca: c.ca.material.certPem,
    headers: { authorization: `Bearer ${c.adminKey}`, 'content-type': 'application/octet-stream', 'x-gogrid-sha256': sha256 },
    body: bytes,
  });
  expect(res.status).toBe(200);
});
afterAll(async () => {
  await c.stop();
  await removeTempDirs();
});

describe('models', () => {
  it('are stored content-addressed and listed', async () => {
    const list = ModelList.parse(await c.api('GET', '/v1/models'));
    expect(list.data).toEqual([expect.objectContaining({ sha256, size: bytes.length, name: ref.name, id: ref.name, object: 'model' })]);
    expect(ModelInfo.parse(await c.api('GET', `/v1/models/${sha256}/info`)).size).toBe(bytes.length);
    expect((await readFile(join(c.dataDir, 'models', sha256))).equals(bytes)).toBe(true);
  });

  it('download into the worker cache with the worker certificate, verified', async () => {
    const progress: number[] = [];
    const dir = join(await tempDir(), 'models');
    const cache = await ModelCache.open({
      dir,
      maxBytes: 1 << 30,
      download: httpsModelDownloader({ baseUrl: c.apiUrl, tls: () => worker, onProgress: (p) => progress.push(p.receivedBytes) }),
    });
    const got = await cache.acquire(ref);
    expect((await readFile(got.path)).equals(bytes)).toBe(true);
    expect(cache.cached()).toEqual([sha256]);
    expect(progress.at(-1)).toBe(bytes.length);
    got.release();
  });

  it('resume from a partial file with a range request the coordinator honours', async () => {
    const dir = join(await tempDir(), 'models');
    const seen: Array<{ offset: number; status: number }> = [];
    const cache = await cacheFor(worker, dir, (d) => async (sha, opts) => {
      const res = await d(sha, opts);
      seen.push({ offset: opts.offset, status: res.status });
      return res;
    });
    await writeFile(join(dir, `${sha256}.partial`), bytes.subarray(0, 2_500_000));
    const got = await cache.acquire(ref);
    expect(seen).toEqual([{ offset: 2_500_000, status: 206 }]);
    expect((await readFile(got.path)).equals(bytes)).toBe(true);
    got.release();
  });

  it('fail with GG_ERR_MODEL_NOT_FOUND for a model the coordinator does not have', async () => {
    const cache = await cacheFor(worker, join(await tempDir(), 'models'));
    const missing = { sha256: createHash('sha256').update('missing').digest('hex'), size: 10, name: 'missing' };
    await expect(cache.acquire(missing)).rejects.toMatchObject({ code: 'GG_ERR_MODEL_NOT_FOUND' });
    expect(cache.cached()).toEqual([]);
  });

  it('are refused without credentials (401) and to a revoked worker (403)', async () => {
    const anonymous = await rawRequest({ url: `${c.apiUrl}/v1/models/${sha256}`, ca: c.ca.material.certPem });
    expect(anonymous.status).toBe(401);

    const doomed = await enrolled();
    const cache = await cacheFor(doomed, join(await tempDir(), 'models'));
    (await cache.acquire(ref)).release();
    await c.api('POST', `/v1/workers/${doomed.workerId}/revoke`);
    const fresh = await cacheFor(doomed, join(await tempDir(), 'models'));
    await expect(fresh.acquire(ref)).rejects.toMatchObject({ code: 'GG_ERR_WORKER_REVOKED' });
    const direct = await rawRequest({ url: `${c.apiUrl}/v1/models/${sha256}`, ca: c.ca.material.certPem, cert: doomed.certPem, key: doomed.keyPem, headers: { range: 'bytes=0-9' } });
    expect(direct.status).toBe(403);
  });
});

describe('a job', () => {
  it("is refused when its kind runs another model format than its model's", async () => {
    const gguf = await c.addModel(writeTinyGguf(join(await tempDir(), 'tiny-llm.gguf'), { seed: 2 }).file);
    const submit = (kind: string, model: string, input: unknown) => c.api('POST', '/v1/jobs', { kind, model: { sha256: model }, input });
    const chat = { messages: [{ role: 'user', content: 'hi' }] };
    await expect(submit('llm', sha256, chat)).rejects.toMatchObject({ code: 'GG_ERR_MODEL_UNSUPPORTED', message: `model.sha256: a job of kind llm runs a GGUF model, and ${sha256} is an ONNX model` });
    await expect(submit('onnx', gguf, { inputs: {} })).rejects.toMatchObject({ code: 'GG_ERR_MODEL_UNSUPPORTED', message: `model.sha256: a job of kind onnx runs an ONNX model, and ${gguf} is a GGUF model` });
    // A kind with no format of its own takes any model.
    expect(JobInfo.parse(await submit('nobody-runs-this', gguf, {})).state).toBe('queued');
  });
});

describe('gogrid models', () => {
  /** Runs the CLI against the test coordinator; its exit code, stdout and stderr. */
  async function gogrid(...args: string[]) {
    const p = runCli([...args, '--data', c.dataDir]);
    const code = await p.exited;
    return { code, out: p.stdout(), err: p.stderr() };
  }

  it('adds a file named after it, aliases, renames and lists it, and finds it by name for submit', { timeout: 90_000 }, async () => {
    const file = writeOnnxFixtures(await tempDir()).mlp;
    const added = await gogrid('models', 'add', file, '--alias', 'tiny-mlp', '--json');
    expect(added.code, added.err).toBe(0);
    const info = ModelInfo.parse(JSON.parse(added.out));
    expect(info).toMatchObject({ name: 'mlp', aliases: ['tiny-mlp'], format: 'onnx', gguf: null });

    // The same bytes again, with a name: stored once, renamed.
    expect((await gogrid('models', 'add', file, '--name', 'mlp-v1')).out).toBe(`${info.sha256}\n`);
    expect((await gogrid('models', 'alias', 'MLP-V1', 'default')).code).toBe(0);
    const unaliased = await gogrid('models', 'unalias', 'tiny-mlp', '--json');
    expect(ModelInfo.parse(JSON.parse(unaliased.out))).toMatchObject({ name: 'mlp-v1', aliases: ['default'] });

    const tiny = writeTinyGguf(join(await tempDir(), 'tiny.gguf'));
    const ggufSha = await c.addModel(tiny.file);
    const listed = await gogrid('models');
    expect(listed.out).toMatch(/^SHA256 +SIZE +NAME +ALIASES +FORMAT +DETAILS +ADDED$/m);
    expect(listed.out).toMatch(new RegExp(`^${info.sha256} +\\d+ +mlp-v1 +default +onnx +\\S+$`, 'm'));
    expect(listed.out).toMatch(new RegExp(`^${ggufSha} +${tiny.size} +tiny.gguf +gguf +llama, 119K parameters, context 512, F32, chat template +\\S+$`, 'm'));

    const input = join(await tempDir(), 'input.json');
    await writeFile(input, JSON.stringify({ inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } }));
    const submitted = await gogrid('submit', '--model', 'default', '--input', input, '--kind', 'nobody-runs-this', '--json');
    expect(submitted.code, submitted.err).toBe(0);
    expect(JobInfo.parse(JSON.parse(submitted.out)).model.sha256).toBe(info.sha256);
  });

  it('refuses a file that is no model, and a name another model has, storing nothing', { timeout: 60_000 }, async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'notes.gguf'), 'plain text, whatever its name says');
    await writeFile(join(dir, 'six-megs.onnx'), Buffer.concat([Buffer.from([0x08, 0x07]), randomBytes(1000)]));
    const before = ModelList.parse(await c.api('GET', '/v1/models'));
    const invalid = await gogrid('models', 'add', join(dir, 'notes.gguf'));
    expect([invalid.code, invalid.err]).toEqual([1, expect.stringMatching(/^gogrid: GG_ERR_MODEL_INVALID: /)]);
    const folder = await gogrid('models', 'add', dir);
    expect([folder.code, folder.err]).toEqual([1, `gogrid: GG_ERR_BAD_REQUEST: cannot read the model file ${dir}: it is a directory; give the model file in it (.onnx or .gguf) (EISDIR)\n`]);
    // Its default name is the name of the model the first test block added.
    const taken = await gogrid('models', 'add', join(dir, 'six-megs.onnx'));
    expect([taken.code, taken.err]).toEqual([1, expect.stringMatching(/^gogrid: GG_ERR_MODEL_NAME_TAKEN: "six-megs" is already a name of model .*; choose another with --name/)]);
    expect(ModelList.parse(await c.api('GET', '/v1/models'))).toEqual(before);
  });
});
