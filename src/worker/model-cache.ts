/**
 * The worker's model cache: content-addressed files `<dir>/<sha256>`, each
 * renamed to that name only after the whole file hashed to exactly that
 * sha256 and size, so a file under a sha256 name is verified and nothing
 * else is ever handed out.
 *
 *   const cache = await ModelCache.open({ dir: join(dataDir, 'models'), maxBytes: 20 * 2 ** 30, download });
 *   const model = await cache.acquire(job.model, signal); // downloads unless cached
 *   try { await run(model.path); } finally { model.release(); }
 *   hello.cachedModels = cache.cached();
 *
 * - Concurrent acquires of one model share one download.
 * - A download that fails keeps `<sha256>.partial`; the next one re-hashes
 *   those bytes and asks for the rest with a range request.
 * - Over `maxBytes`, least-recently-used models that nobody holds are
 *   deleted. A model in use is never deleted, so the cap can be exceeded
 *   while models larger than it (or too many at once) are held; they go at
 *   the next eviction after their release.
 * - At start the directory is trusted, not re-hashed (GBs would take
 *   minutes): a sha256 name is only ever created by the rename after
 *   verification and an fsync, and rename is atomic. A file whose size
 *   disagrees with the job's model reference is deleted and fetched again.
 * - Last use is the file's mtime, so the LRU order survives restarts. It
 *   is written at most once a minute per model: a worker running many tiny
 *   jobs would otherwise make a file-system call per job, and the order
 *   across a restart needs no finer grain.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { GridError, isGridError, type ModelRef } from '../protocol/index.js';
import { HashingWriter } from '../common/hashing-writer.js';
import { ensurePrivateDir, isErrno, syncDirectory } from '../common/files.js';
import type { ModelDownloader } from './model-download.js';

export interface ModelCacheOptions {
  dir: string;
  /** Size cap in bytes for verified models and kept partial downloads together. */
  maxBytes: number;
  download: ModelDownloader;
  logger?: Logger;
}

export interface AcquiredModel {
  /** The verified file; valid until `release()`. */
  path: string;
  /** Lets eviction delete the file again; calling it twice is harmless. */
  release(): void;
}

interface Verified {
  size: number;
  /** Holders that have not released it. */
  refs: number;
  /** When its file's mtime was last set (ms since the epoch). */
  touchedAt: number;
}

/** A model's mtime records its last use to within this. */
const TOUCH_EVERY_MS = 60_000;

/** One download, shared by every acquire that arrives while it runs. */
interface Fetch {
  ref: ModelRef;
  promise: Promise<void>;
  /** Acquires waiting on it; when the last one gives up the download is aborted. */
  waiters: number;
  controller: AbortController;
}

const SHA256 = /^[0-9a-f]{64}$/;
const PARTIAL = /^([0-9a-f]{64})\.partial$/;

export class ModelCache {
  /** Map order is use order, least recent first (re-inserted on every use). */
  private readonly models = new Map<string, Verified>();
  private readonly partials = new Map<string, number>();
  private readonly fetches = new Map<string, Fetch>();
  /** Per model, the last file operation (download or deletion); the next one waits for it. */
  private readonly tails = new Map<string, Promise<void>>();

  private constructor(private readonly opts: ModelCacheOptions) {}

  /** Scans `dir`: verified files count, `.partial` files are kept for resume, temp files are removed. */
  static async open(opts: ModelCacheOptions): Promise<ModelCache> {
    const cache = new ModelCache(opts);
    await cache.scan();
    return cache;
  }

  /** The sha256 of every verified model on disk, for `hello` and heartbeats. */
  cached(): string[] {
    return [...this.models.keys()];
  }

  /** Bytes on disk: verified models plus kept partial downloads. */
  usedBytes(): number {
    let total = 0;
    for (const m of this.models.values()) total += m.size;
    for (const size of this.partials.values()) total += size;
    return total;
  }

  /**
   * Resolves with a verified file for `ref`, downloading it if needed. Fails
   * with GG_ERR_MODEL_HASH_MISMATCH when the bytes do not match (nothing is
   * kept), or with the download's error (the partial file is kept). Aborting
   * `signal` gives up this caller's wait; the shared download stops only
   * when every caller waiting for it has given up.
   */
  async acquire(ref: ModelRef, signal?: AbortSignal): Promise<AcquiredModel> {
    if (!SHA256.test(ref.sha256)) throw new GridError('GG_ERR_BAD_REQUEST', `model reference ${ref.sha256} is not a lowercase hex sha256`);
    signal?.throwIfAborted();
    const model = this.models.get(ref.sha256);
    if (model && model.size === ref.size) {
      model.refs++;
      return this.hand(ref.sha256, model, signal);
    }
    if (model && model.refs > 0) {
      throw new GridError('GG_ERR_MODEL_HASH_MISMATCH', `model ${ref.sha256} is ${model.size} bytes, but the job says ${ref.size}`);
    }
    // Damaged on disk since it was verified (or never this size): fetch it again.
    if (model) await this.remove(ref.sha256, 'its size does not match the model reference');
    const fetch = this.fetches.get(ref.sha256) ?? this.startFetch(ref);
    await this.wait(fetch, signal);
    // The finished download counted this caller as a holder, so it cannot have been evicted meanwhile.
    return this.hand(ref.sha256, this.models.get(ref.sha256)!, signal);
  }

  private async hand(sha256: string, model: Verified, signal: AbortSignal | undefined): Promise<AcquiredModel> {
    const file = this.file(sha256);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      model.refs--;
      if (model.refs === 0) this.evictInBackground();
    };
    this.models.delete(sha256);
    this.models.set(sha256, model);
    const now = Date.now();
    if (now - model.touchedAt >= TOUCH_EVERY_MS) {
      model.touchedAt = now;
      await fs.utimes(file, now / 1000, now / 1000).catch((e: unknown) => this.opts.logger?.warn({ err: e, sha256 }, 'could not record model use time'));
    }
    if (signal?.aborted) {
      release();
      throw signal.reason;
    }
    return { path: file, release };
  }

  /** Resolves once the model is verified, with this caller counted as a holder. */
  private wait(fetch: Fetch, signal: AbortSignal | undefined): Promise<void> {
    fetch.waiters++;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        // Finished already: this caller is counted as a holder and acquire releases it.
        if (this.fetches.get(fetch.ref.sha256) !== fetch) return;
        fetch.waiters--;
        if (fetch.waiters === 0) {
          this.fetches.delete(fetch.ref.sha256);
          fetch.controller.abort(signal?.reason);
        }
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      fetch.promise.then(
        () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        (e: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      );
    });
  }

  private startFetch(ref: ModelRef): Fetch {
    const fetch: Fetch = { ref, waiters: 0, controller: new AbortController(), promise: Promise.resolve() };
    fetch.promise = this.serial(ref.sha256, async () => {
      // An earlier download that everyone had given up on may have finished anyway.
      const done = this.models.get(ref.sha256);
      if (!done || done.size !== ref.size) {
        try {
          await this.evict(Math.max(0, ref.size - (this.partials.get(ref.sha256) ?? 0)));
          await this.fetchVerified(ref, fetch.controller.signal);
        } catch (e) {
          if (this.fetches.get(ref.sha256) === fetch) this.fetches.delete(ref.sha256);
          await this.notePartial(ref.sha256);
          throw e;
        }
      }
      // In one synchronous step: the waiters become holders before eviction
      // can run, and later acquires find the model instead of this fetch.
      this.partials.delete(ref.sha256);
      const model = this.models.get(ref.sha256);
      if (model) model.refs += fetch.waiters;
      else this.models.set(ref.sha256, { size: ref.size, refs: fetch.waiters, touchedAt: Date.now() });
      if (this.fetches.get(ref.sha256) === fetch) this.fetches.delete(ref.sha256);
      this.evictInBackground();
    });
    this.fetches.set(ref.sha256, fetch);
    return fetch;
  }

  /** Downloads (or resumes) `ref` into `<sha256>.partial`, verifies it and renames it to `<sha256>`. */
  private async fetchVerified(ref: ModelRef, signal: AbortSignal): Promise<void> {
    const partial = this.partialFile(ref.sha256);
    let offset = (await fileSize(partial)) ?? 0;
    if (offset > ref.size) {
      await fs.rm(partial, { force: true });
      offset = 0;
    }
    try {
      await this.transfer(ref, offset, signal);
    } catch (e) {
      if (offset === 0 || !isGridError(e, 'GG_ERR_MODEL_HASH_MISMATCH')) throw e;
      // The kept bytes may be what was wrong (a torn write after a power cut): once more from the start.
      this.opts.logger?.warn({ sha256: ref.sha256, offset }, 'resumed model download did not verify; downloading it again from the start');
      await this.transfer(ref, 0, signal);
    }
    this.opts.logger?.info({ sha256: ref.sha256, size: ref.size, name: ref.name, resumedFrom: offset }, 'model downloaded and verified');
  }

  private async transfer(ref: ModelRef, offset: number, signal: AbortSignal): Promise<void> {
    const partial = this.partialFile(ref.sha256);
    const mismatch = async (why: string) => {
      await fs.rm(partial, { force: true });
      return new GridError('GG_ERR_MODEL_HASH_MISMATCH', `model ${ref.sha256} (${ref.name}): ${why}; the download was discarded`);
    };
    let writer: HashingWriter;
    if (offset > 0 && offset === ref.size) {
      // Every byte arrived before; only the verification is left.
      writer = await HashingWriter.open(partial, { flags: 'a' });
    } else {
      const res = await this.opts.download(ref.sha256, { offset, signal });
      let ended = false;
      try {
        if (res.totalSize !== ref.size) throw await mismatch(`the server has ${res.totalSize} bytes, the reference says ${ref.size}`);
        const start = res.status === 206 ? offset : 0;
        writer = await HashingWriter.open(partial, { flags: start > 0 ? 'a' : 'w' });
        try {
          if (writer.bytes !== start) throw new Error(`${partial} is ${writer.bytes} bytes, expected ${start}`);
          for await (const chunk of res.body) {
            if (writer.bytes + chunk.length > ref.size) throw await mismatch(`more than ${ref.size} bytes arrived`);
            await writer.write(chunk);
          }
          ended = true;
        } catch (e) {
          await writer.close();
          throw e;
        }
      } finally {
        if (!ended) await discard(res.body);
      }
      if (writer.bytes < ref.size) {
        await writer.close();
        throw new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `model ${ref.sha256} download ended after ${writer.bytes} of ${ref.size} bytes; it resumes on the next try`);
      }
    }
    const digest = await writer.finish();
    if (digest.sha256 !== ref.sha256) throw await mismatch(`the bytes hash to ${digest.sha256}`);
    await fs.rename(partial, this.file(ref.sha256));
    await syncDirectory(this.opts.dir);
  }

  /** Deletes least-recently-used models nobody holds, then idle partials, until `reserve` more bytes fit under the cap. */
  private async evict(reserve: number): Promise<void> {
    for (;;) {
      if (this.usedBytes() + reserve <= this.opts.maxBytes) return;
      const victim = this.pickVictim();
      if (!victim) return;
      await this.remove(victim, 'least recently used, over the size cap');
    }
  }

  private pickVictim(): string | null {
    // Partials first: they are only kept in case the same model is asked for again.
    for (const sha256 of this.partials.keys()) if (!this.fetches.has(sha256)) return sha256;
    for (const [sha256, m] of this.models) if (m.refs === 0) return sha256;
    return null;
  }

  private evictInBackground(): void {
    this.evict(0).catch((e: unknown) => this.opts.logger?.warn({ err: e }, 'model eviction failed'));
  }

  /** Forgets the file at once (so nobody is handed it) and deletes it before the next download of it starts. */
  private remove(sha256: string, reason: string): Promise<void> {
    const size = this.models.get(sha256)?.size ?? this.partials.get(sha256);
    this.models.delete(sha256);
    this.partials.delete(sha256);
    this.opts.logger?.info({ sha256, size, reason }, 'model removed from the cache');
    return this.serial(sha256, async () => {
      await fs.rm(this.file(sha256), { force: true });
      // A partial that a later fetch created is not this one; only drop one nobody is writing.
      if (!this.fetches.has(sha256)) await fs.rm(this.partialFile(sha256), { force: true });
    });
  }

  /** Runs `task` after every earlier file operation on the same model. */
  private serial(sha256: string, task: () => Promise<void>): Promise<void> {
    const run = (this.tails.get(sha256) ?? Promise.resolve()).then(task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(sha256, tail);
    void tail.then(() => {
      if (this.tails.get(sha256) === tail) this.tails.delete(sha256);
    });
    return run;
  }

  private async notePartial(sha256: string): Promise<void> {
    const size = await fileSize(this.partialFile(sha256));
    if (size === null) this.partials.delete(sha256);
    else this.partials.set(sha256, size);
  }

  private async scan(): Promise<void> {
    await ensurePrivateDir(this.opts.dir);
    const found: Array<{ name: string; size: number; mtimeMs: number }> = [];
    for (const name of await fs.readdir(this.opts.dir)) {
      const st = await fs.stat(path.join(this.opts.dir, name)).catch(() => null);
      if (st?.isFile()) found.push({ name, size: st.size, mtimeMs: st.mtimeMs });
    }
    found.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of found) if (SHA256.test(f.name)) this.models.set(f.name, { size: f.size, refs: 0, touchedAt: f.mtimeMs });
    for (const f of found) {
      const partialOf = PARTIAL.exec(f.name)?.[1];
      if (partialOf && !this.models.has(partialOf)) this.partials.set(partialOf, f.size);
      else if (partialOf || f.name.endsWith('.tmp')) await fs.rm(path.join(this.opts.dir, f.name), { force: true });
    }
    this.opts.logger?.info({ models: this.models.size, partials: this.partials.size, bytes: this.usedBytes() }, 'model cache opened');
    await this.evict(0);
  }

  private file(sha256: string): string {
    return path.join(this.opts.dir, sha256);
  }

  private partialFile(sha256: string): string {
    return path.join(this.opts.dir, `${sha256}.partial`);
  }
}

/** Stops a body that will not be read to its end (for a stream: destroys it, closing the connection). */
async function discard(body: AsyncIterable<Uint8Array>): Promise<void> {
  await body[Symbol.asyncIterator]().return?.();
}

async function fileSize(file: string): Promise<number | null> {
  try {
    return (await fs.stat(file)).size;
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return null;
    throw e;
  }
}
