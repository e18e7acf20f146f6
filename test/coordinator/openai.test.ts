import { describe, expect, it } from 'vitest';
import { chatCompletion, chatJobInput, completion, completionJobInput, COMPLETION_DEFAULT_MAX_TOKENS, embeddingJobInput, embeddingList } from '../../src/coordinator/openai.js';
import { LlmJobInput } from '../../src/protocol/llm.js';
import { ChatCompletionRequest, CompletionRequest, EmbeddingRequest } from '../../src/protocol/openai.js';
import { firstZodProblem } from '../../src/protocol/index.js';

const chat = (body: Record<string, unknown>) => ChatCompletionRequest.parse({ model: 'tiny', messages: [{ role: 'user', content: 'hi' }], ...body });
const problem = (schema: typeof ChatCompletionRequest | typeof CompletionRequest, body: unknown) => {
  const r = schema.safeParse(body);
  return r.success ? null : firstZodProblem(r.error, [], '(body)');
};

describe('OpenAI requests → llm job inputs', () => {
  it('maps a chat field by field, and the job input parses', () => {
    const input = chatJobInput(
      chat({
        messages: [
          { role: 'developer', content: 'Be brief.' },
          { role: 'user', content: [{ type: 'text', text: 'Hello, ' }, { type: 'text', text: 'world' }] },
        ],
        max_tokens: 7,
        temperature: 0,
        top_p: 0.5,
        seed: 42,
        stop: '\n',
        user: 'someone', // OpenAI fields this grid does not use are ignored
      }),
    );
    expect(input).toEqual({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hello, world' },
      ],
      maxTokens: 7,
      temperature: 0,
      topP: 0.5,
      seed: 42,
      stop: ['\n'],
    });
    expect(LlmJobInput.parse(input)).toEqual(input);
  });

  it('takes max_completion_tokens over max_tokens, and OpenAI defaults where a field is absent or null', () => {
    expect(chatJobInput(chat({ max_tokens: 5, max_completion_tokens: 9 })).maxTokens).toBe(9);
    expect(chatJobInput(chat({ temperature: null, seed: null }))).toEqual({ messages: [{ role: 'user', content: 'hi' }], temperature: 1, topP: 1 });
  });

  it('maps response_format onto a grammar: JSON, or JSON a schema describes; text is no constraint', () => {
    const schema = { type: 'object', properties: { answer: { enum: ['yes', 'no'] } }, required: ['answer'] };
    expect(chatJobInput(chat({ response_format: { type: 'json_object' } })).format).toEqual({ type: 'json' });
    const input = chatJobInput(chat({ response_format: { type: 'json_schema', json_schema: { name: 'reply', strict: true, schema } } }));
    expect(input.format).toEqual({ type: 'jsonSchema', schema });
    expect(LlmJobInput.parse(input)).toEqual(input);
    expect(chatJobInput(chat({ response_format: { type: 'text' } }))).not.toHaveProperty('format');
    const refused = (response_format: unknown) => problem(ChatCompletionRequest, { model: 'tiny', messages: [{ role: 'user', content: 'x' }], response_format });
    expect(refused({ type: 'xml' })).toMatch(/^response_format\.type: must be/);
    expect(refused({ type: 'json_schema', json_schema: {} })).toMatch(/^response_format\.json_schema\.schema: /);
    // What node-llama-cpp would read as something else without a word is named here.
    expect(refused({ type: 'json_schema', json_schema: { schema: { type: 'no-such-type' } } })).toMatch(/^response_format\.json_schema\.schema\.type: /);
    expect(refused({ type: 'json_schema', json_schema: { schema: { properties: { a: { enum: 5 } } } } })).toMatch(/^response_format\.json_schema\.schema\.properties\.a\.enum: /);
    expect(refused({ type: 'json_schema', json_schema: { schema: { $ref: '#/nowhere' } } })).toMatch(/\$ref: must be "#\/\$defs\/NAME"/);
    let deep: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 10_000; i++) deep = { type: 'array', items: deep };
    expect(refused({ type: 'json_schema', json_schema: { schema: deep } })).toMatch(/nested more than 64 deep/);
  });

  it('gives a completion OpenAI’s 16-token default', () => {
    expect(completionJobInput(CompletionRequest.parse({ model: 'tiny', prompt: ['Once'] }))).toEqual({ prompt: 'Once', maxTokens: COMPLETION_DEFAULT_MAX_TOKENS, temperature: 1, topP: 1 });
  });

  it.each([
    ['no messages', { model: 'tiny', messages: [] }, /^messages: must hold at least one message/],
    ['a tool message', { model: 'tiny', messages: [{ role: 'tool', content: 'x' }] }, /^messages\.0\.role: .*tool messages are not supported/],
    ['an image part', { model: 'tiny', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }, /only text parts are supported, not "image_url"/],
    ['n = 2', { model: 'tiny', messages: [{ role: 'user', content: 'x' }], n: 2 }, /^n: only n = 1 is supported/],
    ['max_tokens 0', { model: 'tiny', messages: [{ role: 'user', content: 'x' }], max_tokens: 0 }, /^max_tokens: must be at least 1/],
    ['five stop strings', { model: 'tiny', messages: [{ role: 'user', content: 'x' }], stop: ['a', 'b', 'c', 'd', 'e'] }, /^stop/],
    ['tools', { model: 'tiny', messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function' }] }, /^tools: tools are not supported/],
    ['no model', { messages: [{ role: 'user', content: 'x' }] }, /^model: /],
  ])('refuses a chat with %s, naming the field', (_what, body, message) => {
    expect(problem(ChatCompletionRequest, body)).toMatch(message);
  });

  it('refuses a completion with several prompts', () => {
    expect(problem(CompletionRequest, { model: 'tiny', prompt: ['a', 'b'] })).toMatch(/^prompt: /);
  });
});

describe('embeddings', () => {
  it('maps one text or many onto an embed job, and answers with numbers or little-endian float32 in base64', () => {
    expect(embeddingJobInput(EmbeddingRequest.parse({ model: 'tiny', input: 'one' })).embed).toEqual(['one']);
    const input = embeddingJobInput(EmbeddingRequest.parse({ model: 'tiny', input: ['a', 'b'] }));
    expect(LlmJobInput.parse(input)).toEqual(input);
    const out = { embeddings: [[1.5, -2], [0.25, 3]], usage: { promptTokens: 4 } };
    expect(embeddingList('tiny', out, 'float')).toEqual({
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: [1.5, -2] },
        { object: 'embedding', index: 1, embedding: [0.25, 3] },
      ],
      model: 'tiny',
      usage: { prompt_tokens: 4, total_tokens: 4 },
    });
    const packed = embeddingList('tiny', out, 'base64').data[0]!.embedding as string;
    expect([...new Float32Array(new Uint8Array(Buffer.from(packed, 'base64')).buffer)]).toEqual([1.5, -2]);
  });

  it.each([
    ['no input', { model: 'tiny' }, /^input: /],
    ['an empty list', { model: 'tiny', input: [] }, /^input: /],
    ['token arrays', { model: 'tiny', input: [[1, 2]] }, /^input: /],
    ['dimensions', { model: 'tiny', input: 'x', dimensions: 8 }, /^dimensions: dimensions are not supported/],
    ['another encoding', { model: 'tiny', input: 'x', encoding_format: 'hex' }, /^encoding_format: /],
  ])('refuses %s, naming the field', (_what, body, message) => {
    const r = EmbeddingRequest.safeParse(body);
    expect(r.success ? null : firstZodProblem(r.error, [], '(body)')).toMatch(message);
  });
});

describe('llm job outputs → OpenAI answers', () => {
  const out = { text: 'Hi!', finishReason: 'length' as const, usage: { promptTokens: 9, completionTokens: 3 } };
  const ids = { id: 'j-1', model: 'tiny', created: 1_800_000_000 };

  it('answers a chat', () => {
    expect(chatCompletion(ids, out)).toEqual({
      id: 'j-1',
      object: 'chat.completion',
      created: 1_800_000_000,
      model: 'tiny',
      choices: [{ index: 0, message: { role: 'assistant', content: 'Hi!' }, finish_reason: 'length', logprobs: null }],
      usage: { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 },
    });
  });

  it('answers a completion', () => {
    expect(completion(ids, out)).toMatchObject({ object: 'text_completion', choices: [{ index: 0, text: 'Hi!', finish_reason: 'length' }], usage: { total_tokens: 12 } });
  });
});
