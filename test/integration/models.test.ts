/**
 * Models end to end on loopback: an administrator uploads a model to a real
 * coordinator over HTTPS, an enrolled worker's cache downloads it with its
 * own client certificate (verified, resumed with a real range request), and a
 * revoked worker is refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelInfo, ModelList, type ModelRef } from '../../src/protocol/index.js';
import { enroll } from '../../src/worker/enroll.js';
import type { WorkerIdentity } from '../../src/worker/identity.js';
import { ModelCache } from '../../src/worker/model-cache.js';
import { httpsModelDownloader, type ModelDownloader } from '../../src/worker/model-download.js';
import { removeTempDirs, startTestCoordinator, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { rawRequest } from '../helpers/https-raw.js';

let c: TestCoordinator;
let worker: WorkerIdentity;
const bytes = randomBytes(6 * 1024 * 1024 + 5);
const sha256 = createHash('sha256').update(bytes).digest('hex');
const ref: ModelRef = { sha256, size: bytes.length, name: 'six-megs.onnx' };

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
    expect(list).toEqual([expect.objectContaining({ sha256, size: bytes.length, name: ref.name })]);
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
