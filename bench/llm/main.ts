/**
 * The LLM suite (issue #13): text generation through the grid (the official
 * `openai` client → coordinator → `gogrid worker` → its job process) against
 * bare node-llama-cpp on the same GGUF in this process, in the same run: the
 * tiny test model (1,500 tokens/s here, so the grid's cost per token shows at
 * its largest) and a 25M-parameter one of the same kind (about 230 tokens/s,
 * a rate like a real model's). Writes bench/results/llm-<ISO date>.json.
 *
 *   npm run bench:llm                                # full run, about 4 minutes
 *   npm run bench:llm -- --quick                     # smoke run, about a minute: fewer tokens, one repetition, not comparable
 *   npm run bench:llm -- --database "$GOGRID_TEST_PG_URL"   # the coordinator on PostgreSQL, not the embedded PGlite
 *
 * Measured: tokens/s of one stream and of two at once (grid / bare; two at
 * once is one context with two sequences, batched, as the executor runs a
 * worker's two slots), the time to the first token and its overhead over
 * bare, the coordinator's CPU per streamed token, and the failover gap: the time between the last token from
 * a worker that is lost and the next one from the worker that goes on (revoked:
 * the coordinator knows at once; killed: its heartbeat timeout, 3 s here).
 * One llama.cpp thread everywhere: on this 2-core machine more threads were
 * 30 to 100 times slower (BENCHMARKS.md). Nothing fails on slow numbers.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ChildProcess } from 'node:child_process';
import { getLlama, LlamaCompletion, LlamaLogLevel, type LlamaContextSequence, type LlamaModel } from 'node-llama-cpp';
import type OpenAI from 'openai';
import { openaiClient } from '../../test/helpers/openai-client.js';
import { z } from 'zod';
import { CreatedApiKey, JobInfo, WorkerInfo } from '../../src/protocol/index.js';
import { writeTinyGguf } from '../../test/fixtures/make-gguf.js';
import { ensureBuilt, Grid } from '../jobs/grid.js';
import { loadAvg, machine } from '../lib/machine.js';
import { cpuUs } from '../lib/procfs.js';
import { progressLog, resultBase, runMain, writeResult } from '../lib/results.js';
import { median, range, round } from '../lib/stats.js';

interface Run {
  /** Tokens generated. */
  tokens: number;
  /** From the request to the first text, ms. */
  ttftMs: number;
  /** From the first text to the last, ms. */
  streamMs: number;
}

const PROMPT = 'Once upon a time, on a grid of idle machines,';

/** 25.5M parameters, 102 MB of F32: about 230 tokens/s on one thread here, a real model's rate rather than the tiny one's 1,500. */
const SMALL = { embedding: 512, layers: 8, feedForward: 1536 };

const tokensPerSec = (runs: readonly Run[]) => runs.map((r) => (r.tokens - 1) / (r.streamMs / 1000));

/** Bare node-llama-cpp: the executor's completion path (greedy, one thread), each run on a fresh prompt so nothing is cached. */
async function bare(model: LlamaModel, maxTokens: number, i: number): Promise<Run> {
  const context = await model.createContext({ threads: 1, sequences: 1 });
  try {
    return await bareOn(context.getSequence(), maxTokens, i);
  } finally {
    await context.dispose();
  }
}

/** Two bare streams at once, as the executor runs two slots: one context, a sequence each, batched by llama.cpp; tokens/s of both. */
async function bareTwo(model: LlamaModel, maxTokens: number, i: number): Promise<number> {
  const context = await model.createContext({ threads: 1, sequences: 2 });
  try {
    const t0 = performance.now();
    const runs = await Promise.all([bareOn(context.getSequence(), maxTokens, 100 + i), bareOn(context.getSequence(), maxTokens, 200 + i)]);
    return runs.reduce((n, r) => n + r.tokens, 0) / ((performance.now() - t0) / 1000);
  } finally {
    await context.dispose();
  }
}

async function bareOn(sequence: LlamaContextSequence, maxTokens: number, i: number): Promise<Run> {
  const completion = new LlamaCompletion({ contextSequence: sequence });
  try {
    const t0 = performance.now();
    let first = 0;
    let last = 0;
    let tokens = 0;
    await completion.generateCompletion(`${PROMPT} (${i})`, {
      maxTokens,
      temperature: 0,
      topK: 0,
      repeatPenalty: false,
      onToken: (t) => (tokens += t.length),
      onTextChunk: () => {
        last = performance.now();
        first ||= last;
      },
    });
    return { tokens, ttftMs: first - t0, streamMs: last - first };
  } finally {
    completion.dispose();
  }
}

/** Two streamed completions through the grid at once; tokens/s of both. */
async function gridTwo(client: OpenAI, model: string, maxTokens: number, i: number): Promise<number> {
  const t0 = performance.now();
  const runs = await Promise.all([viaGrid(client, model, maxTokens, 100 + i), viaGrid(client, model, maxTokens, 200 + i)]);
  return runs.reduce((n, r) => n + r.run.tokens, 0) / ((performance.now() - t0) / 1000);
}

/** `fn(0)`, `fn(1)`, … `fn(n - 1)`, one after another. */
async function times<T>(n: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await fn(i));
  return out;
}

/** One streamed completion through the grid; `onFirst` runs once the first text came. */
async function viaGrid(client: OpenAI, model: string, maxTokens: number, i: number, onFirst?: (jobId: string) => Promise<void>) {
  const t0 = performance.now();
  const stream = await client.completions.create({ model, prompt: `${PROMPT} (${i})`, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let first = 0;
  let last = 0;
  let tokens = 0;
  /** Gaps between consecutive pieces of text, ms. */
  const gaps: number[] = [];
  for await (const chunk of stream) {
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
    if (!chunk.choices[0]?.text) continue;
    const now = performance.now();
    if (last) gaps.push(now - last);
    last = now;
    if (!first) {
      first = now;
      await onFirst?.(chunk.id);
    }
  }
  return { run: { tokens, ttftMs: first - t0, streamMs: last - first } satisfies Run, gaps };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, database: { type: 'string' } } });
  const quick = values.quick ?? false;
  const config = quick ? { tokens: 400, smallTokens: 100, repeats: 1 } : { tokens: 1500, smallTokens: 400, repeats: 5 };
  const startedAt = new Date();
  const log = progressLog();
  const build = await ensureBuilt();
  const grid = new Grid(build.distDir, [], values.database);
  process.env['GOGRID_LLM_GPU'] = 'off';
  try {
    const dir = await grid.tempDir('llm');
    const tiny = writeTinyGguf(join(dir, 'tiny.gguf'), { contextLength: 2048 });
    const small = writeTinyGguf(join(dir, 'small.gguf'), { contextLength: 2048, shape: SMALL });
    const llama = await getLlama({ gpu: false, build: 'never', maxThreads: 1, logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: tiny.file });

    log('bare node-llama-cpp: one stream, then two at once');
    await bare(model, 16, -1);
    const bareOne = await times(config.repeats, (i) => bare(model, config.tokens, i));
    const bareTwoRates = await times(config.repeats, (i) => bareTwo(model, config.tokens, i));
    await model.dispose();
    log('bare node-llama-cpp: one stream on the 25M model');
    const smallModel = await llama.loadModel({ modelPath: small.file });
    await bare(smallModel, 16, -1);
    const bareSmall = await times(config.repeats, (i) => bare(smallModel, config.smallTokens, i));
    const bareSmallTwo = await times(config.repeats, (i) => bareTwo(smallModel, config.smallTokens, i));
    await smallModel.dispose();
    await llama.dispose();

    // Heartbeats every second, timeout 3 s: the killed-worker gap below is bounded by it.
    const c = await grid.coordinator({ heartbeatSecs: 1, env: { GOGRID_LLM_GPU: 'off' } });
    const modelName = 'tiny';
    await c.api.addModel(tiny.file, modelName);
    await c.api.addModel(small.file, 'small');
    const key = (await c.api.call('POST', '/v1/keys', CreatedApiKey, { scope: 'inference', name: 'bench' })).key;
    const client = openaiClient(c.api.apiUrl, key, c.api.caPem);
    const workers = new Map<string, ChildProcess>();
    const startWorker = async (name: string, slots: number) => {
      const data = await grid.tempDir(`worker-${name}`);
      const child = grid.worker(['--coordinator', `127.0.0.1:${c.port}`, '--token', await c.api.createToken(1), '--data', data, '--name', name, '--slots', String(slots), '--threads', '1']);
      workers.set(name, child);
      return child;
    };
    const online = async (n: number) => {
      for (;;) {
        const list = await c.api.call('GET', '/v1/workers', z.array(WorkerInfo));
        if (list.filter((w) => w.state === 'online').length >= n) return;
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    log('grid: one stream on one worker');
    await startWorker('a', 2);
    await online(1);
    await viaGrid(client, modelName, 16, -1);
    const cpu0 = cpuUs(c.pid);
    const gridOne: Run[] = [];
    const allGaps: number[] = [];
    for (let i = 0; i < config.repeats; i++) {
      const { run, gaps } = await viaGrid(client, modelName, config.tokens, i);
      gridOne.push(run);
      allGaps.push(...gaps);
    }
    const coordinatorUsPerToken = (cpuUs(c.pid) - cpu0) / gridOne.reduce((n, r) => n + r.tokens, 0);

    log('grid: two streams at once on the worker’s two slots');
    await gridTwo(client, modelName, 16, -10);
    const gridTwoRates = await times(config.repeats, (i) => gridTwo(client, modelName, config.tokens, i));

    log('grid: one stream on the 25M model');
    await viaGrid(client, 'small', 16, -1);
    const gridSmall = await times(config.repeats, async (i) => (await viaGrid(client, 'small', config.smallTokens, i)).run);
    log('grid: two streams at once on the 25M model');
    const gridSmallTwo = await times(config.repeats, (i) => gridTwo(client, 'small', config.smallTokens, i));

    log('failover: the streaming worker revoked, then one killed (kill -9)');
    const failover: Record<string, number> = {};
    for (const how of ['revoked', 'killed'] as const) {
      await startWorker(`b-${how}`, 1);
      await online(2);
      let lostAt = 0;
      const { gaps } = await viaGrid(client, modelName, config.tokens, 300, async (jobId) => {
        const job = JobInfo.parse(await c.api.call('GET', `/v1/jobs/${jobId}`, JobInfo));
        const serving = await c.api.call('GET', `/v1/workers/${job.workerId}`, WorkerInfo);
        lostAt = performance.now();
        if (how === 'revoked') await c.api.call('POST', `/v1/workers/${job.workerId}/revoke`, WorkerInfo);
        else workers.get(serving.name)!.kill('SIGKILL');
        workers.delete(serving.name);
      });
      failover[how] = round(Math.max(...gaps), 0);
      log(`  ${how}: longest gap ${failover[how]} ms (lost ${round(lostAt, 0)})`);
      if (workers.size === 0) await startWorker(`c-${how}`, 2);
    }

    /** Tokens/s bare and through the grid, as ranges, and the ratio of their medians. */
    const rates = (bareRates: number[], gridRates: number[]) => ({
      bareTokensPerSec: range(bareRates.map((x) => round(x, 0))),
      gridTokensPerSec: range(gridRates.map((x) => round(x, 0))),
      gridOverBare: round(median(gridRates) / median(bareRates), 3),
    });
    const record = {
      suite: 'llm',
      startedAt: startedAt.toISOString(),
      quick,
      machine: machine({ loadAvgAtEnd: loadAvg() }),
      config: {
        ...config,
        database: values.database === undefined ? 'embedded (PGlite, memory://)' : 'PostgreSQL',
        model: { file: 'tiny.gguf (test/fixtures/make-gguf.ts)', contextLength: 2048, sizeBytes: tiny.size },
        smallModel: { file: 'small.gguf (make-gguf.ts, shape below)', shape: SMALL, parameters: small.parameterCount, sizeBytes: small.size },
        threads: 1,
      },
      oneStream: {
        ...rates(tokensPerSec(bareOne), tokensPerSec(gridOne)),
        bareTtftMs: range(bareOne.map((r) => round(r.ttftMs, 1))),
        gridTtftMs: range(gridOne.map((r) => round(r.ttftMs, 1))),
        ttftOverheadMsP50: round(median(gridOne.map((r) => r.ttftMs)) - median(bareOne.map((r) => r.ttftMs)), 1),
        coordinatorCpuUsPerToken: round(coordinatorUsPerToken, 1),
        gapBetweenPiecesMsP50: round(median(allGaps), 1),
      },
      twoStreams: rates(bareTwoRates, gridTwoRates),
      smallModelOneStream: {
        ...rates(tokensPerSec(bareSmall), tokensPerSec(gridSmall)),
        ttftOverheadMsP50: round(median(gridSmall.map((r) => r.ttftMs)) - median(bareSmall.map((r) => r.ttftMs)), 1),
      },
      smallModelTwoStreams: rates(bareSmallTwo, gridSmallTwo),
      failoverGapMs: failover,
    };
    const file = `${resultBase('llm', startedAt, quick)}.json`;
    await writeResult(file, record);
    log(`wrote ${file}`);
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
  } finally {
    await grid.close();
  }
}

runMain('llm', main);
