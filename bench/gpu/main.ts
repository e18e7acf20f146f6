/**
 * The GPU suite (issue #16): a mid-size ONNX model (a generated MLP, 4
 * layers of 1024 × 1024, batch 8), and the tiny MLP fixture whose tensors are
 * a few numbers, on each backend this machine has, bare
 * onnxruntime-node in this process against the same model through the grid
 * (coordinator → `gogrid worker` → its job process), in the same run. Writes
 * bench/results/gpu-<ISO date>.json.
 *
 *   npm run bench:gpu                 # full run, about 2 minutes here
 *   npm run bench:gpu -- --quick      # smoke run: fewer jobs, not comparable
 *
 * Measured per backend: the run time of one warm inference (bare), the time
 * from submit to result of one job on a warm worker (grid), and the grid's
 * overhead as the difference of their medians (goal: ≤ 5 ms at p50); and
 * each GPU backend's bare time over the CPU's. Here the only GPU backend is
 * WebGPU on Mesa's lavapipe, a software device (GOGRID_SOFTWARE_GPU=1 lets
 * the worker use it): its ratio to the CPU says what software Vulkan costs,
 * not what a GPU gains. One onnxruntime thread everywhere (2 cores for
 * coordinator, worker and job). Nothing fails on slow numbers.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { z } from 'zod';
import { JobInfo, WorkerInfo } from '../../src/protocol/index.js';
import { onnxExecutor } from '../../src/worker/executors/onnx.js';
import { WEBGPU_LAVAPIPE_ICD } from '../../test/helpers/lavapipe.js';
import { mlpModel, wideMlpModel } from '../../test/fixtures/make-onnx.js';
import { ensureBuilt, Grid } from '../jobs/grid.js';
import { loadAvg, machine } from '../lib/machine.js';
import { progressLog, resultBase, runMain, writeResult } from '../lib/results.js';
import { median, percentiles, round } from '../lib/stats.js';

const SHAPE = { width: 1024, layers: 4, batch: 8 };

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const quick = values.quick;
  const config = { ...SHAPE, warmup: 3, runs: quick ? 10 : 40, threads: 1 };
  const startedAt = new Date();
  const log = progressLog();
  const build = await ensureBuilt();
  const grid = new Grid(build.distDir);
  // The worker below inherits both: lavapipe counts as a GPU for this run, the one scripts/lavapipe.sh fetched where it did.
  process.env['GOGRID_SOFTWARE_GPU'] = '1';
  if (WEBGPU_LAVAPIPE_ICD !== null) process.env['VK_ICD_FILENAMES'] = WEBGPU_LAVAPIPE_ICD;
  try {
    const dir = await grid.tempDir('gpu');
    const wideFile = join(dir, 'wide-mlp.onnx');
    writeFileSync(wideFile, wideMlpModel(SHAPE.width, SHAPE.layers));
    const tinyFile = join(dir, 'mlp.onnx');
    writeFileSync(tinyFile, mlpModel());
    const wideData = Array.from({ length: SHAPE.batch * SHAPE.width }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5);
    // The tiny model's input and output are a few numbers: its grid time is the grid's own cost, apart from moving tensors.
    // wide-b64: the same job with its tensors as raw bytes (`b64` in, "outputEncoding": "b64" out).
    const models = [
      { name: 'wide', file: wideFile, dims: [SHAPE.batch, SHAPE.width], data: wideData, b64: false },
      { name: 'wide-b64', file: wideFile, dims: [SHAPE.batch, SHAPE.width], data: wideData, b64: true },
      { name: 'tiny', file: tinyFile, dims: [1, 4], data: [1, -2, 3, 0.5], b64: false },
    ];

    const working = (await onnxExecutor.probeBackends!()).filter((t) => t.ok).map((t) => t.backend);
    const backends = ['cpu', ...working];
    log(`backends here: ${backends.join(', ')}`);

    const bare: Record<string, number[]> = {};
    for (const m of models) {
      for (const backend of backends) {
        const session = await ort.InferenceSession.create(m.file, { executionProviders: [backend], intraOpNumThreads: 1, interOpNumThreads: 1 });
        const x = new ort.Tensor('float32', Float32Array.from(m.data), m.dims);
        for (let i = 0; i < config.warmup; i++) await session.run({ x });
        const times: number[] = [];
        for (let i = 0; i < config.runs; i++) {
          const t0 = performance.now();
          await session.run({ x });
          times.push(performance.now() - t0);
        }
        bare[`${m.name}/${backend}`] = times;
        await session.release();
        log(`  bare ${m.name} on ${backend}: p50 ${round(median(times), 2)} ms`);
      }
    }

    const c = await grid.coordinator();
    const shas = new Map<string, string>();
    for (const m of models) shas.set(m.file, shas.get(m.file) ?? (await c.api.addModel(m.file, `${m.name}.onnx`)));
    grid.worker(['--coordinator', `127.0.0.1:${c.port}`, '--token', await c.api.createToken(1), '--data', await grid.tempDir('worker'), '--name', 'w', '--threads', '1']);
    for (;;) {
      const list = await c.api.call('GET', '/v1/workers', z.array(WorkerInfo));
      if (list.some((w) => w.state === 'online')) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const job = async (m: (typeof models)[number], backend: string) => {
      const t0 = performance.now();
      const x = m.b64 ? { b64: Buffer.from(Float32Array.from(m.data).buffer).toString('base64') } : { data: m.data };
      const input = { inputs: { x: { dtype: 'float32', dims: m.dims, ...x } }, ...(m.b64 && { outputEncoding: 'b64' }) };
      const body = { model: { sha256: shas.get(m.file) }, input, ...(backend !== 'cpu' && { requirements: { gpu: { backend } } }) };
      let done = await c.api.call('POST', '/v1/jobs', JobInfo, body);
      while (!['succeeded', 'failed', 'canceled'].includes(done.state)) done = await c.api.call('GET', `/v1/jobs/${done.id}?wait=20`, JobInfo);
      const ms = performance.now() - t0;
      const ranOn = (done.output as { backend?: string } | null)?.backend;
      if (done.state !== 'succeeded' || ranOn !== backend) throw new Error(`a ${backend} job ${done.state} on ${ranOn}: ${done.error?.message ?? ''}`);
      return ms;
    };
    const viaGrid: Record<string, number[]> = {};
    for (const m of models) {
      for (const backend of backends) {
        for (let i = 0; i < config.warmup; i++) await job(m, backend);
        const times: number[] = [];
        for (let i = 0; i < config.runs; i++) times.push(await job(m, backend));
        viaGrid[`${m.name}/${backend}`] = times;
        log(`  grid ${m.name} on ${backend}: p50 ${round(median(times), 2)} ms`);
      }
    }

    const rows = Object.fromEntries(
      Object.keys(bare).map((key) => [
        key,
        {
          bareMs: percentiles(bare[key]!.map((x) => round(x, 2))),
          gridMs: percentiles(viaGrid[key]!.map((x) => round(x, 2))),
          gridOverheadMsP50: round(median(viaGrid[key]!) - median(bare[key]!), 2),
          bareOverCpu: round(median(bare[key]!) / median(bare[`${key.split('/')[0]}/cpu`]!), 2),
        },
      ]),
    );
    const record = {
      suite: 'gpu',
      startedAt: startedAt.toISOString(),
      quick,
      machine: machine({ loadAvgAtEnd: loadAvg() }),
      config: {
        ...config,
        models: {
          wide: `wideMlpModel(${SHAPE.width}, ${SHAPE.layers}), input [${SHAPE.batch}, ${SHAPE.width}]`,
          'wide-b64': 'the same, tensors as b64 in and out',
          tiny: 'mlpModel(), input [1, 4]',
        },
        softwareGpu: true,
      },
      /** By `model/backend`. */
      runs: rows,
    };
    const file = `${resultBase('gpu', startedAt, quick)}.json`;
    await writeResult(file, record);
    log(`wrote ${file}`);
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
  } finally {
    await grid.close();
  }
}

runMain('gpu', main);
