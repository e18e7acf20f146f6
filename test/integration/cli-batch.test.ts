/**
 * `gogrid submit --batch` end to end: a file of 200 jobs with two bad lines is
 * refused with both line numbers and queues nothing; fixed, its 200 jobs run
 * on a worker, `--results` holds each output, and the summary counts them.
 * Progress bars (a batch's, a model upload's, one job's) show on a terminal
 * (a real pseudo-terminal) and never when piped.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listJobs } from '../../src/coordinator/store/index.js';
import type { RunningWorker } from '../../src/worker/worker.js';
import { mlpAnswer, wideMlpModel, writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, runCli, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';

let c: TestCoordinator;
let w: RunningWorker;
let dir: string;

beforeAll(async () => {
  c = await startTestCoordinator();
  w = await startTestWorker(c, { token: await c.createToken(), jobs: { slots: 4 } });
  await w.agent.waitFor('online');
  dir = await tempDir();
  // Stored as "mlp.onnx" (addModel names it after the file), the name the lines use.
  await c.addModel(writeOnnxFixtures(dir).mlp);
});
afterAll(async () => {
  await w.agent.stop();
  await c.stop();
  await removeTempDirs();
});

const line = (i: number) => JSON.stringify({ model: 'mlp.onnx', input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [i, 1, 2, 3] } } }, ...(i % 50 === 0 && { priority: 5 }) });
const lines = Array.from({ length: 200 }, (_, i) => line(i));

describe('submit --batch', () => {
  it('refuses a file with two bad lines, naming both by line number, and queues nothing', async () => {
    const bad = [...lines];
    bad[36] = '{"model": "mlp.onnx", "input": {"inputs": {}}, "prority": 3}';
    bad[119] = '{"model": "mlp.onnx", "input": ';
    const file = join(dir, 'bad.jsonl');
    await writeFile(file, `${bad.join('\n')}\n`);
    const before = (await listJobs(c.parts.db, { limit: 100_000 })).length;
    const cli = runCli(['submit', '--batch', file, '--data', c.dataDir]);
    expect(await cli.exited).toBe(1);
    const err = cli.stderr().split('\n');
    expect(err[0]).toBe(`${file}:37: unknown field "prority" (a job line has kind, model, input, requirements, timeoutMs, queueTimeoutMs, maxAttempts, priority)`);
    expect(err[1]!.startsWith(`${file}:120: not JSON`)).toBe(true);
    expect(err.slice(2)).toEqual([`gogrid: GG_ERR_BAD_REQUEST: ${file}: 2 of 200 lines cannot be submitted (listed above); nothing was queued`, '']);
    expect((await listJobs(c.parts.db, { limit: 100_000 })).length).toBe(before);
  });

  it('runs all 200, writes each output to DIR/<line>-<id>.json and a summary; the progress line only on a terminal', { timeout: 120_000 }, async () => {
    const file = join(dir, 'jobs.jsonl');
    await writeFile(file, `${lines.join('\n')}\n`);
    const results = join(dir, 'results');
    const cli = runCli(['submit', '--batch', file, '--results', results, '--data', c.dataDir], {}, { tty: process.platform === 'linux' });
    expect(await cli.exited, cli.stdout() + cli.stderr()).toBe(0);
    const out = cli.stdout() + cli.stderr();
    expect(out).toMatch(/^queued 200 jobs \(j-\S+ … j-\S+\)\r?$/m);
    expect(out).toMatch(/^200 jobs: 200 succeeded, 0 failed, 0 canceled; run time p50 \d+ m?s, p95 \d+ m?s\r?$/m);
    // cli-progress's bar, redrawn in place.
    if (process.platform === 'linux') expect(out).toMatch(/jobs \[█+\] 200 of 200 done/);
    const files = (await readdir(results)).sort((a, b) => parseInt(a) - parseInt(b));
    expect(files).toHaveLength(200);
    expect(files[0]).toMatch(/^1-j-\S+\.json$/);
    const first = JSON.parse(await readFile(join(results, files[0]!), 'utf8')) as { outputs: { y: { data: number[] } } };
    mlpAnswer([0, 1, 2, 3]).forEach((v, i) => expect(first.outputs.y.data[i]).toBeCloseTo(v, 4));

    // Piped: the same, without a progress line; ids on stdout without --wait.
    const few = join(dir, 'few.jsonl');
    await writeFile(few, lines.slice(0, 3).join('\n'));
    const piped = runCli(['submit', '--batch', few, '--data', c.dataDir, '--wait'], {}, { pipeInto: 'cat' });
    expect(await piped.exited).toBe(0);
    expect(piped.stderr()).not.toContain('\x1b');
    expect(piped.stderr()).not.toMatch(/ of 3 done|█/);
    expect(piped.stderr()).toMatch(/^3 jobs: 3 succeeded/m);
    const idsOnly = runCli(['submit', '--batch', few, '--data', c.dataDir]);
    expect(await idsOnly.exited).toBe(0);
    expect(idsOnly.stdout()).toMatch(/^(j-\S+\n){3}$/);
  });
});

describe.runIf(process.platform === 'linux')('progress on a terminal', () => {
  it('models add: hashing and uploading with bytes, rate and time left; submit --wait: the job\'s state on a bar; nothing of it piped', { timeout: 60_000 }, async () => {
    const file = join(dir, 'wide.onnx');
    await writeFile(file, wideMlpModel(1024, 4));
    const add = runCli(['models', 'add', file, '--data', c.dataDir], {}, { tty: true });
    expect(await add.exited, add.stdout()).toBe(0);
    expect(add.stdout()).toMatch(/hashing wide\.onnx \[█+\] 100% \| 16\.0\/16\.0 MiB \| [\d.]+ MiB\/s/);
    expect(add.stdout()).toMatch(/uploading wide\.onnx \[█+\] 100% \| 16\.0\/16\.0 MiB \| [\d.]+ MiB\/s \| \S+ left/);

    const input = join(dir, 'input.json');
    await writeFile(input, JSON.stringify({ inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } }));
    const wait = runCli(['submit', '--model', 'mlp.onnx', '--input', input, '--wait', '--data', c.dataDir], {}, { tty: true });
    expect(await wait.exited, wait.stdout()).toBe(0);
    expect(wait.stdout()).toMatch(/job j-\S+: succeeded on w-\S+ \[█+\] 100%/);

    const small = join(dir, 'again.onnx');
    await writeFile(small, wideMlpModel(64, 1));
    const piped = runCli(['models', 'add', small, '--data', c.dataDir]);
    expect(await piped.exited).toBe(0);
    expect(piped.stderr()).toBe('');
  });
});
