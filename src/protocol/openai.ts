/**
 * The OpenAI-compatible API's request bodies, as the coordinator parses them,
 * and the shapes of its answers. Requests are read leniently, as OpenAI's
 * own server does (fields this grid does not use are ignored), but a field it
 * cannot honour (`n` > 1, tool calls) is refused rather than silently dropped.
 *
 *   const req = ChatCompletionRequest.parse(body);
 *   // → an `llm` job (coordinator/openai.ts), its output → ChatCompletion
 */
import { z } from 'zod';
import { line, prose } from './text.js';
import { JsonSchemaObject, MAX_EMBED_INPUTS, MAX_PROMPT_CHARS, MAX_STOP_STRINGS } from './llm.js';

const text = prose(MAX_PROMPT_CHARS);

/**
 * A message's content: a string, or OpenAI's array of parts of which this
 * grid takes the text ones. Read as parts either way (a string is one), so
 * that a bad part is named rather than lost in "invalid input" of a union.
 */
const Content = z.preprocess(
  (v) => (typeof v === 'string' ? [{ type: 'text', text: v }] : v),
  z.array(
    z.looseObject({ type: z.string(), text: text.optional() }).refine((p) => p.type === 'text' && p.text !== undefined, {
      error: (iss) => `only text parts are supported, not ${JSON.stringify((iss.input as { type?: unknown }).type)}`,
    }),
  ),
);

export const ChatMessage = z.looseObject({
  // `developer` is OpenAI's newer name for `system`.
  role: z.enum(['system', 'developer', 'user', 'assistant'], { error: 'must be system, developer, user or assistant (tool messages are not supported)' }),
  content: Content,
});

const Stop = z.union([prose(1000).min(1), z.array(prose(1000).min(1)).max(MAX_STOP_STRINGS)]);

const Sampling = {
  model: line(256).min(1),
  max_tokens: z.number().int().positive('must be at least 1').nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().nonnegative().max(0xffffffff).nullish(),
  stop: Stop.nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullish(),
  n: z.literal(1, { error: 'only n = 1 is supported' }).nullish(),
};

/** `text` is no constraint; the JSON ones become a grammar on the worker. */
const ResponseFormat = z.discriminatedUnion(
  'type',
  [
    z.looseObject({ type: z.literal('text') }),
    z.looseObject({ type: z.literal('json_object') }),
    z.looseObject({ type: z.literal('json_schema'), json_schema: z.looseObject({ name: line(64).optional(), schema: JsonSchemaObject }) }),
  ],
  { error: 'must be {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": {"schema": {…}}}' },
);

export const ChatCompletionRequest = z.looseObject({
  ...Sampling,
  response_format: ResponseFormat.nullish(),
  messages: z.array(ChatMessage).min(1, 'must hold at least one message'),
  /** OpenAI's newer name for max_tokens. */
  max_completion_tokens: z.number().int().positive('must be at least 1').nullish(),
  tools: z.array(z.unknown()).max(0, 'tools are not supported').nullish(),
});

export const CompletionRequest = z.looseObject({
  ...Sampling,
  prompt: z.union([text, z.array(text).length(1, 'one prompt per request')]),
});

export const EmbeddingRequest = z.looseObject({
  model: line(256).min(1),
  input: z.union([text, z.array(text).min(1, 'must hold at least one text').max(MAX_EMBED_INPUTS)], {
    error: 'must be a text or an array of texts (token arrays are not supported)',
  }),
  /** The official client asks for base64 (packed float32) unless told `float`. */
  encoding_format: z.enum(['float', 'base64']).nullish(),
  dimensions: z.undefined({ error: 'dimensions are not supported: the model’s own size is what it gives' }).nullish(),
});

export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;
export type EmbeddingRequest = z.infer<typeof EmbeddingRequest>;
export type CompletionRequest = z.infer<typeof CompletionRequest>;

export type FinishReason = 'stop' | 'length';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: { index: 0; message: { role: 'assistant'; content: string }; finish_reason: FinishReason; logprobs: null }[];
  usage: Usage;
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: { index: 0; text: string; finish_reason: FinishReason; logprobs: null }[];
  usage: Usage;
}

export interface EmbeddingList {
  object: 'list';
  data: { object: 'embedding'; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface OpenAiModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}
