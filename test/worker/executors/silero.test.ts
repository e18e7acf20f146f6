/**
 * A real model that ships in an npm package: silero VAD v5 from
 * @ricky0123/vad-web, on speech that espeak-ng makes (Debian package
 * `espeak-ng`; .ci/run installs it). Silence must score low, speech high.
 *
 * The model is stateful over 512-sample windows (32 ms at 16 kHz), so the
 * window loop runs through the ONNX executor in this process (the session
 * cached across windows, as in a warm job process), where a failure points
 * at the model rather than at IPC. One window also goes through runJob, for
 * the whole path with this model.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TensorJson } from '../../../src/protocol/tensor.js';
import { onnxExecutor } from '../../../src/worker/executors/onnx.js';
import { closeJobProcesses, isAlive, makeJob, pidRecorder, runJob } from './helpers.js';
import { readWav, resample } from './wav.js';

const MODEL = createRequire(import.meta.url).resolve('@ricky0123/vad-web/dist/silero_vad_v5.onnx');
const RATE = 16_000;
const WINDOW = 512;
const SENTENCE = 'Hello, this is a test of voice activity detection.';

const hasEspeak = spawnSync('espeak-ng', ['--version']).status === 0;
const inCi = Boolean(process.env['CI']);
if (!hasEspeak && !inCi) console.warn('silero VAD speech test skipped: espeak-ng is not installed (apt-get install espeak-ng); with CI set it fails instead');

type Outputs = { outputs: Record<string, TensorJson> };

function windowInput(samples: Float32Array, state: TensorJson['data']) {
  return {
    inputs: {
      input: { dtype: 'float32', dims: [1, WINDOW], data: Array.from(samples) },
      state: { dtype: 'float32', dims: [2, 1, 128], data: state },
      sr: { dtype: 'int64', dims: [], data: [String(RATE)] },
    },
  };
}

/** Speech probability of every whole window, carrying silero's state from one window to the next. */
async function speechProbabilities(audio: Float32Array): Promise<number[]> {
  let state: TensorJson['data'] = new Array(2 * 128).fill(0);
  const probabilities: number[] = [];
  for (let at = 0; at + WINDOW <= audio.length; at += WINDOW) {
    const job = makeJob('onnx', windowInput(audio.subarray(at, at + WINDOW), state));
    const { outputs } = (await onnxExecutor.run(job, { modelPath: MODEL, threads: 1, slots: 1, gpuBackends: [], signal: new AbortController().signal, onProgress: () => {} })) as Outputs;
    probabilities.push(outputs['output']!.data![0] as number);
    state = outputs['stateN']!.data;
  }
  return probabilities;
}

describe('silero VAD v5 (a real model from an npm package)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gogrid-vad-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives silence a low speech probability', async () => {
    const probabilities = await speechProbabilities(new Float32Array(WINDOW * 16));
    expect(Math.max(...probabilities)).toBeLessThan(0.1);
  });

  it.skipIf(!hasEspeak && !inCi)('gives speech from espeak-ng a high one', async () => {
    expect(hasEspeak, 'espeak-ng is missing: .ci/run installs it (apt-get install espeak-ng)').toBe(true);
    const wav = path.join(dir, 'speech.wav');
    const spoken = spawnSync('espeak-ng', ['-w', wav, SENTENCE], { encoding: 'utf8' });
    expect(spoken.status, spoken.stderr).toBe(0);
    const { sampleRate, samples } = readWav(readFileSync(wav));
    const audio = resample(samples, sampleRate, RATE);
    expect(audio.length).toBeGreaterThan(RATE); // over a second of speech

    const probabilities = await speechProbabilities(audio);
    expect(Math.max(...probabilities)).toBeGreaterThan(0.8);
  });

  it('runs a window through runJob: int64 scalar in, state out', async () => {
    const log = pidRecorder();
    const out = (await runJob('onnx', makeJob('onnx', windowInput(new Float32Array(WINDOW), new Array(256).fill(0))), {
      modelPath: MODEL,
      threads: 1,
      timeoutMs: 30_000,
      signal: new AbortController().signal,
      onProgress: () => {},
      logger: log,
    })) as Outputs;
    expect(out.outputs['output']).toMatchObject({ dtype: 'float32', dims: [1, 1] });
    expect(out.outputs['stateN']).toMatchObject({ dtype: 'float32', dims: [2, 1, 128] });
    await closeJobProcesses();
    expect(log.pids.filter(isAlive)).toEqual([]);
  });
});
