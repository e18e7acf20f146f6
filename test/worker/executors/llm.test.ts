/**
 * The LLM executor on the real node-llama-cpp (CPU build) with the generated
 * tiny GGUF: first node-llama-cpp itself (it loads the file and decodes
 * greedily the same tokens twice, through the model's chat template), then
 * the executor in a real job process, its text equal to a direct run of
 * node-llama-cpp's own chat session or completion with the same settings.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { getLlama, LlamaCompletion, LlamaLogLevel, type Llama, type LlamaModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlmJobInput, LlmJobOutput } from '../../../src/protocol/llm.js';
import type { JobSpec } from '../../../src/protocol/messages.js';
import { JobProcessPool, type OutputPiece, type RunJobOptions } from '../../../src/worker/executors/index.js';
import { writeMalformedGguf, writeTinyGguf, writeTruncatedGguf } from '../../fixtures/make-gguf.js';
import { makeJob, pidRecorder, rejection } from './helpers.js';
import { directChat as directChatRun, directCompletion as directCompletionRun, type DirectOptions } from '../../helpers/llama-direct.js';

// One: llama.cpp's threads spin while they wait for each other, and on two cores shared with
// other work two threads ran 30 to 100 times slower than one (measured on the tiny model).
const THREADS = 1;
const dir = mkdtempSync(path.join(tmpdir(), 'gogrid-gguf-'));
const tiny = writeTinyGguf(path.join(dir, 'tiny.gguf'));
// Job processes inherit this: the CPU build, as the direct runs here use.
process.env['GOGRID_LLM_GPU'] = 'off';
const pool = new JobProcessPool();
let llama: Llama;
let model: LlamaModel;

beforeAll(async () => {
  llama = await getLlama({ gpu: false, build: 'never', maxThreads: THREADS, logLevel: LlamaLogLevel.error });
  model = await llama.loadModel({ modelPath: tiny.file });
});

afterAll(async () => {
  await pool.close();
  await model?.dispose();
  await llama?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

function runLlm(modelPath: string, input: unknown, logger = pidRecorder(), progress: string[] = [], job: Partial<JobSpec> = {}, pieces: OutputPiece[] = []): Promise<LlmJobOutput> {
  const onProgress = (_p: number, message?: string) => progress.push(message ?? '');
  const opts: RunJobOptions = { modelPath, threads: THREADS, timeoutMs: 60_000, signal: new AbortController().signal, onProgress, onPartial: (p) => pieces.push(p), logger };
  return pool.run('llm', makeJob('llm', input, job), opts) as Promise<LlmJobOutput>;
}

const directChat = (system: string | undefined, user: string, options: DirectOptions & { topP?: number; topK?: number }) => directChatRun(model, THREADS, system, user, options);
const directCompletion = (prompt: string, options: DirectOptions & { customStopTriggers?: string[] }) => directCompletionRun(model, THREADS, prompt, options);

describe('the tiny GGUF on node-llama-cpp (CPU)', () => {
  it('loads in well under a second and decodes greedily, the same tokens twice, through its ChatML template', async () => {
    const started = performance.now();
    const again = await llama.loadModel({ modelPath: tiny.file });
    const loadMs = performance.now() - started;
    await again.dispose();
    expect(loadMs).toBeLessThan(1000);
    expect(model.trainContextSize).toBe(tiny.contextLength);

    // node-llama-cpp's default system prompt fits: the merges keep it to a fraction of the context.
    const first = await directChat(undefined, 'Hello! How are you today?', { maxTokens: 24, temperature: 0 });
    const second = await directChat(undefined, 'Hello! How are you today?', { maxTokens: 24, temperature: 0 });
    expect(first.wrapper).toBe('ChatML');
    expect(first.evaluated).toMatch(/^<\|endoftext\|><\|im_start\|>system\nYou are a helpful[^]*<\|im_end\|>\n<\|im_start\|>user\nHello! How are you today\?<\|im_end\|>\n<\|im_start\|>assistant\n/);
    expect(first.tokens).toHaveLength(24);
    expect(second.tokens).toEqual(first.tokens);
    expect(first.text.length).toBeGreaterThan(0);
  });
});

describe('LLM executor in a job process', () => {
  const system = 'You are a helpful assistant.';
  const user = 'Tell me a story about the grid.';
  const messages: LlmJobInput['messages'] = [
    { role: 'system', content: system },
    { role: 'user', content: user },
  ];

  it('answers a chat greedily with the same text as node-llama-cpp itself, in one warm process', async () => {
    const log = pidRecorder();
    const want = await directChat(system, user, { maxTokens: 32, temperature: 0 });
    const out = await runLlm(tiny.file, { messages, maxTokens: 32, temperature: 0 }, log);
    expect(out.text).toBe(want.text);
    expect(out.finishReason).toBe('length');
    expect(out.usage.completionTokens).toBe(32);
    // node-llama-cpp's ChatML wrapper starts with the model's BOS (the fixture's <|endoftext|>).
    const rendered = `<|endoftext|><|im_start|>system\n${system}<|im_end|>\n<|im_start|>user\n${user}<|im_end|>\n<|im_start|>assistant\n`;
    expect(out.usage.promptTokens).toBe(model.tokenize(rendered, true).length);
    // The warm process answers the next job the same, on the model it still has loaded.
    const progress: string[] = [];
    expect(await runLlm(tiny.file, { messages, maxTokens: 32, temperature: 0 }, log, progress)).toEqual(out);
    expect(log.pids).toHaveLength(1);
    expect(progress).not.toContain('loading model');
    expect(progress).toContain('done');
  });

  it('answers the next turn of a chat in a warm process as a fresh process does (the cached prefix changes nothing)', async () => {
    const first = await runLlm(tiny.file, { messages, maxTokens: 24, temperature: 0 });
    const next = { messages: [...messages!, { role: 'assistant', content: first.text }, { role: 'user', content: 'And then?' }], maxTokens: 24, temperature: 0 };
    const warm = await runLlm(tiny.file, next);
    const fresh = new JobProcessPool();
    try {
      const opts: RunJobOptions = { modelPath: tiny.file, threads: THREADS, timeoutMs: 60_000, signal: new AbortController().signal, onProgress: () => {} };
      expect(await fresh.run('llm', makeJob('llm', next), opts)).toEqual(warm);
    } finally {
      await fresh.close();
    }
  });

  it('continues a chat that ends with the assistant: greedy, the rest of what one run gives', async () => {
    const whole = await directChat(system, user, { maxTokens: 32, temperature: 0 });
    // Cut at a token boundary. The continuation is evaluated as text again: equal here because these
    // 12 tokens tokenize back to themselves and llama.cpp's CPU sums do not depend on the batching.
    const said = model.detokenize(whole.tokens.slice(0, 12));
    const out = await runLlm(tiny.file, { messages: [...messages!, { role: 'assistant', content: said }], maxTokens: 20, temperature: 0 });
    expect(said + out.text).toBe(whole.text);
  });

  it('streams each piece with the tokens it decodes from, and resumes from a lost attempt’s tokens with the rest of one run', async () => {
    const pieces: OutputPiece[] = [];
    const whole = await runLlm(tiny.file, { messages, maxTokens: 40, temperature: 0 }, undefined, [], {}, pieces);
    expect(pieces.map((p) => p.text).join('')).toBe(whole.text);
    const tokens = pieces.flatMap((p) => p.tokens!);
    expect(tokens).toHaveLength(40);
    // The first token goes on its own, at once; the job process gathers the rest (a few ms at a time).
    expect(pieces[0]!.tokens).toHaveLength(1);
    expect(model.detokenize(tokens as never)).toBe(whole.text);
    // A lost attempt streamed the first 15 tokens: the next one starts with them (re-sent first) and gives the rest.
    const head = pieces.slice(0, pieces.findIndex((_, i) => pieces.slice(0, i + 1).flatMap((p) => p.tokens!).length >= 15) + 1);
    const resumeFrom = { text: head.map((p) => p.text).join(''), tokens: head.flatMap((p) => p.tokens!) };
    const again: OutputPiece[] = [];
    const resumed = await runLlm(tiny.file, { messages, maxTokens: 40, temperature: 0 }, undefined, [], { attempt: 2, resumeFrom }, again);
    expect(resumed).toEqual(whole);
    expect(again[0]).toEqual(resumeFrom);
    // Nothing left of maxTokens: the answer is what was streamed, cut for length.
    const spent = await runLlm(tiny.file, { messages, maxTokens: resumeFrom.tokens.length, temperature: 0 }, undefined, [], { attempt: 2, resumeFrom });
    expect(spent).toEqual({ text: resumeFrom.text, finishReason: 'length', usage: { promptTokens: whole.usage.promptTokens, completionTokens: resumeFrom.tokens.length } });
  });

  it('answers with the text it streamed, spaces and all, not the tokens detokenized again (llama.cpp tidies spaces there)', async () => {
    const pieces: OutputPiece[] = [];
    // On this model, 'Story 38' streams "b ?=" around its 428th character; detokenized at once, that is "b?=".
    const out = await runLlm(tiny.file, { prompt: 'Story 38', maxTokens: 300, temperature: 0 }, undefined, [], {}, pieces);
    expect(out.text).toBe(pieces.map((p) => p.text).join(''));
    expect(out.text).toContain('b ?=');
    const tokens = pieces.flatMap((p) => p.tokens!);
    expect(model.detokenize(tokens as never)).toContain('b?=');
  });

  it('resumes a completion at any cut with the rest of one run: the lost tokens are evaluated one by one, as they were generated', async () => {
    // On this model, evaluated together, these tokens gave other text from the 50th on (a near-tie that llama.cpp's batched sums tip the other way).
    const wide = writeTinyGguf(path.join(dir, 'tiny-1024.gguf'), { contextLength: 1024 });
    const pieces: OutputPiece[] = [];
    const whole = await runLlm(wide.file, { prompt: 'Once upon a time', maxTokens: 80, temperature: 0 }, undefined, [], {}, pieces);
    const tokens = pieces.flatMap((p) => p.tokens!);
    for (const cut of [15, 29, 43]) {
      const resumeFrom = { text: model.detokenize(tokens.slice(0, cut) as never), tokens: tokens.slice(0, cut) };
      expect(whole.text.startsWith(resumeFrom.text)).toBe(true);
      // A fresh process, as on the worker that takes over: a warm one would still hold these tokens from the whole run.
      const fresh = new JobProcessPool();
      try {
        const opts: RunJobOptions = { modelPath: wide.file, threads: THREADS, timeoutMs: 60_000, signal: new AbortController().signal, onProgress: () => {} };
        const resumed = (await fresh.run('llm', makeJob('llm', { prompt: 'Once upon a time', maxTokens: 80, temperature: 0 }, { attempt: 2, resumeFrom }), opts)) as LlmJobOutput;
        expect(resumed.text, `cut at ${cut}`).toBe(whole.text);
      } finally {
        await fresh.close();
      }
    }
  });

  it('keeps a prompt that nearly fills the context whole, rather than cut its start', async () => {
    // About 480 of the 512 tokens: past the 460 LlamaCompletion keeps of its input by default.
    const direct = async (tokens: readonly number[], contextShiftSize?: number) => {
      const context = await model.createContext({ threads: THREADS });
      try {
        const options = { maxTokens: 8, temperature: 0, topK: 0, repeatPenalty: false as const, disableContextShift: true, ...(contextShiftSize !== undefined && { contextShiftSize }) };
        return (await new LlamaCompletion({ contextSequence: context.getSequence() }).generateCompletionWithMeta(tokens as never, options)).response;
      } finally {
        await context.dispose();
      }
    };
    // A prompt whose start matters: the whole prompt and its cut end give different text.
    let found: { prompt: string; whole: string } | undefined;
    for (let variant = 0; !found && variant < 20; variant++) {
      let prompt = `Once ${variant}`;
      for (let i = 0; model.tokenize(prompt, false, 'trimLeadingSpace').length < 480; i++) prompt += ` ${['grid', 'worker', 'story', 'model', 'idle', 'token'][(i + variant) % 6]} ${i}`;
      const tokens = model.tokenize(prompt, false, 'trimLeadingSpace');
      const [whole, cut] = [await direct(tokens, 0), await direct(tokens)];
      if (whole !== cut) found = { prompt, whole };
    }
    expect(found, 'a prompt whose cut changes the text').toBeDefined();
    expect((await runLlm(tiny.file, { prompt: found!.prompt, maxTokens: 8, temperature: 0 })).text).toBe(found!.whole);
  });

  it('samples with a seed like node-llama-cpp does, and another seed gives other text', async () => {
    const sampled = { maxTokens: 32, temperature: 0.9, seed: 1234, topP: 0.9 };
    // node-llama-cpp keeps only the 40 likeliest tokens unless told otherwise; OpenAI's API has no such cut.
    const want = await directChat(system, user, { ...sampled, topK: 0 });
    const out = await runLlm(tiny.file, { messages, ...sampled });
    expect(out.text).toBe(want.text);
    expect((await runLlm(tiny.file, { messages, ...sampled, seed: 99 })).text).not.toBe(want.text);
  });

  it('completes a raw prompt like LlamaCompletion, and ends before a stop string', async () => {
    const prompt = 'The quick brown fox';
    const want = await directCompletion(prompt, { maxTokens: 40, temperature: 0 });
    const out = await runLlm(tiny.file, { prompt, maxTokens: 40, temperature: 0 });
    expect(out).toMatchObject({ text: want, finishReason: 'length', usage: { promptTokens: model.tokenize(prompt).length, completionTokens: 40 } });

    const stop = want.slice(Math.floor(want.length / 2), Math.floor(want.length / 2) + 3);
    const stopped = await runLlm(tiny.file, { prompt, maxTokens: 40, temperature: 0, stop: [stop] });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(want.slice(0, want.indexOf(stop)));
  });

  it('refuses a prompt over the context, naming its size, and bad input, naming the field', async () => {
    const long = 'word '.repeat(tiny.contextLength * 2);
    const over = await rejection(runLlm(tiny.file, { prompt: long, maxTokens: 4 }));
    expect(over.code).toBe('GG_ERR_INPUT_INVALID');
    expect(over.message).toContain(`holds ${tiny.contextLength}`);
    const both = await rejection(runLlm(tiny.file, { prompt: 'a', messages, maxTokens: 4 }));
    expect(both.code).toBe('GG_ERR_INPUT_INVALID');
    expect(both.message).toContain('exactly one of "messages", "prompt" and "embed"');
    const zero = await rejection(runLlm(tiny.file, { prompt: 'a', maxTokens: 0 }));
    expect(zero.message).toMatch(/^maxTokens: /);
  });

  it('holds a request to GOGRID_LLM_CONTEXT tokens (8192 unless set), whatever context the model claims, and says so', { timeout: 60_000 }, async () => {
    // 2^27 tokens: left to node-llama-cpp, creating the context did not end within 2 minutes.
    const huge = writeTinyGguf(path.join(dir, 'huge-context.gguf'), { contextLength: 2 ** 27 });
    const out = await runLlm(huge.file, { prompt: 'Hello', maxTokens: 4, temperature: 0 });
    expect(out.usage.completionTokens).toBe(4);
    const long = 'Tell me a story about the grid. '.repeat(1200);
    const over = await rejection(runLlm(huge.file, { prompt: long, maxTokens: 4 }));
    expect(over.code).toBe('GG_ERR_INPUT_INVALID');
    expect(over.message).toMatch(/holds 8192 \(GOGRID_LLM_CONTEXT on the worker allows 8192\)/);

    const saved = process.env['GOGRID_LLM_CONTEXT'];
    const capped = new JobProcessPool();
    try {
      const refused = (value: string) => [value, new RegExp(`^GOGRID_LLM_CONTEXT is "${value.replace(/[.+]/g, '\\$&')}"`)] as const;
      for (const [value, want] of [['1024', /holds 1024 \(GOGRID_LLM_CONTEXT/], ...['lots', '-5', '100', '1024.5', '99999999999', 'NaN'].map(refused)] as const) {
        process.env['GOGRID_LLM_CONTEXT'] = value;
        const opts: RunJobOptions = { modelPath: huge.file, threads: THREADS, timeoutMs: 60_000, signal: new AbortController().signal, onProgress: () => {} };
        const e = await rejection(capped.run('llm', makeJob('llm', { prompt: 'Tell me a story about the grid. '.repeat(200), maxTokens: 4 }), opts));
        expect(e.message).toMatch(want);
        await capped.close();
      }
    } finally {
      if (saved === undefined) delete process.env['GOGRID_LLM_CONTEXT'];
      else process.env['GOGRID_LLM_CONTEXT'] = saved;
      await capped.close();
    }
  });

  it('fails with GG_ERR_WORKER_OUT_OF_MEMORY (retryable elsewhere) where not even a small context fits the memory it may use', async () => {
    const saved = process.env['GOGRID_LLM_KEEP_FREE_MIB'];
    // Keep more free than the machine has: node-llama-cpp sees no room for any context.
    process.env['GOGRID_LLM_KEEP_FREE_MIB'] = String(Math.ceil((2 * totalmem()) / 2 ** 20));
    const starved = new JobProcessPool();
    try {
      const opts: RunJobOptions = { modelPath: tiny.file, threads: THREADS, timeoutMs: 60_000, signal: new AbortController().signal, onProgress: () => {} };
      const e = await rejection(starved.run('llm', makeJob('llm', { prompt: 'Hello', maxTokens: 4 }), opts));
      expect(e.code).toBe('GG_ERR_WORKER_OUT_OF_MEMORY');
      expect(e.retryable).toBe(true);
      expect(e.message).toMatch(/not enough free memory on this worker .*too large for the available RAM/);
    } finally {
      if (saved === undefined) delete process.env['GOGRID_LLM_KEEP_FREE_MIB'];
      else process.env['GOGRID_LLM_KEEP_FREE_MIB'] = saved;
      await starved.close();
    }
    // The same model with the memory there: it runs.
    expect((await runLlm(tiny.file, { prompt: 'Hello', maxTokens: 4, temperature: 0 })).usage.completionTokens).toBe(4);
  });

  it.each([
    // node-llama-cpp reads the header itself first; llama.cpp finds the missing data, and says why only in its log.
    ['malformed', writeMalformedGguf, 'Unsupported GGUF value type'],
    ['truncated', writeTruncatedGguf, "tensor 'blk.0.ffn_gate.weight' data is not within the file bounds"],
  ])('fails a job on a %s GGUF with GG_ERR_MODEL_UNSUPPORTED, and the pool runs the next job', async (what, write, why) => {
    const bad = path.join(dir, `${what}.gguf`);
    write(bad);
    const log = pidRecorder();
    const e = await rejection(runLlm(bad, { prompt: 'Hello', maxTokens: 4, temperature: 0 }, log));
    expect(e.code).toBe('GG_ERR_MODEL_UNSUPPORTED');
    expect(e.message).toContain('llama.cpp could not load the model');
    expect(e.message).toContain(why);
    const out = await runLlm(tiny.file, { prompt: 'Hello', maxTokens: 4, temperature: 0 }, log);
    expect(out.usage.completionTokens).toBe(4);
  });
});

describe('LLM executor, several jobs at once on one loaded model (the worker’s slots)', () => {
  const system = 'You are a helpful assistant.';
  const messages: LlmJobInput['messages'] = [
    { role: 'system', content: system },
    { role: 'user', content: 'Tell me a story about the grid.' },
  ];
  const slotted = new JobProcessPool({ maxIdle: 2 });
  afterAll(() => slotted.close());

  /** A job on two slots; `order` gets its tag at each piece it streams. */
  function start(tag: string, input: unknown, order: string[], log: ReturnType<typeof pidRecorder>, signal = new AbortController().signal) {
    const pieces: OutputPiece[] = [];
    const progress: string[] = [];
    const opts: RunJobOptions = {
      modelPath: tiny.file,
      threads: THREADS,
      slots: 2,
      timeoutMs: 60_000,
      signal,
      onProgress: (_p, m) => progress.push(m ?? ''),
      onPartial: (p) => {
        pieces.push(p);
        order.push(tag);
      },
      logger: log,
    };
    return { pieces, progress, output: slotted.run('llm', makeJob('llm', input), opts) as Promise<LlmJobOutput> };
  }

  it('streams two requests at once from one process that loaded the model once; a request alone there gives node-llama-cpp’s own text', async () => {
    const log = pidRecorder();
    const order: string[] = [];
    const a = start('a', { messages, maxTokens: 300, temperature: 0 }, order, log);
    const b = start('b', { prompt: 'Once upon a time', maxTokens: 30, temperature: 0 }, order, log);
    const [outA, outB] = await Promise.all([a.output, b.output]);
    expect(log.pids).toHaveLength(1);
    // Interleaved: b streamed while a was still streaming.
    expect(order.indexOf('b')).toBeLessThan(order.lastIndexOf('a'));
    for (const [job, out, n] of [[a, outA, 300], [b, outB, 30]] as const) {
      expect(out.usage.completionTokens).toBe(n);
      expect(job.pieces.map((p) => p.text).join('')).toBe(out.text);
      expect(model.detokenize(job.pieces.flatMap((p) => p.tokens!) as never)).toBe(out.text);
    }
    expect([...a.progress, ...b.progress].filter((m) => m === 'loading model')).toHaveLength(1);

    const alone = start('c', { messages, maxTokens: 32, temperature: 0 }, order, log);
    expect((await alone.output).text).toBe((await directChat(system, 'Tell me a story about the grid.', { maxTokens: 32, temperature: 0 })).text);
    expect(alone.progress).not.toContain('loading model');
    expect(log.pids).toHaveLength(1);
  });

  it('stops a canceled request at its next token in the process, which keeps the model loaded and its other request streaming', async () => {
    const log = pidRecorder();
    const order: string[] = [];
    const controller = new AbortController();
    const long = start('long', { messages, maxTokens: 400, temperature: 0 }, order, log, controller.signal);
    const other = start('other', { messages, maxTokens: 100, temperature: 0 }, order, log);
    await expect.poll(() => long.pieces.length, { interval: 2 }).toBeGreaterThan(0);
    const t0 = performance.now();
    controller.abort();
    expect((await rejection(long.output)).code).toBe('GG_ERR_JOB_CANCELED');
    expect(performance.now() - t0).toBeLessThan(1000);
    expect((await other.output).usage.completionTokens).toBe(100);
    const next = start('next', { prompt: 'Hello', maxTokens: 4, temperature: 0 }, order, log);
    expect((await next.output).usage.completionTokens).toBe(4);
    expect(next.progress).not.toContain('loading model');
    expect(log.lines.filter((l) => /exited/.test(l))).toEqual([]);
  });
});
