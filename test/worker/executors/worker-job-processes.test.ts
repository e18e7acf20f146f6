/**
 * The worker's own pool of job processes (worker.ts): back-to-back jobs run
 * on one warm process, and stopping the worker leaves none behind. A real
 * grid on loopback (QUIC, HTTPS, PGlite, onnxruntime).
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { JobInfo } from '../../../src/protocol/api.js';
import { startWorker } from '../../../src/worker/worker.js';
import { writeOnnxFixtures } from '../../fixtures/make-onnx.js';
import { removeTempDirs, startTestCoordinator, tempDir } from '../../helpers/grid.js';
import { isAlive } from './helpers.js';

afterAll(() => removeTempDirs());

/** A debug logger that keeps the pid of every job process it sees start. */
function pidLogger() {
  const pids: number[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) {
        const m = /\[job \S+ pid (\d+)\] started/.exec(line);
        if (m) pids.push(Number(m[1]));
      }
      done();
    },
  });
  return { pids, logger: pino({ level: 'debug' }, sink) };
}

describe("a worker's job processes", () => {
  it('runs back-to-back jobs on one warm process and leaves none behind when it stops', { timeout: 60_000 }, async () => {
    const c = await startTestCoordinator();
    const { pids, logger } = pidLogger();
    try {
      const fixtures = writeOnnxFixtures(await tempDir());
      const w = await startWorker({
        dataDir: await tempDir('gogrid-worker-'),
        coordinator: `127.0.0.1:${c.port}`,
        token: await c.createToken(),
        appVersion: '0.0.0-test',
        logger,
        agent: { maxIdleTimeoutMs: 1500, backoff: { baseMs: 50, capMs: 300 } },
        jobs: { threads: 1 },
      });
      try {
        await w.agent.waitFor('online');
        const sha256 = await c.addModel(fixtures.mlp);
        for (let i = 0; i < 3; i++) {
          const job = JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256 }, input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [i, 1, 2, 3] } } } }));
          expect((await c.finished(job.id)).state).toBe('succeeded');
        }
        expect(pids).toHaveLength(1);
        expect(isAlive(pids[0]!)).toBe(true); // warm, waiting for the next job
      } finally {
        await w.agent.stop();
      }
      // The pool closes once the agent is done; its process is observed, not awaited, from here.
      await expect.poll(() => pids.filter(isAlive), { timeout: 5000, interval: 20 }).toEqual([]);
    } finally {
      await c.stop();
    }
  });
});
