/**
 * Failover mid-stream (issue #13 item 7): the worker streaming an answer is
 * lost (revoked, or it hands the job back for its owner), and the answer goes
 * on from another worker, continuing from the text already streamed, with
 * nothing lost or repeated: greedy, the client's text equals one
 * uninterrupted node-llama-cpp run. And fifty streams at once on the two
 * workers, none mixed up with another. Real coordinator, two real workers,
 * the official `openai` client.
 */
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from 'node-llama-cpp';
import type OpenAI from 'openai';
import { openaiClient } from '../helpers/openai-client.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CreatedApiKey, JobInfo, ModelInfo } from '../../src/protocol/index.js';
import { writeTinyGguf } from '../fixtures/make-gguf.js';
import { directChat, directCompletion } from '../helpers/llama-direct.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { within } from '../helpers/within.js';

// Job processes inherit this: the CPU build, as the direct runs here use.
process.env['GOGRID_LLM_GPU'] = 'off';

/** Long enough that the answer is still streaming when the worker is taken away. */
const MAX_TOKENS = 600;

let c: TestCoordinator;
let client: OpenAI;
let modelName: string;
let llama: Llama;
let model: LlamaModel;
let workers: Awaited<ReturnType<typeof startTestWorker>>[] = [];

beforeAll(async () => {
  c = await startTestCoordinator();
  const tiny = writeTinyGguf(join(await tempDir(), 'tiny.gguf'), { contextLength: 1024 });
  const sha256 = await c.addModel(tiny.file);
  modelName = ModelInfo.parse(await c.api('GET', `/v1/models/${sha256}/info`)).name;
  client = openaiClient(c.apiUrl, CreatedApiKey.parse(await c.api('POST', '/v1/keys', { scope: 'inference', name: 'failover test' })).key, c.ca.material.certPem);
  llama = await getLlama({ gpu: false, build: 'never', maxThreads: 1, logLevel: LlamaLogLevel.error });
  model = await llama.loadModel({ modelPath: tiny.file });
}, 120_000);

beforeEach(async () => {
  workers = await Promise.all([1, 2].map(async () => startTestWorker(c, { token: await c.createToken() })));
  await within(20_000, 'two workers online', Promise.all(workers.map((w) => w.agent.waitFor('online'))));
});

afterEach(async () => {
  await Promise.all(workers.map(async (w) => (await w.agent.stop(), await w.closed)));
});

afterAll(async () => {
  await c?.stop();
  await model?.dispose();
  await llama?.dispose();
  await removeTempDirs();
});

type Lose = (worker: (typeof workers)[number]) => Promise<unknown>;
const revoke: Lose = (w) => c.api('POST', `/v1/workers/${w.identity.workerId}/revoke`);
// What a worker's policy loop does once its owner's pause outlasts the grace period: paused, it hands its jobs back.
const handBack: Lose = async (w) => {
  await c.api('PUT', `/v1/workers/${w.identity.workerId}/policy`, { paused: true });
  await w.runner.handBack('the owner needs the machine');
};

/** Reads a stream to its end; once the first text came, `lose` takes its worker away. The text, the last chunk and the job. */
async function streamLosingWorker(stream: AsyncIterable<{ id: string; usage?: OpenAI.CompletionUsage | null }>, piece: (chunk: never) => string, lose: Lose) {
  let text = '';
  let last: { id: string; usage?: OpenAI.CompletionUsage | null } | undefined;
  for await (const chunk of stream) {
    if (text === '' && piece(chunk as never) !== '') {
      const job = JobInfo.parse(await c.api('GET', `/v1/jobs/${chunk.id}`));
      const serving = workers.find((w) => w.identity.workerId === job.workerId);
      expect(serving, `job ${job.id} runs on one of the two workers`).toBeDefined();
      await lose(serving!);
    }
    text += piece(chunk as never);
    last = chunk;
  }
  const job = JobInfo.parse(await c.api('GET', `/v1/jobs/${last!.id}`));
  return { text, last: last!, job };
}

describe('an answer whose worker is lost mid-stream goes on from another worker', () => {
  it.each([
    ['revoked', revoke],
    ['handing the job back', handBack],
  ] as const)('a chat, its worker %s: the same text as one run, each token once', async (_how, lose) => {
    const want = await directChat(model, 1, 'You are terse.', 'Tell me a long story.', { maxTokens: MAX_TOKENS, temperature: 0 });
    const stream = await client.chat.completions.create({
      model: modelName,
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Tell me a long story.' },
      ],
      max_tokens: MAX_TOKENS,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const { text, last, job } = await streamLosingWorker(stream, (chunk: OpenAI.Chat.Completions.ChatCompletionChunk) => chunk.choices[0]?.delta.content ?? '', lose);
    expect(text).toBe(want.text);
    expect(last.usage?.completion_tokens).toBe(want.tokens.length);
    // Two workers took part: the first lost it mid-stream, the second finished it.
    const ran = job.events!.filter((e) => e.state === 'leased').map((e) => e.workerId);
    expect(new Set(ran).size, JSON.stringify(job.events)).toBe(2);
  }, 120_000);

  it('a sampled chat (no seed), its worker revoked: it goes on from what was streamed rather than start over with other text', async () => {
    // Started over, the new attempt would sample other text, and the stream would end with GG_ERR_STREAM_BROKEN.
    const stream = await client.chat.completions.create({
      model: modelName,
      messages: [{ role: 'user', content: 'Surprise me.' }],
      max_tokens: MAX_TOKENS,
      temperature: 1,
      stream: true,
      stream_options: { include_usage: true },
    });
    const { text, last, job } = await streamLosingWorker(stream, (chunk: OpenAI.Chat.Completions.ChatCompletionChunk) => chunk.choices[0]?.delta.content ?? '', revoke);
    expect(text).not.toBe('');
    expect(last.usage?.completion_tokens).toBeGreaterThan(0);
    expect(new Set(job.events!.filter((e) => e.state === 'leased').map((e) => e.workerId)).size, JSON.stringify(job.events)).toBe(2);
  }, 120_000);

  it('a raw completion, its worker revoked: the same text as one run', async () => {
    const prompt = 'Once upon a time';
    const want = await directCompletion(model, 1, prompt, { maxTokens: MAX_TOKENS, temperature: 0 });
    const stream = await client.completions.create({ model: modelName, prompt, max_tokens: MAX_TOKENS, temperature: 0, stream: true });
    const { text, job } = await streamLosingWorker(stream, (chunk: OpenAI.Completions.Completion) => chunk.choices[0]?.text ?? '', revoke);
    expect(text).toBe(want);
    expect(new Set(job.events!.filter((e) => e.state === 'leased').map((e) => e.workerId)).size, JSON.stringify(job.events)).toBe(2);
  }, 120_000);
});

describe('many streams at once', () => {
  it('streams 50 chats on two workers, each the text node-llama-cpp gives its own prompt, none mixed up', async () => {
    const prompts = Array.from({ length: 50 }, (_, i) => `Story number ${i}, please.`);
    const want: string[] = [];
    for (const p of prompts) want.push((await directChat(model, 1, 'You are terse.', p, { maxTokens: 12, temperature: 0 })).text);
    const streams = await Promise.all(
      prompts.map(async (p) => {
        const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
          { role: 'system', content: 'You are terse.' },
          { role: 'user', content: p },
        ];
        const stream = await client.chat.completions.create({ model: modelName, messages, max_tokens: 12, temperature: 0, stream: true });
        let text = '';
        const ids = new Set<string>();
        for await (const chunk of stream) {
          ids.add(chunk.id);
          text += chunk.choices[0]?.delta.content ?? '';
        }
        return { text, ids };
      }),
    );
    expect(streams.map((s) => s.text)).toEqual(want);
    // Every chunk of a stream names its own job, and no two streams share one.
    expect(streams.every((s) => s.ids.size === 1)).toBe(true);
    expect(new Set(streams.map((s) => [...s.ids][0])).size).toBe(50);
  }, 180_000);
});
