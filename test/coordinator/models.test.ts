/**
 * The coordinator's model store on a real directory, the range parser, and
 * the model routes on a real HTTPS server with real client certificates.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GridError, isGridError, ModelInfo, ModelList, ModelName } from '../../src/protocol/index.js';
import {
  addModelAlias,
  addModelFromStream,
  getModelInfo,
  listModels,
  ModelTooLargeError,
  prepareModelDir,
  removeModelAlias,
  renameModel,
  resolveModel,
} from '../../src/coordinator/models.js';
import { modelRoutes } from '../../src/coordinator/http-models.js';
import { parseRange } from '../../src/coordinator/http-range.js';
import { toErrorBody } from '../../src/common/http-errors.js';
import { createCa, createKeyAndCsr, issueServerCert, signCsr, type CaMaterial } from '../../src/transport/pki.js';
import { rawRequest, type RawRequest } from '../helpers/https-raw.js';
import { removeTempDirs, tempDir } from '../helpers/grid.js';
import { writeMalformedGguf, writeTinyGguf, writeTruncatedGguf } from '../fixtures/make-gguf.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Random bytes behind an ONNX file's first field (ir_version 7): what the store takes for ONNX. */
const onnxLike = (size: number) => Buffer.concat([Buffer.from([0x08, 0x07]), randomBytes(size - 2)]);
const chunksOf = (b: Buffer, size = 64 * 1024) => Readable.from(Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size)));

afterAll(removeTempDirs);

describe('model store', () => {
  it('stores bytes under their sha256 with a sidecar, and adding them again keeps the first record', async () => {
    const dir = await tempDir();
    await prepareModelDir(dir);
    const bytes = onnxLike(300_000);
    const info = await addModelFromStream(dir, chunksOf(bytes), { name: 'mlp.onnx', now: new Date('2026-01-01T00:00:00Z') });
    expect(info).toEqual({ sha256: sha(bytes), size: bytes.length, name: 'mlp.onnx', aliases: [], format: 'onnx', gguf: null, addedAt: '2026-01-01T00:00:00.000Z' });
    expect((await readdir(dir)).sort()).toEqual([sha(bytes), `${sha(bytes)}.json`]);

    const again = await addModelFromStream(dir, chunksOf(bytes), { name: 'other-name.onnx', expectedSha256: sha(bytes).toUpperCase() });
    expect(again).toEqual(info);
    expect(await listModels(dir)).toEqual([info]);
    expect(await getModelInfo(dir, sha(Buffer.from('nope')))).toBeNull();
  });

  it('stores nothing when the bytes do not match the expected sha256, are too large, or the source breaks', async () => {
    const dir = await tempDir();
    await prepareModelDir(dir);
    const bytes = randomBytes(200_000);
    const mismatch = await addModelFromStream(dir, chunksOf(bytes), { expectedSha256: sha(Buffer.from('other')) }).catch((e: unknown) => e);
    expect(isGridError(mismatch, 'GG_ERR_MODEL_HASH_MISMATCH')).toBe(true);

    const tooLarge = await addModelFromStream(dir, chunksOf(bytes), { maxBytes: 100_000 }).catch((e: unknown) => e);
    expect(tooLarge).toBeInstanceOf(ModelTooLargeError);

    async function* broken() {
      yield bytes.subarray(0, 1000);
      throw new Error('connection reset');
    }
    await expect(addModelFromStream(dir, broken())).rejects.toThrow('connection reset');

    const text = await addModelFromStream(dir, chunksOf(Buffer.from('these bytes are no model'))).catch((e: unknown) => e);
    expect(text).toMatchObject({ code: 'GG_ERR_MODEL_INVALID', message: expect.stringContaining('neither an ONNX model') });
    expect(await readdir(dir)).toEqual([]);
  });

  it('lists a model whose sidecar is missing, and clears half-written uploads at start', async () => {
    const dir = await tempDir();
    await prepareModelDir(dir);
    const bytes = Buffer.from('copied in by hand');
    await writeFile(join(dir, sha(bytes)), bytes);
    await writeFile(join(dir, '.upload-0123abcd.tmp'), 'half');
    await prepareModelDir(dir);
    expect(await readdir(dir)).toEqual([sha(bytes)]);
    expect(await listModels(dir)).toEqual([expect.objectContaining({ sha256: sha(bytes), size: bytes.length, name: '', aliases: [], format: null })]);
  });

  it('reads a sidecar written before names were unique and formats known: aliases none, format from the bytes', async () => {
    const dir = await tempDir();
    await prepareModelDir(dir);
    const bytes = onnxLike(1000);
    await writeFile(join(dir, sha(bytes)), bytes);
    await writeFile(join(dir, `${sha(bytes)}.json`), JSON.stringify({ sha256: sha(bytes), size: bytes.length, name: 'old.onnx', addedAt: '2025-01-01T00:00:00.000Z' }));
    expect(await getModelInfo(dir, sha(bytes))).toEqual({ sha256: sha(bytes), size: bytes.length, name: 'old.onnx', aliases: [], format: 'onnx', gguf: null, addedAt: '2025-01-01T00:00:00.000Z' });
    expect((await resolveModel(dir, 'OLD.onnx'))?.sha256).toBe(sha(bytes));
  });
});

describe('model names and aliases', () => {
  async function storeWith(...models: { name?: string; aliases?: string[] }[]) {
    const dir = await tempDir();
    await prepareModelDir(dir);
    const infos = [];
    for (const [i, m] of models.entries()) infos.push(await addModelFromStream(dir, chunksOf(onnxLike(100 + i)), { ...m, now: new Date(Date.UTC(2026, 0, 1, 0, 0, i)) }));
    return { dir, infos };
  }

  it('resolves a sha256, a name or an alias, without case, to its model', async () => {
    const { dir, infos } = await storeWith({ name: 'TinyLlama', aliases: ['chat', 'CHAT', 'tinyllama', 'default'] }, { name: 'mlp' });
    const [llama, mlp] = infos as [ModelInfo, ModelInfo];
    // The name again as an alias, and an alias twice: kept once.
    expect(llama).toMatchObject({ name: 'TinyLlama', aliases: ['chat', 'default'] });
    for (const ref of [llama.sha256, 'TinyLlama', 'tinyllama', 'chat', 'Default']) expect((await resolveModel(dir, ref))?.sha256, ref).toBe(llama.sha256);
    expect((await resolveModel(dir, 'MLP'))?.sha256).toBe(mlp.sha256);
    for (const ref of ['nope', '', mlp.sha256.toUpperCase(), 'e'.repeat(64)]) expect(await resolveModel(dir, ref), ref).toBeNull();
  });

  it('refuses a name or alias another model has, storing and changing nothing', async () => {
    const { dir, infos } = await storeWith({ name: 'llama', aliases: ['chat'] }, { name: 'mlp' });
    const [llama, mlp] = infos as [ModelInfo, ModelInfo];
    const before = (await readdir(dir)).sort();
    for (const opts of [{ name: 'LLAMA' }, { name: 'new', aliases: ['Chat'] }, { name: 'new', aliases: ['mlp'] }]) {
      const refused = await addModelFromStream(dir, chunksOf(onnxLike(5000)), opts).catch((e: unknown) => e);
      expect(refused, JSON.stringify(opts)).toMatchObject({ code: 'GG_ERR_MODEL_NAME_TAKEN' });
    }
    expect((await readdir(dir)).sort()).toEqual(before);
    await expect(renameModel(dir, mlp.sha256, 'chat')).rejects.toMatchObject({ code: 'GG_ERR_MODEL_NAME_TAKEN', message: expect.stringContaining(`${llama.sha256.slice(0, 12)}… (llama)`) });
    await expect(addModelAlias(dir, mlp.sha256, 'Llama')).rejects.toMatchObject({ code: 'GG_ERR_MODEL_NAME_TAKEN' });
    expect(await listModels(dir)).toEqual(infos);
  });

  it('renames, adds and removes aliases, kept in the sidecar', async () => {
    const { dir, infos } = await storeWith({ name: 'llama', aliases: ['chat'] });
    const sha256 = infos[0]!.sha256;
    expect(await renameModel(dir, sha256, 'chat')).toMatchObject({ name: 'chat', aliases: [] });
    expect(await addModelAlias(dir, sha256, 'llama')).toMatchObject({ name: 'chat', aliases: ['llama'] });
    expect(await addModelAlias(dir, sha256, 'LLAMA')).toMatchObject({ aliases: ['llama'] });
    expect(await addModelAlias(dir, sha256, 'meta-llama/Llama-3.2-1B')).toMatchObject({ aliases: ['llama', 'meta-llama/Llama-3.2-1B'] });
    expect(await removeModelAlias(dir, sha256, 'Llama')).toMatchObject({ aliases: ['meta-llama/Llama-3.2-1B'] });
    await expect(removeModelAlias(dir, sha256, 'llama')).rejects.toMatchObject({ code: 'GG_ERR_NOT_FOUND' });
    await expect(renameModel(dir, 'e'.repeat(64), 'x')).rejects.toMatchObject({ code: 'GG_ERR_MODEL_NOT_FOUND' });
    expect(await getModelInfo(dir, sha256)).toMatchObject({ name: 'chat', aliases: ['meta-llama/Llama-3.2-1B'] });
    expect((await resolveModel(dir, 'META-LLAMA/llama-3.2-1b'))?.sha256).toBe(sha256);
  });

  it('gives a name to one model only when several ask for it at once', async () => {
    const { dir } = await storeWith();
    const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => addModelFromStream(dir, chunksOf(onnxLike(1000 + i)), { name: 'same' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(Array(5).fill('GG_ERR_MODEL_NAME_TAKEN'));
    expect(await listModels(dir)).toHaveLength(1);
  });

  it.each([
    ['', 'Too small'],
    ['a'.repeat(257), 'Too big'],
    ['ab\ncd', 'control character'],
    ['A'.repeat(64), 'sha256'],
  ])('refuses the name %j', (name, problem) => {
    const parsed = ModelName.safeParse(name);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.message).toContain(problem);
  });

  it('trims a name, and takes one line of any script', () => {
    expect(ModelName.parse('  llama 3 ')).toBe('llama 3');
    expect(ModelName.parse('模型:q4_K_M')).toBe('模型:q4_K_M');
  });
});

describe('GGUF models', () => {
  it('are stored with what their header says', async () => {
    const dir = await tempDir();
    await prepareModelDir(dir);
    const tiny = writeTinyGguf(join(await tempDir(), 'tiny.gguf'));
    const bytes = await readFile(tiny.file);
    const info = await addModelFromStream(dir, chunksOf(bytes), { name: 'tiny' });
    expect(info).toMatchObject({
      sha256: sha(bytes),
      size: tiny.size,
      format: 'gguf',
      gguf: { architecture: 'llama', parameterCount: tiny.parameterCount, contextLength: tiny.contextLength, quantization: 'F32', chatTemplate: true },
    });
    const plain = writeTinyGguf(join(await tempDir(), 'plain.gguf'), { chatTemplate: null, contextLength: 128, seed: 2 });
    expect((await addModelFromStream(dir, chunksOf(await readFile(plain.file)))).gguf).toMatchObject({ contextLength: 128, chatTemplate: false });
  });

  it('stored before formats were checked are read for their metadata, or run by no kind when they would be refused today', async () => {
    const dir = await tempDir();
    await prepareModelDir(dir);
    const tiny = await readFile(writeTinyGguf(join(await tempDir(), 'tiny.gguf')).file);
    const cut = tiny.subarray(0, 1000);
    for (const bytes of [tiny, cut]) {
      await writeFile(join(dir, sha(bytes)), bytes);
      await writeFile(join(dir, `${sha(bytes)}.json`), JSON.stringify({ sha256: sha(bytes), size: bytes.length, name: '', addedAt: '2025-01-01T00:00:00.000Z' }));
    }
    expect(await getModelInfo(dir, sha(tiny))).toMatchObject({ format: 'gguf', gguf: { architecture: 'llama', contextLength: 512 } });
    expect(await getModelInfo(dir, sha(cut))).toMatchObject({ format: null, gguf: null });
  });

  it('are refused when malformed or truncated anywhere, storing nothing', async () => {
    const dir = await tempDir();
    await prepareModelDir(dir);
    const scratch = await tempDir();
    const whole = await readFile(writeTinyGguf(join(scratch, 'tiny.gguf')).file);
    writeMalformedGguf(join(scratch, 'bad.gguf'));
    writeTruncatedGguf(join(scratch, 'cut.gguf'));
    const cases: [string, Buffer][] = [
      ['malformed', await readFile(join(scratch, 'bad.gguf'))],
      ['tensor data cut', await readFile(join(scratch, 'cut.gguf'))],
      ['magic and garbage', Buffer.concat([Buffer.from('GGUF'), randomBytes(4000)])],
      ['version 3 and garbage', Buffer.concat([Buffer.from('GGUF'), Buffer.from([3, 0, 0, 0]), randomBytes(4000)])],
      ['magic only', Buffer.from('GGUF')],
      ...[12, 24, 100, 1000, 10_000, whole.length - 1].map((n): [string, Buffer] => [`first ${n} bytes`, whole.subarray(0, n)]),
    ];
    for (const [what, bytes] of cases) {
      const refused = await addModelFromStream(dir, chunksOf(bytes)).catch((e: unknown) => e);
      expect(refused, what).toMatchObject({ code: 'GG_ERR_MODEL_INVALID' });
    }
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('parseRange', () => {
  it.each([
    [undefined, { kind: 'full' }],
    ['bytes=0-', { kind: 'partial', start: 0, end: 99 }],
    ['bytes=40-', { kind: 'partial', start: 40, end: 99 }],
    ['bytes=10-19', { kind: 'partial', start: 10, end: 19 }],
    ['bytes=90-500', { kind: 'partial', start: 90, end: 99 }],
    ['bytes=-30', { kind: 'partial', start: 70, end: 99 }],
    ['bytes=-500', { kind: 'partial', start: 0, end: 99 }],
    ['bytes=100-', { kind: 'unsatisfiable' }],
    ['bytes=100-200', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=20-10', { kind: 'full' }],
    ['bytes=0-1,5-9', { kind: 'full' }],
    ['items=0-1', { kind: 'full' }],
    ['bytes=-', { kind: 'full' }],
  ])('%s of 100 bytes → %o', (header, expected) => {
    expect(parseRange(header, 100)).toEqual(expected);
  });

  it('has nothing to give from an empty file', () => {
    expect(parseRange('bytes=0-', 0)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-1', 0)).toEqual({ kind: 'unsatisfiable' });
  });
});

describe('model routes over HTTPS', () => {
  const ADMIN_KEY = 'test-admin-key';
  const MAX_UPLOAD = 4 * 1024 * 1024;
  let app: FastifyInstance;
  let base: string;
  let ca: CaMaterial;
  let dir: string;
  const workers: Record<'active' | 'revoked' | 'foreign', { certPem: string; keyPem: string }> = {} as never;
  const model = onnxLike(3 * 1024 * 1024 + 17); // over fastify's 1 MiB body limit
  const req = (r: Omit<RawRequest, 'ca' | 'url'> & { path: string }) => rawRequest({ ...r, url: `${base}${r.path}`, ca: ca.certPem });
  const admin = { authorization: `Bearer ${ADMIN_KEY}` };

  async function workerCert(issuer: CaMaterial, workerId: string) {
    const { keyPem, csrPem } = await createKeyAndCsr(workerId);
    return { keyPem, certPem: await signCsr(issuer, csrPem, { workerId, validityDays: 1 }) };
  }

  beforeAll(async () => {
    ca = await createCa({ commonName: 'test CA' });
    const server = await issueServerCert(ca, { dnsNames: ['gogrid-coordinator'] });
    workers.active = await workerCert(ca, 'w-active');
    workers.revoked = await workerCert(ca, 'w-revoked');
    workers.foreign = await workerCert(await createCa({ commonName: 'another CA' }), 'w-active');
    dir = join(await tempDir(), 'models');
    // The same TLS settings as buildHttpApi: a client certificate is asked for, not demanded.
    app = Fastify({ https: { key: server.keyPem, cert: server.certPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' } });
    app.setErrorHandler((err, _req, reply) => {
      const body = toErrorBody(err, 'coordinator');
      void reply.status(body.status).send(body.payload);
    });
    const requireApiKey = async (r: FastifyRequest) => {
      if (r.headers.authorization !== `Bearer ${ADMIN_KEY}`) throw new GridError('GG_ERR_UNAUTHENTICATED', 'API key is not valid');
    };
    await app.register(modelRoutes, { dir, requireApiKey, isWorkerAllowed: async (id) => id === 'w-active', maxUploadBytes: MAX_UPLOAD });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    if (!addr || typeof addr === 'string') throw new Error('no port');
    base = `https://127.0.0.1:${addr.port}`;
  });
  afterAll(async () => {
    await app.close();
  });

  it('uploads as a stream, then lists and describes the model', async () => {
    const res = await req({ method: 'POST', path: '/v1/models?name=big', headers: { ...admin, 'content-type': 'application/octet-stream', 'x-gogrid-sha256': sha(model) }, body: model });
    expect(res.status).toBe(200);
    const info = ModelInfo.parse(res.json());
    expect(info).toMatchObject({ sha256: sha(model), size: model.length, name: 'big', format: 'onnx' });

    const list = ModelList.parse((await req({ path: '/v1/models', headers: admin })).json());
    expect(list.data).toEqual([{ id: info.name, object: 'model', created: Math.floor(Date.parse(info.addedAt) / 1000), owned_by: 'gogrid', ...info }]);
    expect(ModelInfo.parse((await req({ path: `/v1/models/${info.sha256}/info`, headers: admin })).json())).toEqual(info);

    const unknown = await req({ path: `/v1/models/${sha(Buffer.from('x'))}/info`, headers: admin });
    expect([unknown.status, unknown.json()]).toEqual([404, { error: expect.objectContaining({ code: 'GG_ERR_MODEL_NOT_FOUND' }) }]);
    expect(ModelInfo.parse((await req({ path: '/v1/models/BIG/info', headers: admin })).json())).toEqual(info);
    expect((await req({ path: '/v1/models/NOT-A-NAME/info', headers: admin })).status).toBe(404);
    expect((await req({ path: '/v1/models' })).status).toBe(401);
  });

  it('refuses an upload whose bytes do not match x-gogrid-sha256 and stores nothing', async () => {
    const before = await readdir(dir);
    const bytes = randomBytes(100_000);
    const res = await req({ method: 'POST', path: '/v1/models', headers: { ...admin, 'content-type': 'application/octet-stream', 'x-gogrid-sha256': sha(Buffer.from('something else')) }, body: bytes });
    expect(res.status).toBe(400);
    expect(res.json()).toEqual({ error: expect.objectContaining({ code: 'GG_ERR_MODEL_HASH_MISMATCH' }) });
    expect(await readdir(dir)).toEqual(before);
  });

  it('refuses uploads over the maximum, declared or streamed, and uploads without a key or a body', async () => {
    const before = await readdir(dir);
    const headers = { ...admin, 'content-type': 'application/octet-stream' };
    // Declared too large: answered before any byte of the body is read.
    const declared = await req({ method: 'POST', path: '/v1/models', headers: { ...headers, 'content-length': String(MAX_UPLOAD + 1) } });
    expect(declared.status).toBe(413);
    // Chunked, no length: refused once the bytes pass the maximum.
    const streamed = await req({ method: 'POST', path: '/v1/models', headers, body: [randomBytes(MAX_UPLOAD / 2), randomBytes(MAX_UPLOAD / 2), randomBytes(1000)] });
    expect(streamed.status).toBe(413);
    const noKey = await req({ method: 'POST', path: '/v1/models', headers: { 'content-type': 'application/octet-stream' }, body: randomBytes(10) });
    expect(noKey.status).toBe(401);
    const noBody = await req({ method: 'POST', path: '/v1/models', headers: admin });
    expect(noBody.status).toBe(400);
    expect(await readdir(dir)).toEqual(before);
  });

  it('refuses a file that is no model, and a name another model has before reading the upload', async () => {
    const before = await readdir(dir);
    const headers = { ...admin, 'content-type': 'application/octet-stream' };
    const text = Buffer.from('{"not": "a model"}');
    const invalid = await req({ method: 'POST', path: '/v1/models?name=text', headers, body: text });
    expect([invalid.status, invalid.json()]).toEqual([400, { error: { code: 'GG_ERR_MODEL_INVALID', message: expect.stringContaining('neither') } }]);
    // Declared 3 MiB, never sent: the answer comes from the name alone.
    const other = onnxLike(1000);
    const taken = await req({ method: 'POST', path: '/v1/models?name=other&alias=BIG', headers: { ...headers, 'x-gogrid-sha256': sha(other), 'content-length': String(3 * 1024 * 1024) } });
    expect([taken.status, taken.json()]).toEqual([409, { error: { code: 'GG_ERR_MODEL_NAME_TAKEN', message: expect.stringContaining('"BIG" is already a name of model') } }]);
    const badName = await req({ method: 'POST', path: `/v1/models?name=${'f'.repeat(64)}`, headers, body: other });
    expect([badName.status, badName.json()]).toEqual([400, { error: { code: 'GG_ERR_BAD_REQUEST', message: expect.stringMatching(/^query\.name: .*sha256/) } }]);
    expect(await readdir(dir)).toEqual(before);
  });

  it('stores names and aliases given on upload, and renames and aliases by sha256, name or alias', async () => {
    const bytes = onnxLike(2000);
    const json = { ...admin, 'content-type': 'application/json' };
    const added = await req({ method: 'POST', path: '/v1/models?name=small&alias=tiny&alias=meta%2Fsmall', headers: { ...admin, 'content-type': 'application/octet-stream', 'x-gogrid-sha256': sha(bytes) }, body: bytes });
    expect(ModelInfo.parse(added.json())).toMatchObject({ name: 'small', aliases: ['tiny', 'meta/small'] });
    const call = async (method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown) => {
      const res = await req({ method, path, headers: body === undefined ? admin : json, ...(body === undefined ? {} : { body: Buffer.from(JSON.stringify(body)) }) });
      return [res.status, res.json()];
    };
    expect(await call('GET', `/v1/models/${encodeURIComponent('META/Small')}/info`)).toEqual([200, expect.objectContaining({ sha256: sha(bytes) })]);
    expect(await call('PUT', '/v1/models/tiny/name', { name: 'small-v2' })).toEqual([200, expect.objectContaining({ name: 'small-v2', aliases: ['tiny', 'meta/small'] })]);
    expect(await call('POST', `/v1/models/${sha(bytes)}/aliases`, { alias: 'small' })).toEqual([200, expect.objectContaining({ aliases: ['tiny', 'meta/small', 'small'] })]);
    expect(await call('DELETE', `/v1/models/small-v2/aliases/${encodeURIComponent('meta/small')}`)).toEqual([200, expect.objectContaining({ aliases: ['tiny', 'small'] })]);
    expect(await call('POST', '/v1/models/small/aliases', { alias: 'big' })).toEqual([409, { error: expect.objectContaining({ code: 'GG_ERR_MODEL_NAME_TAKEN' }) }]);
    expect(await call('PUT', '/v1/models/small/name', { name: 'two\nlines' })).toEqual([400, { error: expect.objectContaining({ code: 'GG_ERR_BAD_REQUEST' }) }]);
    expect(await call('DELETE', '/v1/models/nobody/aliases/tiny')).toEqual([404, { error: expect.objectContaining({ code: 'GG_ERR_MODEL_NOT_FOUND' }) }]);
    expect((await req({ method: 'PUT', path: '/v1/models/small/name', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"name":"x"}') })).status).toBe(401);
  });

  it('serves the bytes to an enrolled worker by its client certificate, with ETag and ranges', async () => {
    const path = `/v1/models/${sha(model)}`;
    const asWorker = { cert: workers.active.certPem, key: workers.active.keyPem };
    const full = await req({ path, ...asWorker });
    expect(full.status).toBe(200);
    expect(full.body.equals(model)).toBe(true);
    expect(full.headers).toMatchObject({ etag: `"${sha(model)}"`, 'accept-ranges': 'bytes', 'content-length': String(model.length), 'content-type': 'application/octet-stream' });

    const tail = await req({ path, ...asWorker, headers: { range: 'bytes=1000000-' } });
    expect(tail.status).toBe(206);
    expect(tail.headers['content-range']).toBe(`bytes 1000000-${model.length - 1}/${model.length}`);
    expect(tail.body.equals(model.subarray(1_000_000))).toBe(true);

    const middle = await req({ path, ...asWorker, headers: { range: 'bytes=5-14' } });
    expect([middle.status, middle.headers['content-range'], middle.body.equals(model.subarray(5, 15))]).toEqual([206, `bytes 5-14/${model.length}`, true]);

    const beyond = await req({ path, ...asWorker, headers: { range: `bytes=${model.length}-` } });
    expect([beyond.status, beyond.headers['content-range']]).toEqual([416, `bytes */${model.length}`]);

    const head = await req({ method: 'HEAD', path, ...asWorker });
    expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, String(model.length), 0]);

    const missing = await req({ path: `/v1/models/${sha(Buffer.from('missing'))}`, ...asWorker });
    expect([missing.status, missing.json()]).toEqual([404, { error: expect.objectContaining({ code: 'GG_ERR_MODEL_NOT_FOUND' }) }]);
  });

  it('refuses downloads without a certificate or key, with a certificate from another CA, and from a revoked worker', async () => {
    const path = `/v1/models/${sha(model)}`;
    const codeOf = async (r: Promise<{ status: number; json(): unknown }>) => {
      const res = await r;
      return [res.status, (res.json() as { error: { code: string } }).error.code];
    };
    expect(await codeOf(req({ path }))).toEqual([401, 'GG_ERR_UNAUTHENTICATED']);
    expect(await codeOf(req({ path, cert: workers.foreign.certPem, key: workers.foreign.keyPem }))).toEqual([401, 'GG_ERR_UNAUTHENTICATED']);
    expect(await codeOf(req({ path, cert: workers.revoked.certPem, key: workers.revoked.keyPem }))).toEqual([403, 'GG_ERR_WORKER_REVOKED']);
    expect(await codeOf(req({ path, headers: { authorization: 'Bearer wrong' } }))).toEqual([401, 'GG_ERR_UNAUTHENTICATED']);
    // An administrator's key works too (e.g. to copy a model elsewhere).
    const byKey = await req({ path, headers: admin });
    expect([byKey.status, byKey.body.length]).toEqual([200, model.length]);
  });
});
