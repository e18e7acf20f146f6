/**
 * The executors' session cache, on real onnxruntime-node sessions of the
 * fixture models (a released session refuses to run, so a test can tell),
 * and the order of creation and release the LLM executor relies on.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { SessionCache } from '../../../src/worker/executors/session-cache.js';
import { onnxFixtures } from './helpers.js';

const models = onnxFixtures();
afterAll(() => models.dispose());

const created: string[] = [];
function create(file: string) {
  return () => {
    created.push(path.basename(file));
    return ort.InferenceSession.create(file);
  };
}

async function runs(session: ort.InferenceSession): Promise<boolean> {
  const x = new ort.Tensor('float32', new Float32Array(4), [1, 4]);
  return session.run({ x }).then(
    () => true,
    (e: unknown) => {
      expect(String(e)).toContain('disposed');
      return false;
    },
  );
}

describe('SessionCache', () => {
  it('creates a session once per key and hands the same one back', async () => {
    created.length = 0;
    const cache = new SessionCache<ort.InferenceSession>(2);
    const a = await cache.acquire('mlp', create(models.mlp));
    a.release();
    const b = await cache.acquire('mlp', create(models.mlp));
    expect(b.session).toBe(a.session);
    expect(created).toEqual(['mlp.onnx']);
    b.release();
  });

  it('shares one creation between concurrent users of a key', async () => {
    created.length = 0;
    const cache = new SessionCache<ort.InferenceSession>(2);
    const [a, b] = await Promise.all([cache.acquire('mlp', create(models.mlp)), cache.acquire('mlp', create(models.mlp))]);
    expect(a.session).toBe(b.session);
    expect(created).toEqual(['mlp.onnx']);
    a.release();
    b.release();
  });

  it('releases the least recently used session past capacity', async () => {
    const cache = new SessionCache<ort.InferenceSession>(2);
    const mlp = await cache.acquire('mlp', create(models.mlp));
    mlp.release();
    (await cache.acquire('identity', create(models.identity))).release();
    (await cache.acquire('mlp', create(models.mlp))).release(); // mlp is now the most recent
    (await cache.acquire('seq', create(models.sequenceInput))).release(); // evicts identity, not mlp
    expect(await runs(mlp.session)).toBe(true);
    (await cache.acquire('identity', create(models.identity))).release(); // evicts mlp
    await expect.poll(() => runs(mlp.session)).toBe(false);
  });

  it('keeps an evicted session that is in use until its user is done with it', async () => {
    const cache = new SessionCache<ort.InferenceSession>(1);
    const mlp = await cache.acquire('mlp', create(models.mlp));
    (await cache.acquire('identity', create(models.identity))).release();
    expect(await runs(mlp.session)).toBe(true);
    mlp.release();
    await expect.poll(() => runs(mlp.session)).toBe(false);
  });

  it('does not keep a creation that failed', async () => {
    created.length = 0;
    const junk = path.join(models.dir, 'not-a-model.onnx');
    writeFileSync(junk, 'this is not a protobuf');
    const cache = new SessionCache<ort.InferenceSession>(2);
    await expect(cache.acquire('junk', create(junk))).rejects.toThrow();
    await expect(cache.acquire('junk', create(junk))).rejects.toThrow();
    expect(created).toEqual(['not-a-model.onnx', 'not-a-model.onnx']);
  });
});

describe('SessionCache with releaseFirst (as the LLM executor holds a model)', () => {
  it('creates the next session only once the one it displaces is released, and never holds two at once', async () => {
    const events: string[] = [];
    let held = 0;
    let most = 0;
    const cache = new SessionCache<{ release(): Promise<void> }>(1, { releaseFirst: true });
    const make = (name: string) => async () => {
      events.push(`create ${name}`);
      held += 1;
      most = Math.max(most, held);
      return {
        async release() {
          await new Promise((resolve) => setTimeout(resolve, 20));
          held -= 1;
          events.push(`released ${name}`);
        },
      };
    };
    (await cache.acquire('a', make('a'))).release();
    (await cache.acquire('b', make('b'))).release();
    (await cache.acquire('a', make('a'))).release();
    expect(events).toEqual(['create a', 'released a', 'create b', 'released b', 'create a']);
    expect(most).toBe(1);
  });
});
