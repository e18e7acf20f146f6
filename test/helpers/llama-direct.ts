/**
 * node-llama-cpp run directly on a loaded model, with nothing of the grid in
 * between: what the llm executor and the OpenAI routes must reproduce token
 * for token with the same settings. The text is what it streamed (its text
 * chunks), which is what the executor answers with: llama.cpp tidies spaces
 * when it detokenizes a whole answer at once (llm.ts says why).
 *
 *   const want = await directChat(model, 1, 'Be brief.', 'Hello', { maxTokens: 8, temperature: 0 });
 */
import { LlamaChatSession, LlamaCompletion, type LlamaModel, type Token } from 'node-llama-cpp';

export interface DirectOptions {
  maxTokens: number;
  temperature?: number;
  seed?: number;
}

/** node-llama-cpp's own chat session: a system prompt and one user turn, the tokens it generated. */
export async function directChat(model: LlamaModel, threads: number, system: string | undefined, user: string, options: DirectOptions & { topP?: number; topK?: number }) {
  const context = await model.createContext({ threads });
  try {
    const sequence = context.getSequence();
    const session = new LlamaChatSession({ contextSequence: sequence, ...(system !== undefined && { systemPrompt: system }) });
    const tokens: Token[] = [];
    let text = '';
    await session.prompt(user, { ...options, repeatPenalty: false, onToken: (t) => tokens.push(...t), onTextChunk: (chunk) => (text += chunk) });
    const evaluated = model.detokenize(sequence.contextTokens, true);
    return { text, tokens, evaluated, wrapper: session.chatWrapper.wrapperName };
  } finally {
    await context.dispose();
  }
}

export async function directCompletion(model: LlamaModel, threads: number, prompt: string, options: DirectOptions & { customStopTriggers?: string[] }) {
  const context = await model.createContext({ threads });
  try {
    let text = '';
    await new LlamaCompletion({ contextSequence: context.getSequence() }).generateCompletion(prompt, { ...options, repeatPenalty: false, onTextChunk: (chunk) => (text += chunk) });
    return text;
  } finally {
    await context.dispose();
  }
}
