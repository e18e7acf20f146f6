/**
 * The ONNX executor on the real onnxruntime-node, with the generated fixture
 * models: most cases in this process through the executor itself (a session
 * costs milliseconds, a new job process hundreds), the whole path through
 * runJob where it matters.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GridError, type ErrorCode } from '../../../src/protocol/errors.js';
import { checkTensorJson, type TensorJson } from '../../../src/protocol/tensor.js';
import { decodeTensor } from '../../../src/worker/executors/tensor-codec.js';
import type { RunJobOptions } from '../../../src/worker/executors/index.js';
import { onnxExecutor } from '../../../src/worker/executors/onnx.js';
import { identityNamedModel, MLP } from '../../fixtures/make-onnx.js';
import { closeJobProcesses, isAlive, makeJob, onnxFixtures, pidRecorder, runJob } from './helpers.js';

const models = onnxFixtures();
afterAll(async () => {
  await closeJobProcesses();
  models.dispose();
});

function inProcess(modelPath: string, input: unknown, onProgress: (p: number, m?: string) => void = () => {}) {
  return onnxExecutor.run(makeJob('onnx', input), { modelPath, threads: 1, slots: 1, gpuBackends: [], signal: new AbortController().signal, onProgress });
}

function viaRunJob(modelPath: string, input: unknown, logger = pidRecorder()) {
  const opts: RunJobOptions = { modelPath, threads: 1, timeoutMs: 30_000, signal: new AbortController().signal, onProgress: () => {}, logger };
  return runJob('onnx', makeJob('onnx', input), opts);
}

async function failure(p: Promise<unknown>, code: ErrorCode, ...parts: string[]): Promise<void> {
  const e = await p.then(
    () => expect.fail('the job succeeded'),
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GridError);
  expect((e as GridError).code).toBe(code);
  for (const part of parts) expect((e as GridError).message).toContain(part);
}

/** The MLP fixture computed independently, in float64. */
function mlpReference(rows: number[][]): number[] {
  return rows.flatMap((x) => {
    const h = MLP.b1.map((b, j) => Math.max(0, b + x.reduce((s, xi, i) => s + xi * MLP.w1[i]![j]!, 0)));
    return MLP.b2.map((b, k) => b + h.reduce((s, hj, j) => s + hj * MLP.w2[j]![k]!, 0));
  });
}

/** One input per dtype of the identity model, with the values that are easy to get wrong. */
const EDGE_VALUES: Record<string, TensorJson> = {
  x_float32: { dtype: 'float32', dims: [7], data: [1.5, -0.25, 'NaN', 'Infinity', '-Infinity', 3.4028234663852886e38, 1.401298464324817e-45] },
  x_float64: { dtype: 'float64', dims: [2, 2], data: [0.1, -1e308, 5e-324, 'NaN'] },
  x_float16: { dtype: 'float16', dims: [6], data: [1, 65504, 0.0999755859375, 5.960464477539063e-8, '-Infinity', 'NaN'] },
  x_int8: { dtype: 'int8', dims: [2], data: [-128, 127] },
  x_int16: { dtype: 'int16', dims: [2], data: [-32768, 32767] },
  x_int32: { dtype: 'int32', dims: [2], data: [-2147483648, 2147483647] },
  x_int64: { dtype: 'int64', dims: [3], data: ['9007199254740993', '-9223372036854775808', '9223372036854775807'] },
  x_uint8: { dtype: 'uint8', dims: [2], data: [0, 255] },
  x_uint16: { dtype: 'uint16', dims: [1], data: [65535] },
  x_uint32: { dtype: 'uint32', dims: [1], data: [4294967295] },
  x_uint64: { dtype: 'uint64', dims: [2], data: ['18446744073709551615', '9007199254740993'] },
  x_bool: { dtype: 'bool', dims: [2, 1], data: [true, false] },
  x_string: { dtype: 'string', dims: [4], data: ['', 'héllo', '日本語', 'a"b\\c'] },
};

const asOutputs = (inputs: Record<string, TensorJson>) => Object.fromEntries(Object.entries(inputs).map(([name, t]) => [name.replace(/^x_/, 'y_'), t]));

function eachDtype(make: (t: TensorJson) => TensorJson): Record<string, TensorJson> {
  return Object.fromEntries(Object.entries(EDGE_VALUES).map(([name, t]) => [name, make(t)]));
}

describe('ONNX executor', () => {
  it('computes the MLP in a job process, equal to the same sums done in JS', async () => {
    const rows = [
      [1, 2, 3, 4],
      [-1, 0.5, -2, 0.25],
      [0, 0, 0, 0],
    ];
    const log = pidRecorder();
    const input = { inputs: { x: { dtype: 'float32', dims: [3, 4], data: rows.flat() } } };
    const out = (await viaRunJob(models.mlp, input, log)) as { outputs: Record<string, TensorJson> };
    for (let i = 0; i < 20; i++) expect(await viaRunJob(models.mlp, input, log)).toEqual(out);
    expect(log.pids).toHaveLength(1);
    expect(Object.keys(out.outputs)).toEqual(['y']);
    expect(out.outputs['y']).toMatchObject({ dtype: 'float32', dims: [3, 3] });
    const got = out.outputs['y']!.data as number[];
    // float32 in the runtime against float64 here: equal to a few float32 ulps.
    mlpReference(rows).forEach((want, i) => expect(Math.abs(got[i]! - want)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want))));
    await closeJobProcesses();
    expect(log.pids.filter(isAlive)).toEqual([]);
  });

  it('reports progress at the start and the end', async () => {
    const progress: [number, string | undefined][] = [];
    await inProcess(models.mlp, { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } }, (p, m) => progress.push([p, m]));
    expect(progress[0]).toEqual([0, 'loading model']);
    expect(progress.at(-1)).toEqual([1, 'done']);
  });

  describe('round-trips every dtype exactly through the runtime (Identity per dtype)', () => {
    it('edge values: 64-bit integers past 2^53, uint64 max, float16, NaN and ±Infinity, bool, unicode strings', async () => {
      expect(await inProcess(models.identity, { inputs: EDGE_VALUES })).toEqual({ outputs: asOutputs(EDGE_VALUES), backend: 'cpu' });
    });

    it('scalars (dims [])', async () => {
      const scalars = eachDtype((t) => ({ dtype: t.dtype, dims: [], data: t.data!.slice(-1) }));
      expect(await inProcess(models.identity, { inputs: scalars })).toEqual({ outputs: asOutputs(scalars), backend: 'cpu' });
    });

    it('empty tensors', async () => {
      const empty = eachDtype((t) => ({ dtype: t.dtype, dims: [2, 0], data: [] }));
      expect(await inProcess(models.identity, { inputs: empty })).toEqual({ outputs: asOutputs(empty), backend: 'cpu' });
    });

    it('the b64 form in, the data form out', async () => {
      const inputs = {
        ...EDGE_VALUES,
        x_float32: { dtype: 'float32', dims: [2], b64: Buffer.from(Float32Array.from([0.5, -3]).buffer).toString('base64') },
        x_uint64: { dtype: 'uint64', dims: [1], b64: Buffer.from(BigUint64Array.from([2n ** 64n - 1n]).buffer).toString('base64') },
        x_float16: { dtype: 'float16', dims: [1], b64: Buffer.from(Uint16Array.from([0x3555]).buffer).toString('base64') },
      };
      const out = (await inProcess(models.identity, { inputs })) as { outputs: Record<string, TensorJson> };
      expect(out.outputs['y_float32']).toEqual({ dtype: 'float32', dims: [2], data: [0.5, -3] });
      expect(out.outputs['y_uint64']).toEqual({ dtype: 'uint64', dims: [1], data: ['18446744073709551615'] });
      expect(out.outputs['y_float16']).toEqual({ dtype: 'float16', dims: [1], data: [0.333251953125] });
    });

    it('the b64 form out with "outputEncoding": "b64": the same values as raw bytes, strings still as data', async () => {
      const asData = (await inProcess(models.identity, { inputs: EDGE_VALUES })) as { outputs: Record<string, TensorJson> };
      const asB64 = (await inProcess(models.identity, { inputs: EDGE_VALUES, outputEncoding: 'b64' })) as { outputs: Record<string, TensorJson> };
      expect(Object.keys(asB64.outputs).sort()).toEqual(Object.keys(asData.outputs).sort());
      for (const [name, t] of Object.entries(asB64.outputs)) {
        const same = asData.outputs[name]!;
        if (t.dtype === 'string') expect(t).toEqual(same);
        else {
          expect(t.data).toBeUndefined();
          expect(checkTensorJson(t)).toBeNull();
          expect(decodeTensor(name, t)).toEqual(decodeTensor(name, same));
        }
      }
      expect(asB64.outputs['y_float32']).toEqual({ dtype: 'float32', dims: EDGE_VALUES['x_float32']!.dims, b64: Buffer.from(Float32Array.from(EDGE_VALUES['x_float32']!.data!.map(Number)).buffer).toString('base64') });
      await expect(inProcess(models.identity, { inputs: EDGE_VALUES, outputEncoding: 'hex' })).rejects.toMatchObject({ code: 'GG_ERR_INPUT_INVALID', message: expect.stringContaining('outputEncoding') });
    });

    it('through a job process too (JSON over IPC keeps every value)', async () => {
      expect(await viaRunJob(models.identity, { inputs: EDGE_VALUES })).toEqual({ outputs: asOutputs(EDGE_VALUES), backend: 'cpu' });
    });
  });

  describe('bad input: GG_ERR_INPUT_INVALID naming the input', () => {
    const x = (t: Partial<TensorJson>) => ({ inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4], ...t } } });
    it.each<[string, unknown, string[]]>([
      ['an input the model does not have', { inputs: { ...x({}).inputs, z: { dtype: 'float32', dims: [1], data: [1] } } }, ['input "z"', 'no such input', '"x"']],
      ['a missing input', { inputs: {} }, ['input "x": missing']],
      ['a dtype the model does not take', x({ dtype: 'float64' }), ['input "x": the model takes float32, got float64']],
      ['data shorter than the dims', x({ data: [1, 2, 3] }), ['input "x": dims [1, 4] need 4 values, data has 3']],
      ['a fixed dimension that does not match', x({ dims: [2, 5], data: new Array(10).fill(0) }), ['input "x": dimension 1 must be 4 (shape [batch, 4]), got 5']],
      ['a rank that does not match', x({ dims: [4] }), ['input "x": the model takes shape [batch, 4], got dims [4]']],
      ['a bad element', x({ data: [1, 2, 'three', 4] }), ['input "x": element 2 ("three") is not a float32']],
      ['a tensor without dims', { inputs: { x: { dtype: 'float32', data: [1] } } }, ['inputs.x.dims']],
      ['no "inputs" at all', [1, 2, 3], ['{"inputs": {NAME: TENSOR}}']],
    ])('%s', async (_name, input, parts) => {
      await failure(inProcess(models.mlp, input), 'GG_ERR_INPUT_INVALID', ...parts);
    });

    it('an input named like an Object method ("toString", "constructor") is missing when not given, and runs when given', async () => {
      const file = path.join(models.dir, 'named-tostring.onnx');
      writeFileSync(file, identityNamedModel('toString', 'constructor'));
      await failure(inProcess(file, { inputs: {} }), 'GG_ERR_INPUT_INVALID', 'input "toString": missing');
      const out = (await inProcess(file, { inputs: { toString: { dtype: 'float32', dims: [2], data: [1, 2] } } })) as { outputs: Record<string, TensorJson> };
      expect(Object.hasOwn(out.outputs, 'constructor')).toBe(true);
      expect(out.outputs.constructor).toMatchObject({ dims: [2], data: [1, 2] });
    });

    it('comes back from a job process with its code and message intact; the process stays warm for the next job', async () => {
      const log = pidRecorder();
      await failure(viaRunJob(models.mlp, x({ dtype: 'int32', data: [1, 2, 3, 4] }), log), 'GG_ERR_INPUT_INVALID', 'input "x": the model takes float32, got int32');
      await expect(viaRunJob(models.mlp, x({}), log)).resolves.toMatchObject({ outputs: { y: { dims: [1, 3] } } });
      expect(log.pids.length).toBeLessThanOrEqual(1);
      await closeJobProcesses();
      expect(log.pids.filter(isAlive)).toEqual([]);
    });
  });

  describe('models it cannot run: GG_ERR_MODEL_UNSUPPORTED', () => {
    it('refuses a model whose input is a sequence, naming it', async () => {
      await failure(inProcess(models.sequenceInput, { inputs: {} }), 'GG_ERR_MODEL_UNSUPPORTED', 'input "seq" is not a tensor', 'sequence');
    });

    it('refuses a model with an input or output named "__proto__", which a job\'s JSON cannot carry', async () => {
      for (const [input, output, side] of [['__proto__', 'y', 'input'], ['x', '__proto__', 'output']] as const) {
        const file = path.join(models.dir, `named-${side}.onnx`);
        writeFileSync(file, identityNamedModel(input, output));
        await failure(inProcess(file, { inputs: { x: { dtype: 'float32', dims: [1], data: [1] } } }), 'GG_ERR_MODEL_UNSUPPORTED', `an ${side} named "__proto__"`);
      }
    });

    it('refuses a file the runtime cannot load', async () => {
      const junk = path.join(models.dir, 'junk.onnx');
      writeFileSync(junk, 'this is not a protobuf');
      await failure(inProcess(junk, { inputs: {} }), 'GG_ERR_MODEL_UNSUPPORTED', 'onnxruntime could not load the model');
    });
  });
});
