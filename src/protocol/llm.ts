/**
 * The JSON of `llm` job inputs and outputs: text generation on a GGUF model,
 * either a chat (rendered with the model's own chat template) or a raw
 * prompt. The names follow OpenAI's API in camelCase, so the coordinator's
 * OpenAI routes map onto them field by field.
 *
 *   { "messages": [{ "role": "user", "content": "Hello" }], "maxTokens": 64, "temperature": 0 }
 *   { "prompt": "Once upon a time", "maxTokens": 16, "seed": 7, "stop": ["\n"] }
 *   → { "text": "…", "finishReason": "length", "usage": { "promptTokens": 9, "completionTokens": 16 } }
 *
 * A chat whose last message is the assistant's is continued, not answered:
 * the generation picks up at the end of that message. `embed` asks for an
 * embedding vector of each text instead of generating:
 *
 *   { "embed": ["first text", "second"] }  →  { "embeddings": [[0.1, …], […]], "usage": { "promptTokens": 5 } }
 */
import { z } from 'zod';
import { json, prose } from './text.js';

/** How many stop strings a request may give, as in OpenAI's API. */
export const MAX_STOP_STRINGS = 4;
/** How many texts one embeddings request may give, as in OpenAI's API. */
export const MAX_EMBED_INPUTS = 2048;
/**
 * The longest prompt or message, in UTF-16 units; the request body limit
 * (1 MiB) binds first. Text as prose (text.ts): llama.cpp reads strings as C
 * strings, so a NUL would silently cut a prompt short.
 */
export const MAX_PROMPT_CHARS = 1024 * 1024;
const text = prose(MAX_PROMPT_CHARS);

export const LlmMessage = z.strictObject({
  role: z.enum(['system', 'user', 'assistant']),
  content: text,
});
export type LlmMessage = z.infer<typeof LlmMessage>;

const SCHEMA_TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'object', 'array'] as const;
const SchemaType = z.enum(SCHEMA_TYPES, { error: `must be one of ${SCHEMA_TYPES.join(', ')}` });

/**
 * The JSON Schema keywords node-llama-cpp turns into a grammar, checked
 * here so that a mistake is named (it reads an unknown type as `null` and
 * drops a malformed keyword silently). Other keywords (title, description,
 * format…) are allowed and do not constrain the text.
 */
export const JsonSchema: z.ZodType<Record<string, unknown>> = z.lazy(() =>
  z.looseObject({
    type: z.union([SchemaType, z.array(SchemaType).min(1)]).optional(),
    enum: z.array(z.unknown()).min(1, 'must list at least one value').optional(),
    oneOf: z.array(JsonSchema).min(1).optional(),
    anyOf: z.array(JsonSchema).min(1).optional(),
    properties: z.record(z.string(), JsonSchema).optional(),
    required: z.array(z.string()).optional(),
    additionalProperties: z.union([z.boolean(), JsonSchema]).optional(),
    items: z.union([z.literal(false), JsonSchema]).optional(),
    prefixItems: z.array(JsonSchema).optional(),
    $defs: z.record(z.string(), JsonSchema).optional(),
    $ref: z.string().regex(/^#\/\$defs\/[^/]+$/, 'must be "#/$defs/NAME"').optional(),
  }),
);
/** A JSON Schema object: depth and text checked first, iteratively, so hostile nesting is refused before the recursive check. */
export const JsonSchemaObject = json().pipe(JsonSchema);

export const LlmJobInput = z
  .strictObject({
    /** A chat, rendered with the model's chat template. */
    messages: z.array(LlmMessage).min(1).optional(),
    /** Raw text, given to the model as it is. */
    prompt: text.optional(),
    /** Texts to embed: one vector each, nothing generated. */
    embed: z.array(text).min(1).max(MAX_EMBED_INPUTS).optional(),
    /** Most tokens to generate. @default up to the end of the model's context */
    maxTokens: z.number().int().positive().optional(),
    /** 0 is greedy: the most likely token every time. @default 1 */
    temperature: z.number().min(0).max(2).default(1),
    /** Nucleus sampling: only the most likely tokens whose probabilities add up to `topP`. @default 1 */
    topP: z.number().gt(0).max(1).default(1),
    /** Seeds the sampler: the same seed, model and input give the same text. @default a random seed */
    seed: z.number().int().nonnegative().max(0xffffffff).optional(),
    /** Generation ends before the first of these strings; the string is not part of the text. */
    stop: z.array(prose(1000).min(1)).max(MAX_STOP_STRINGS).optional(),
    /**
     * Constrains the text with a grammar: to JSON (`json`), or to JSON that
     * `schema` describes (`jsonSchema`, the subset of JSON Schema that
     * node-llama-cpp turns into a grammar; the worker names what it cannot).
     */
    format: z
      .discriminatedUnion('type', [
        z.strictObject({ type: z.literal('json') }),
        z.strictObject({ type: z.literal('jsonSchema'), schema: JsonSchemaObject }),
      ])
      .optional(),
  })
  .refine((v) => [v.messages, v.prompt, v.embed].filter((x) => x !== undefined).length === 1, { message: 'give exactly one of "messages", "prompt" and "embed"' });
export type LlmJobInput = z.infer<typeof LlmJobInput>;

export const LlmJobOutput = z.strictObject({
  text: z.string(),
  /** `stop`: the model ended its turn or a stop string came; `length`: `maxTokens` or the context ran out. */
  finishReason: z.enum(['stop', 'length']),
  usage: z.strictObject({
    promptTokens: z.number().int().nonnegative(),
    completionTokens: z.number().int().nonnegative(),
  }),
});
export type LlmJobOutput = z.infer<typeof LlmJobOutput>;

/** The output of an `embed` job: a vector per text, in order. */
export const LlmEmbeddingOutput = z.strictObject({
  embeddings: z.array(z.array(z.number())).min(1).max(MAX_EMBED_INPUTS),
  usage: z.strictObject({ promptTokens: z.number().int().nonnegative() }),
});
export type LlmEmbeddingOutput = z.infer<typeof LlmEmbeddingOutput>;
