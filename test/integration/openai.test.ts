/**
 * The OpenAI-compatible API with the official `openai` client, against a real
 * coordinator and a real worker running the llm executor on the generated
 * tiny GGUF (CPU build): the text equals a direct node-llama-cpp run with the
 * same settings, token for token.
 */
import { join } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from 'node-llama-cpp';
import OpenAI from 'openai';
import { openaiClient } from '../helpers/openai-client.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreatedApiKey, ModelInfo } from '../../src/protocol/index.js';
import { writeTinyGguf } from '../fixtures/make-gguf.js';
import { directChat, directCompletion } from '../helpers/llama-direct.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { within } from '../helpers/within.js';
import { rawWorker } from '../helpers/raw-worker.js';
import { enroll } from '../../src/worker/enroll.js';
import { getJob } from '../../src/coordinator/store/index.js';

// Job processes inherit this: the CPU build, as the direct runs here use.
process.env['GOGRID_LLM_GPU'] = 'off';

let c: TestCoordinator;
let worker: Awaited<ReturnType<typeof startTestWorker>>;
let client: OpenAI;
let modelName: string;
let modelSha: string;
let llama: Llama;
let model: LlamaModel;

const openai = (apiKey: string) => openaiClient(c.apiUrl, apiKey, c.ca.material.certPem);

beforeAll(async () => {
  c = await startTestCoordinator();
  const tiny = writeTinyGguf(join(await tempDir(), 'tiny.gguf'));
  modelSha = await c.addModel(tiny.file);
  modelName = ModelInfo.parse(await c.api('GET', `/v1/models/${modelSha}/info`)).name;
  client = openai(CreatedApiKey.parse(await c.api('POST', '/v1/keys', { scope: 'inference', name: 'test app' })).key);
  worker = await startTestWorker(c, { token: await c.createToken() });
  await within(20_000, 'the worker online', worker.agent.waitFor('online'));
  llama = await getLlama({ gpu: false, build: 'never', maxThreads: 1, logLevel: LlamaLogLevel.error });
  model = await llama.loadModel({ modelPath: tiny.file });
}, 120_000);

afterAll(async () => {
  await worker?.agent.stop();
  await worker?.closed;
  await c?.stop();
  await model?.dispose();
  await llama?.dispose();
  await removeTempDirs();
});

const SYSTEM = 'You are terse.';
const USER = 'Hello! How are you today?';
const MESSAGES: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
  { role: 'system', content: SYSTEM },
  { role: 'user', content: USER },
];

describe('the OpenAI API, through the official client with an inference key', () => {
  it('lists the model by its name', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toContain(modelName);
  });

  it('answers a chat with the text node-llama-cpp itself generates, and counts the tokens', async () => {
    const want = await directChat(model, 1, SYSTEM, USER, { maxTokens: 12, temperature: 0 });
    const answer = await client.chat.completions.create({
      model: modelName,
      messages: MESSAGES,
      max_tokens: 12,
      temperature: 0,
    });
    expect(answer.object).toBe('chat.completion');
    expect(answer.choices[0]!.message.content).toBe(want.text);
    expect(answer.usage?.completion_tokens).toBe(want.tokens.length);
    expect(answer.usage?.total_tokens).toBe(answer.usage!.prompt_tokens + answer.usage!.completion_tokens);
    // The answer's id is the grid's job: its history and counts are there for an operator, the prompt and the text are not ([llm] keep_text is off).
    const job = await c.api<{ kind: string; state: string; output: unknown }>('GET', `/v1/jobs/${answer.id}`);
    expect(job).toMatchObject({ kind: 'llm', state: 'succeeded', output: { finishReason: 'length', usage: { promptTokens: answer.usage!.prompt_tokens, completionTokens: 12 } } });
    expect(job.output).not.toHaveProperty('text');
    expect((await getJob(c.parts.db, answer.id))?.input).toBeNull();
    // The worker's warm job process holds the model now, and its heartbeats tell the scheduler so.
    const loaded = () => c.parts.sessions.views().find((v) => v.id === worker.identity.workerId)?.loadedModels.has(modelSha);
    await expect.poll(loaded, { timeout: 10_000 }).toBe(true);
  }, 120_000);

  it('streams a chat as OpenAI chunks that add up to the same text, usage in the last', async () => {
    const whole = await client.chat.completions.create({ model: modelName, messages: MESSAGES, max_tokens: 8, temperature: 0 });
    const stream = await client.chat.completions.create({
      model: modelName,
      messages: MESSAGES,
      max_tokens: 8,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let last: OpenAI.Chat.Completions.ChatCompletionChunk | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      last = chunk;
    }
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(last?.usage).toEqual(whole.usage);
  }, 120_000);

  it('answers in JSON that a schema describes when asked to (response_format json_schema, a grammar on the worker)', async () => {
    const schema = { type: 'object', properties: { answer: { enum: ['yes', 'no'] }, sure: { type: 'boolean' } }, required: ['answer', 'sure'] };
    const answer = await client.chat.completions.create({
      model: modelName,
      messages: MESSAGES,
      max_tokens: 64,
      temperature: 0,
      response_format: { type: 'json_schema', json_schema: { name: 'reply', schema } },
    });
    const reply = JSON.parse(answer.choices[0]!.message.content!) as { answer: string; sure: boolean };
    expect(['yes', 'no']).toContain(reply.answer);
    expect(typeof reply.sure).toBe('boolean');
    expect(Object.keys(reply).sort()).toEqual(['answer', 'sure']);
    // A schema with a mistake is refused before it reaches a worker, the keyword named.
    await expect(
      client.chat.completions.create({ model: modelName, messages: MESSAGES, response_format: { type: 'json_schema', json_schema: { name: 'bad', schema: { type: 'no-such-type' } } } }),
    ).rejects.toMatchObject({ status: 400, code: 'GG_ERR_BAD_REQUEST', message: expect.stringContaining('response_format.json_schema.schema.type') });
  }, 120_000);

  it('embeds texts as node-llama-cpp does, as numbers or as the base64 the official client asks for', async () => {
    const texts = ['Hello, grid.', 'A second, longer text to embed.'];
    const context = await model.createEmbeddingContext({ threads: 1 });
    const want = await Promise.all(texts.map(async (t) => [...(await context.getEmbeddingFor(t)).vector]));
    await context.dispose();
    // The client's default: base64 on the wire, decoded back to numbers.
    const packed = await client.embeddings.create({ model: modelName, input: texts });
    const floats = await client.embeddings.create({ model: modelName, input: texts, encoding_format: 'float' });
    for (const answer of [packed, floats]) {
      expect(answer.data.map((d) => d.index)).toEqual([0, 1]);
      answer.data.forEach((d, i) => d.embedding.forEach((x, k) => expect(x).toBeCloseTo(want[i]![k]!, 5)));
      expect(answer.usage.prompt_tokens).toBe(texts.reduce((n, t) => n + model.tokenize(t).length, 0));
    }
    await expect(client.embeddings.create({ model: modelName, input: 'x', dimensions: 8 })).rejects.toMatchObject({ status: 400, message: expect.stringContaining('dimensions') });
  }, 120_000);

  it('completes a prompt as node-llama-cpp does', async () => {
    const prompt = 'Once upon a time';
    const want = await directCompletion(model, 1, prompt, { maxTokens: 6, temperature: 0 });
    const answer = await client.completions.create({ model: modelName, prompt, max_tokens: 6, temperature: 0 });
    expect(answer.choices[0]!.text).toBe(want);
    expect(answer.usage?.completion_tokens).toBeLessThanOrEqual(6);
  }, 120_000);

  it('answers bad requests with OpenAI errors of the right status', async () => {
    const chat = (body: Record<string, unknown>) => client.chat.completions.create({ model: modelName, messages: [{ role: 'user', content: 'x' }], ...body } as never);
    await expect(chat({ model: 'no-such-model' })).rejects.toMatchObject({ status: 404, code: 'GG_ERR_MODEL_NOT_FOUND' });
    await expect(chat({ max_tokens: 0 })).rejects.toMatchObject({ status: 400, code: 'GG_ERR_BAD_REQUEST', message: expect.stringContaining('max_tokens') });
    await expect(chat({ messages: [] })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    // Over the model's context (the tiny model's 512 tokens): 400, with the limit, from the worker that tried.
    await expect(chat({ messages: [{ role: 'user', content: 'Tell me a story about the grid. '.repeat(100) }] })).rejects.toMatchObject({
      status: 400,
      code: 'GG_ERR_INPUT_INVALID',
      message: expect.stringMatching(/the prompt is \d+ tokens, and the model's context here holds 512/),
    });
    await expect(openai('ggk_wrong').chat.completions.create({ model: modelName, messages: [{ role: 'user', content: 'x' }] })).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('relays a worker’s output as it comes, each piece once; a repeated attempt continues from what was streamed', async () => {
    const raw = await rawWorker(c, await enroll({ dataDir: await tempDir(), coordinator: { host: '127.0.0.1', port: c.port }, token: await c.createToken() }), {
      executors: ['llm'],
      slots: 1,
    });
    await worker.agent.stop();
    await worker.closed;
    try {
      const stream = await client.chat.completions.create({ model: modelName, messages: MESSAGES, stream: true });
      const chunks = stream[Symbol.asyncIterator]();
      const next = async () => (await within(10_000, 'a chunk', chunks.next())).value as OpenAI.Chat.Completions.ChatCompletionChunk;
      const first = await raw.next('job.assign');
      const partial = (offset: number, text: string, assign = first) => raw.send({ type: 'job.partial', jobId: assign.job.jobId, leaseId: assign.leaseId, offset, text });
      await partial(0, 'Hel');
      // The client has this piece while the job still runs: nothing else was sent yet.
      expect((await next()).choices[0]!.delta).toEqual({ role: 'assistant', content: 'Hel' });
      await partial(3, 'lo');
      expect((await next()).choices[0]!.delta).toEqual({ content: 'lo' });
      // The attempt fails; the next one is told what was streamed, starts with it, and only its new text reaches the client.
      await raw.send({ type: 'job.result', jobId: first.job.jobId, leaseId: first.leaseId, outcome: { ok: false, error: { code: 'GG_ERR_EXECUTOR_CRASHED', message: 'boom', retryable: true } } });
      const second = await raw.next('job.assign');
      expect(second.job).toMatchObject({ attempt: 2, resumeFrom: { text: 'Hello' } });
      await partial(0, 'Hello, w', second);
      expect((await next()).choices[0]!.delta).toEqual({ content: ', w' });
      const output = { text: 'Hello, world', finishReason: 'stop', usage: { promptTokens: 5, completionTokens: 4 } };
      await raw.send({ type: 'job.result', jobId: second.job.jobId, leaseId: second.leaseId, outcome: { ok: true, output } });
      expect((await next()).choices[0]!.delta).toEqual({ content: 'orld' });
      const last = await next();
      expect(last.choices[0]!.finish_reason).toBe('stop');
      expect(last.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 });
      expect((await chunks.next()).done).toBe(true);
    } finally {
      await raw.close();
    }
  });

  it('ends a stream with GG_ERR_STREAM_BROKEN, and stops the job, when a repeated attempt disagrees with what the client has', async () => {
    const raw = await rawWorker(c, await enroll({ dataDir: await tempDir(), coordinator: { host: '127.0.0.1', port: c.port }, token: await c.createToken() }), {
      executors: ['llm'],
      slots: 1,
    });
    try {
      const stream = await client.chat.completions.create({ model: modelName, messages: MESSAGES, stream: true });
      const chunks = stream[Symbol.asyncIterator]();
      const first = await raw.next('job.assign');
      await raw.send({ type: 'job.partial', jobId: first.job.jobId, leaseId: first.leaseId, offset: 0, text: 'Hello', tokens: [1, 2] });
      expect((await within(10_000, 'a chunk', chunks.next())).value).toMatchObject({ choices: [{ delta: { content: 'Hello' } }] });
      // Handed back; the next attempt (an older worker that cannot resume) starts over with other text.
      await raw.send({ type: 'job.release', jobId: first.job.jobId, leaseId: first.leaseId, reason: 'owner is back' });
      const second = await raw.next('job.assign');
      expect(second.job.resumeFrom).toEqual({ text: 'Hello', tokens: [1, 2] });
      await raw.send({ type: 'job.partial', jobId: second.job.jobId, leaseId: second.leaseId, offset: 0, text: 'Goodbye' });
      await expect(within(10_000, 'the stream to fail', chunks.next())).rejects.toMatchObject({ code: 'GG_ERR_STREAM_BROKEN' });
      expect((await raw.next('job.cancel')).jobId).toBe(second.job.jobId);
    } finally {
      await raw.close();
    }
  });

  it('says why no worker can serve the model, with 503, once none is connected', async () => {
    const offline = await c.api<{ state: string }[]>('GET', '/v1/workers');
    expect(offline.every((w) => w.state !== 'online')).toBe(true);
    await expect(client.chat.completions.create({ model: modelName, messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({
      status: 503,
      code: 'GG_ERR_NO_WORKER_AVAILABLE',
      message: expect.stringContaining('no worker is connected'),
    });
  });
});
