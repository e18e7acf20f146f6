/**
 * The worker's model cache on a real directory. The downloader is the
 * boundary faked here (a server that lies, dies mid-stream or ignores
 * ranges); test/integration/models.test.ts runs it over real HTTPS.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isGridError, type ModelRef } from '../../src/protocol/index.js';
import { ModelCache } from '../../src/worker/model-cache.js';
import type { DownloadResponse, ModelDownloader } from '../../src/worker/model-download.js';
import { removeTempDirs, tempDir } from '../helpers/grid.js';

afterAll(removeTempDirs);

const CHUNK = 64 * 1024;

function modelOf(size: number, name = 'm.onnx'): { bytes: Buffer; ref: ModelRef } {
  const bytes = randomBytes(size);
  return { bytes, ref: { sha256: createHash('sha256').update(bytes).digest('hex'), size, name } };
}

interface FakeServer {
  download: ModelDownloader;
  /** The offset of every request, in order. */
  offsets: number[];
}

/**
 * Serves `files` by sha256 like the coordinator does. `dieAfter` ends the
 * first response with an error after that many bytes; `ignoreRanges`
 * answers 200 with everything; `gate` holds every body until it resolves.
 */
function fakeServer(files: Array<{ ref: ModelRef; bytes: Buffer }>, opts: { dieAfter?: number; ignoreRanges?: boolean; gate?: Promise<void> } = {}): FakeServer {
  const offsets: number[] = [];
  let dieAfter = opts.dieAfter;
  const download: ModelDownloader = async (sha256, { offset, signal }) => {
    offsets.push(offset);
    const file = files.find((f) => f.ref.sha256 === sha256);
    if (!file) throw new Error(`fake server has no ${sha256}`);
    const start = opts.ignoreRanges ? 0 : offset;
    const limit = dieAfter;
    dieAfter = undefined;
    async function* body(): AsyncGenerator<Uint8Array> {
      await opts.gate;
      for (let at = start; at < file!.bytes.length; at += CHUNK) {
        signal?.throwIfAborted();
        const chunk = file!.bytes.subarray(at, Math.min(at + CHUNK, file!.bytes.length));
        if (limit !== undefined && at - start + chunk.length > limit) {
          yield chunk.subarray(0, limit - (at - start));
          throw new Error('connection reset by peer');
        }
        yield chunk;
        // Let other work interleave, as a socket would.
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    const res: DownloadResponse = { status: start > 0 ? 206 : 200, body: body(), totalSize: file.bytes.length };
    return res;
  };
  return { download, offsets };
}

async function open(dir: string, server: FakeServer, maxBytes = 1 << 30): Promise<ModelCache> {
  return ModelCache.open({ dir, maxBytes, download: server.download });
}

describe('ModelCache', () => {
  it('downloads, verifies and then serves a model from disk', async () => {
    const dir = await tempDir();
    const m = modelOf(300_000);
    const server = fakeServer([m]);
    const cache = await open(dir, server);
    const got = await cache.acquire(m.ref);
    expect(got.path).toBe(join(dir, m.ref.sha256));
    expect((await readFile(got.path)).equals(m.bytes)).toBe(true);
    got.release();
    got.release(); // twice is harmless
    expect(cache.cached()).toEqual([m.ref.sha256]);
    (await cache.acquire(m.ref)).release();
    expect(server.offsets).toEqual([0]);
    expect(await readdir(dir)).toEqual([m.ref.sha256]);
  });

  it('handles an empty model and a partial file that is already complete', async () => {
    const dir = await tempDir();
    const empty = modelOf(0);
    const whole = modelOf(100_000);
    await writeFile(join(dir, `${whole.ref.sha256}.partial`), whole.bytes);
    const server = fakeServer([empty, whole]);
    const cache = await open(dir, server);
    expect((await readFile((await cache.acquire(empty.ref)).path)).length).toBe(0);
    expect((await readFile((await cache.acquire(whole.ref)).path)).equals(whole.bytes)).toBe(true);
    // The complete partial only had to be verified.
    expect(server.offsets).toEqual([0]);
  });

  it('discards bytes that do not hash to the reference and never serves them', async () => {
    const dir = await tempDir();
    const m = modelOf(200_000);
    const liar = fakeServer([{ ref: m.ref, bytes: randomBytes(200_000) }]);
    const cache = await open(dir, liar);
    const err = await cache.acquire(m.ref).catch((e: unknown) => e);
    expect(isGridError(err, 'GG_ERR_MODEL_HASH_MISMATCH')).toBe(true);
    expect(cache.cached()).toEqual([]);
    expect(await readdir(dir)).toEqual([]);
    // Asked again, it downloads again rather than handing out what it saw.
    await expect(cache.acquire(m.ref)).rejects.toMatchObject({ code: 'GG_ERR_MODEL_HASH_MISMATCH' });
    expect(liar.offsets).toEqual([0, 0]);

    // A server that sends too many bytes is cut off early.
    const longer = fakeServer([{ ref: m.ref, bytes: Buffer.concat([m.bytes, Buffer.from('extra')]) }]);
    const cache2 = await open(dir, longer);
    await expect(cache2.acquire(m.ref)).rejects.toMatchObject({ code: 'GG_ERR_MODEL_HASH_MISMATCH' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('resumes an interrupted download from the partial file with a range request', async () => {
    const dir = await tempDir();
    const m = modelOf(1_000_000);
    const server = fakeServer([m], { dieAfter: 400_000 });
    const cache = await open(dir, server);
    await expect(cache.acquire(m.ref)).rejects.toThrow('connection reset by peer');
    expect(cache.cached()).toEqual([]);
    // Everything that arrived before the failure was kept.
    expect((await stat(join(dir, `${m.ref.sha256}.partial`))).size).toBe(400_000);

    const got = await cache.acquire(m.ref);
    expect(server.offsets).toEqual([0, 400_000]);
    expect((await readFile(got.path)).equals(m.bytes)).toBe(true);
    expect(await readdir(dir)).toEqual([m.ref.sha256]);
    got.release();
  });

  it('starts over when the server ignores the range, or when the kept bytes were wrong', async () => {
    const dir = await tempDir();
    const m = modelOf(500_000);
    await writeFile(join(dir, `${m.ref.sha256}.partial`), m.bytes.subarray(0, 100_000));
    const noRanges = fakeServer([m], { ignoreRanges: true });
    const got = await (await open(dir, noRanges)).acquire(m.ref);
    expect(noRanges.offsets).toEqual([100_000]);
    expect((await readFile(got.path)).equals(m.bytes)).toBe(true);

    const n = modelOf(500_000);
    // A torn partial (garbage where a crash left it): the resumed file does not verify, so once more from 0.
    await writeFile(join(dir, `${n.ref.sha256}.partial`), randomBytes(100_000));
    const server = fakeServer([n]);
    const again = await (await open(dir, server)).acquire(n.ref);
    expect(server.offsets).toEqual([100_000, 0]);
    expect((await readFile(again.path)).equals(n.bytes)).toBe(true);
  });

  it('shares one download among concurrent acquires', async () => {
    const dir = await tempDir();
    const m = modelOf(400_000);
    let open_!: () => void;
    const server = fakeServer([m], { gate: new Promise<void>((r) => (open_ = r)) });
    const cache = await open(dir, server);
    const pending = Array.from({ length: 10 }, () => cache.acquire(m.ref));
    open_();
    const got = await Promise.all(pending);
    expect(server.offsets).toEqual([0]);
    expect(new Set(got.map((g) => g.path))).toEqual(new Set([join(dir, m.ref.sha256)]));
    for (const g of got) g.release();
  });

  it('keeps a shared download going while one caller gives up, and stops it when all do', async () => {
    const dir = await tempDir();
    const m = modelOf(400_000);
    let open_!: () => void;
    const server = fakeServer([m], { gate: new Promise<void>((r) => (open_ = r)) });
    const cache = await open(dir, server);
    const quitter = new AbortController();
    const first = cache.acquire(m.ref, quitter.signal);
    const second = cache.acquire(m.ref);
    quitter.abort(new Error('job canceled'));
    await expect(first).rejects.toThrow('job canceled');
    open_();
    (await second).release();
    expect(server.offsets).toEqual([0]);

    const n = modelOf(400_000);
    let openN!: () => void;
    const slow = fakeServer([n], { gate: new Promise<void>((r) => (openN = r)) });
    const cache2 = await open(dir, slow);
    const a = new AbortController();
    const b = new AbortController();
    const pa = cache2.acquire(n.ref, a.signal);
    const pb = cache2.acquire(n.ref, b.signal);
    a.abort(new Error('a gone'));
    b.abort(new Error('b gone'));
    openN();
    await expect(pa).rejects.toThrow('a gone');
    await expect(pb).rejects.toThrow('b gone');
    // Nothing verified; a later acquire starts a fresh download.
    const later = await cache2.acquire(n.ref);
    expect((await readFile(later.path)).equals(n.bytes)).toBe(true);
    expect(slow.offsets[0]).toBe(0);
    later.release();
  });

  it('evicts least-recently-used models over the cap, never one in use', async () => {
    const dir = await tempDir();
    const size = 100_000;
    const [a, b, c, d] = [modelOf(size, 'a'), modelOf(size, 'b'), modelOf(size, 'c'), modelOf(size, 'd')];
    const server = fakeServer([a!, b!, c!, d!]);
    const cache = await open(dir, server, 3 * size);
    const use = async (m: { ref: ModelRef }) => (await cache.acquire(m.ref)).release();
    await use(a!);
    await use(b!);
    await use(c!);
    await use(a!); // a is now more recent than b and c
    await use(d!); // over the cap: b, the least recently used, goes
    expect(new Set(cache.cached())).toEqual(new Set([a!.ref.sha256, c!.ref.sha256, d!.ref.sha256]));
    expect((await readdir(dir)).length).toBe(3);

    // Hold c, then use the others so that c is the least recent: the next eviction must skip it.
    const held = await cache.acquire(c!.ref);
    await use(a!);
    await use(d!);
    await use(b!);
    expect(new Set(cache.cached())).toEqual(new Set([c!.ref.sha256, d!.ref.sha256, b!.ref.sha256]));
    expect(cache.usedBytes()).toBe(3 * size);
    held.release();
  });

  it('lets a model larger than the cap run, and removes it once released', async () => {
    const dir = await tempDir();
    const small = modelOf(50_000);
    const big = modelOf(300_000);
    const cache = await open(dir, fakeServer([small, big]), 200_000);
    (await cache.acquire(small.ref)).release();
    const held = await cache.acquire(big.ref);
    // The small one had to go to make room; the big one stays while in use.
    expect(cache.cached()).toEqual([big.ref.sha256]);
    expect((await readFile(held.path)).equals(big.bytes)).toBe(true);
    held.release();
    await expect.poll(() => readdir(dir)).toEqual([]);
    expect(cache.cached()).toEqual([]);
  });

  it('after a restart knows its verified models in their use order, keeps partials and drops temp files', async () => {
    const dir = await tempDir();
    const [a, b, c] = [modelOf(100_000, 'a'), modelOf(100_000, 'b'), modelOf(600_000, 'c')];
    const first = await open(dir, fakeServer([a!, b!]));
    (await first.acquire(a!.ref)).release();
    (await first.acquire(b!.ref)).release();
    // a used more recently than b, as the cache records it (file times), an hour apart.
    const now = Date.now() / 1000;
    await utimes(join(dir, b!.ref.sha256), now - 7200, now - 7200);
    await utimes(join(dir, a!.ref.sha256), now - 3600, now - 3600);
    await writeFile(join(dir, `${c!.ref.sha256}.partial`), c!.bytes.subarray(0, 250_000));
    await writeFile(join(dir, '.stray.tmp'), 'left by a crash');

    const server = fakeServer([a!, b!, c!]);
    const reopened = await open(dir, server);
    expect(new Set(reopened.cached())).toEqual(new Set([a!.ref.sha256, b!.ref.sha256]));
    expect(await readdir(dir)).not.toContain('.stray.tmp');
    (await reopened.acquire(a!.ref)).release();
    const got = await reopened.acquire(c!.ref);
    expect(server.offsets).toEqual([250_000]);
    expect((await readFile(got.path)).equals(c!.bytes)).toBe(true);
    got.release();

    // A smaller cap at the next start evicts by the remembered order: b, the least recent, goes.
    const tight = await open(dir, server, 700_000);
    expect(new Set(tight.cached())).toEqual(new Set([a!.ref.sha256, c!.ref.sha256]));
  });

  it('records a use in the file time at most once a minute, so tiny jobs cost no file-system call each', async () => {
    const dir = await tempDir();
    const m = modelOf(10_000);
    const file = join(dir, m.ref.sha256);
    const hourAgo = Date.now() / 1000 - 3600;
    const cache = await open(dir, fakeServer([m]));
    (await cache.acquire(m.ref)).release();
    await utimes(file, hourAgo, hourAgo);
    (await cache.acquire(m.ref)).release();
    // Downloaded moments ago: its use is on record already.
    expect((await stat(file)).mtimeMs / 1000).toBeCloseTo(hourAgo, 0);

    const reopened = await open(dir, fakeServer([m]));
    (await reopened.acquire(m.ref)).release();
    expect((await stat(file)).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
  });

  it('fetches a cached file again when its size no longer matches the reference', async () => {
    const dir = await tempDir();
    const m = modelOf(200_000);
    const server = fakeServer([m]);
    (await (await open(dir, server)).acquire(m.ref)).release();
    await truncate(join(dir, m.ref.sha256), 1000);
    const got = await (await open(dir, server)).acquire(m.ref);
    expect(server.offsets).toEqual([0, 0]);
    expect((await readFile(got.path)).equals(m.bytes)).toBe(true);
  });
});
