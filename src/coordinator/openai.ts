/**
 * OpenAI's API onto the grid's `llm` jobs and back: pure functions, so every
 * field's mapping is tested without a worker. The routes (http-openai.ts)
 * do the I/O.
 *
 *   const input = chatJobInput(ChatCompletionRequest.parse(body));   // an llm job's input
 *   const answer = chatCompletion({ id, model, created }, LlmJobOutput.parse(row.output));
 */
import type { ChatCompletion, ChatCompletionRequest, Completion, CompletionRequest, EmbeddingList, EmbeddingRequest, Usage } from '../protocol/openai.js';
import type { LlmEmbeddingOutput, LlmJobInput, LlmJobOutput, LlmMessage } from '../protocol/llm.js';

function sampling(req: ChatCompletionRequest | CompletionRequest): Omit<LlmJobInput, 'messages' | 'prompt'> {
  return {
    // OpenAI's default temperature and top_p are 1, as the job's are.
    temperature: req.temperature ?? 1,
    topP: req.top_p ?? 1,
    ...(req.seed != null ? { seed: req.seed } : {}),
    ...(req.stop != null ? { stop: typeof req.stop === 'string' ? [req.stop] : req.stop } : {}),
  };
}

export function chatJobInput(req: ChatCompletionRequest): LlmJobInput {
  const maxTokens = req.max_completion_tokens ?? req.max_tokens;
  const messages: LlmMessage[] = req.messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: m.content.map((part) => part.text).join(''),
  }));
  return { messages, ...(maxTokens != null ? { maxTokens } : {}), ...sampling(req), ...format(req.response_format) };
}

function format(f: ChatCompletionRequest['response_format']): Pick<LlmJobInput, 'format'> {
  if (f?.type === 'json_object') return { format: { type: 'json' } };
  if (f?.type === 'json_schema') return { format: { type: 'jsonSchema', schema: f.json_schema.schema } };
  return {};
}

export function embeddingJobInput(req: EmbeddingRequest): LlmJobInput {
  return { embed: typeof req.input === 'string' ? [req.input] : req.input, temperature: 1, topP: 1 };
}

/** The vectors as OpenAI answers them: numbers, or (`base64`) little-endian float32 bytes in base64. */
export function embeddingList(model: string, out: LlmEmbeddingOutput, encoding: 'float' | 'base64'): EmbeddingList {
  return {
    object: 'list',
    data: out.embeddings.map((v, index) => ({ object: 'embedding', index, embedding: encoding === 'float' ? v : float32Base64(v) })),
    model,
    usage: { prompt_tokens: out.usage.promptTokens, total_tokens: out.usage.promptTokens },
  };
}

function float32Base64(v: readonly number[]): string {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  v.forEach((x, i) => view.setFloat32(i * 4, x, true));
  return Buffer.from(bytes).toString('base64');
}

/** OpenAI's completions API generates 16 tokens unless told otherwise. */
export const COMPLETION_DEFAULT_MAX_TOKENS = 16;

export function completionJobInput(req: CompletionRequest): LlmJobInput {
  const prompt = typeof req.prompt === 'string' ? req.prompt : req.prompt[0]!;
  return { prompt, maxTokens: req.max_tokens ?? COMPLETION_DEFAULT_MAX_TOKENS, ...sampling(req) };
}

export function usage(out: LlmJobOutput): Usage {
  const { promptTokens, completionTokens } = out.usage;
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

export interface AnswerIds {
  /** The grid's job id, which `gogrid job ID` shows. */
  id: string;
  /** The model name the client asked for. */
  model: string;
  /** Unix seconds. */
  created: number;
}

export function chatCompletion(ids: AnswerIds, out: LlmJobOutput): ChatCompletion {
  return {
    ...ids,
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content: out.text }, finish_reason: out.finishReason, logprobs: null }],
    usage: usage(out),
  };
}

export function completion(ids: AnswerIds, out: LlmJobOutput): Completion {
  return { ...ids, object: 'text_completion', choices: [{ index: 0, text: out.text, finish_reason: out.finishReason, logprobs: null }], usage: usage(out) };
}
