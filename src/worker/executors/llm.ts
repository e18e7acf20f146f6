/**
 * The LLM executor (`kind: 'llm'`): text generation on a GGUF model with
 * node-llama-cpp (llama.cpp), inside the job process. Like the ONNX executor
 * it imports its runtime in `run` only, and a warm job process keeps its last
 * model loaded, so the next job on it skips the load. It is shared: one
 * process runs up to the worker's slot count of jobs on that model at once,
 * a sequence each, batched together by llama.cpp (one copy of the weights in
 * memory or VRAM; and more tokens per second in all where a decode step is
 * bound by reading the weights, as on a GPU: on this project's 2-core CPU
 * with one thread, two batched streams made no more than one, measured).
 * Greedy text is the same as a run on its own while a job has the model to
 * itself; batched with others it can differ where two tokens nearly tie
 * (llama.cpp's sums depend on the batch: 2 of 12 tiny-model prompts at 4
 * at once, none at 2), as with any batching inference server.
 *
 *   const output = await llmExecutor.run(job, { modelPath, threads: 2, signal, onProgress });
 *   // job.input = { messages: [{ role: 'user', content: 'Hi' }], maxTokens: 32, temperature: 0 }
 *   // output    = { text: '…', finishReason: 'length', usage: { promptTokens: 9, completionTokens: 32 } }
 *
 * A chat is rendered with the model's own chat template (node-llama-cpp
 * resolves a chat wrapper from the GGUF's `tokenizer.chat_template`); a raw
 * `prompt` is given as it is. Temperature 0 is greedy. `threads` is set
 * explicitly: llama.cpp's default is far slower on a machine with few cores.
 *
 * GPU: node-llama-cpp picks the best backend it can load (`gpu: 'auto'`: CUDA
 * or Vulkan on Linux and Windows, Metal on macOS) and offloads as many layers
 * as fit. GOGRID_LLM_GPU in the job process's environment overrides that:
 * `off` for the CPU only, or `cuda`, `vulkan`, `metal` for one backend.
 *
 * Context: each request's sequence holds what the model was trained on, up to
 * GOGRID_LLM_CONTEXT tokens (DEFAULT_CONTEXT_CAP), and less where memory is
 * short (node-llama-cpp sizes it to what fits, leaving GOGRID_LLM_KEEP_FREE_MIB
 * of RAM to the machine's owner). Where not even a small context fits, the
 * job fails with GG_ERR_WORKER_OUT_OF_MEMORY, which the coordinator retries
 * on another worker.
 */
import { createRequire } from 'node:module';
import { setTimeout as delay } from 'node:timers/promises';
import type * as NodeLlamaCpp from 'node-llama-cpp';
import { GridError } from '../../protocol/errors.js';
import { wholeNumberEnv } from '../../common/env.js';
import { LlmJobInput, type LlmEmbeddingOutput, type LlmJobOutput, type LlmMessage } from '../../protocol/llm.js';
import type { ResumeFrom } from '../../protocol/messages.js';
import { firstZodProblem } from '../../protocol/zod-problems.js';
import { SessionCache } from './session-cache.js';
import type { Executor, OutputPiece } from './types.js';

type Lib = typeof NodeLlamaCpp;

/**
 * A loaded model and its context, with a sequence per slot: the process runs
 * up to that many jobs on the model at once (job-pool.ts), each in a sequence
 * of its own, and llama.cpp evaluates their tokens together in one batch.
 */
interface LoadedModel {
  model: NodeLlamaCpp.LlamaModel;
  context: NodeLlamaCpp.LlamaContext;
  /** The model's chat template, resolved once (LlamaChat would resolve it again for every job). */
  chatWrapper: NodeLlamaCpp.ChatWrapper;
  /** The sequences no job holds now, the most recently given back last. */
  free: NodeLlamaCpp.LlamaContextSequence[];
  /** Made at the first `embed` job: a context of its own, which most models never need. */
  embedding?: Promise<NodeLlamaCpp.LlamaEmbeddingContext>;
  release(): Promise<void>;
}

/** One: an LLM's weights are the largest thing a job process holds, and a second model would double them. */
const models = new SessionCache<LoadedModel>(1, { releaseFirst: true });

/**
 * The most tokens a request's context holds unless GOGRID_LLM_CONTEXT says
 * otherwise. Left to node-llama-cpp, the context is what the model was
 * trained on, as far as memory allows: 128 Ki tokens of a Llama 3.1 8B are
 * 16 GiB a slot, the owner's memory taken for prompts nobody sends; and a GGUF
 * claiming 2^27 tokens hung the context's creation (measured: no answer in
 * 2 minutes). 8 Ki is what most chat clients send and 1 GiB a slot at that size.
 */
const DEFAULT_CONTEXT_CAP = 8192;

/** How often a running generation reports how many tokens it has, at most. */
const PROGRESS_EVERY_MS = 1000;

/**
 * node-llama-cpp's prebuilt CPU binary package per platform (its optional
 * dependencies). Installed, the runtime loads there; the GPU variants
 * (`-cuda`, `-vulkan`) come beside it where they exist.
 */
const PREBUILT: Record<string, string> = {
  'linux/x64': '@node-llama-cpp/linux-x64',
  'linux/arm64': '@node-llama-cpp/linux-arm64',
  'linux/arm': '@node-llama-cpp/linux-armv7l',
  'darwin/arm64': '@node-llama-cpp/mac-arm64-metal',
  'darwin/x64': '@node-llama-cpp/mac-x64',
  'win32/x64': '@node-llama-cpp/win-x64',
  'win32/arm64': '@node-llama-cpp/win-arm64',
};

export const llmExecutor: Executor = {
  kind: 'llm',
  shared: true,
  gpuByDefault: true,
  canRun: (hardware) => prebuiltInstalled(`${hardware.os.platform}/${hardware.os.arch}`),

  async run(job, ctx) {
    const input = parseInput(job.input);
    const lib = await import('node-llama-cpp');
    const llama = await runtime(lib, ctx.threads);
    // No GPU backend given: the owner's policy keeps jobs off the GPU now, so no layer goes there
    // (a model loaded onto the GPU earlier is evicted first: the cache holds one).
    const onGpu = ctx.gpuBackends.length > 0;
    const lease = await models.acquire(`${ctx.modelPath}\0${ctx.threads}\0${ctx.slots}\0${onGpu ? 'gpu' : 'cpu'}`, () => {
      ctx.onProgress(0, 'loading model');
      return load(lib, llama, ctx.modelPath, ctx.threads, ctx.slots, onGpu);
    });
    try {
      ctx.signal.throwIfAborted();
      if (input.embed) return await embed(lease.session, input.embed, ctx.threads, ctx.signal);
      // The lost attempt's output is this one's start: the offsets of what streams next continue from it.
      // Not under a grammar, whose state cannot be set to where those tokens left it: such a job starts over.
      const resume = input.format ? undefined : job.resumeFrom;
      if (resume) ctx.onPartial?.(resume);
      const started = Date.now();
      let reported = started;
      const output = await generate(lib, lease.session, input, resume, {
        signal: ctx.signal,
        onPiece: (piece, tokens) => {
          ctx.onPartial?.(piece);
          const now = Date.now();
          if (now - reported < PROGRESS_EVERY_MS) return;
          reported = now;
          // What the status window shows of a running request.
          const rate = Math.round((tokens * 1000) / (now - started));
          ctx.onProgress(input.maxTokens ? tokens / input.maxTokens : 0.5, `${tokens} tokens · ${rate} tokens/s`);
        },
      });
      ctx.onProgress(1, 'done');
      return output;
    } finally {
      lease.release();
    }
  },
};

interface GenerateOptions {
  signal: AbortSignal;
  /** Each piece of text as it is generated, with its tokens, and how many tokens there are so far (the hook for streaming). */
  onPiece?(piece: OutputPiece, tokens: number): void;
}

/**
 * Generates on a loaded model. The sequence keeps what the last job left in
 * it, and node-llama-cpp evaluates only the tokens after the common prefix,
 * so the next turn of a chat skips its history. The text does not depend on
 * it: a job after a shared prefix gave the same tokens as in a fresh process,
 * on the CPU and on lavapipe (Vulkan).
 *
 * `resume` is what a lost attempt already generated (failover): the model
 * continues after its tokens as if it had produced them here, and the output
 * (text, completion tokens, the `maxTokens` budget) counts them as generated.
 * Greedy, the text is what one uninterrupted run gives.
 */
async function generate(lib: Lib, loaded: LoadedModel, input: LlmJobInput, resume: ResumeFrom | undefined, options: GenerateOptions): Promise<LlmJobOutput> {
  const { model, chatWrapper } = loaded;
  const contextSize = loaded.context.contextSize;
  const grammar = input.format ? await grammarFor(model.llama, input.format) : undefined;
  const sampling = {
    ...(grammar && { grammar }),
    temperature: input.temperature,
    topP: input.topP,
    ...(input.seed !== undefined && { seed: input.seed }),
    // OpenAI's semantics, not node-llama-cpp's defaults: no top-k cut (it samples from 40 unless told 0), no repeat penalty, text as generated.
    topK: 0,
    repeatPenalty: false as const,
    trimWhitespaceSuffix: false,
    signal: options.signal,
  };
  let completionTokens = 0;
  let pending: number[] = [];
  /**
   * The text as it was streamed, which is the answer. Not node-llama-cpp's
   * `response`: that is the tokens detokenized at once, and llama.cpp then
   * tidies spaces the way the vocabulary asks (` ' ` became `'`), so a
   * client's streamed text and the answer differed, measured on the tiny
   * model; llama.cpp's own server answers with the pieces too.
   */
  let streamed = '';
  const streaming = {
    onToken: (tokens: NodeLlamaCpp.Token[]) => {
      completionTokens += tokens.length;
      pending.push(...tokens);
    },
    // node-llama-cpp (LlamaChat and LlamaCompletion alike) calls onToken, then onTextChunk with those tokens' text.
    onTextChunk: (text: string) => {
      streamed += text;
      options.onPiece?.({ text, tokens: pending }, completionTokens);
      pending = [];
    },
  };
  // Text tokenized again can split differently from how it was generated: the tokens, where the lost attempt sent them.
  const resumed = (!resume ? [] : (resume.tokens ?? model.tokenize(resume.text, false, 'trimLeadingSpace'))) as NodeLlamaCpp.Token[];
  /** The answer once generation ended, with the resumed text and its tokens counted in. */
  const answer = (promptTokens: number, stopReason: string): LlmJobOutput => ({
    text: (resume?.text ?? '') + streamed,
    finishReason: finishReason(stopReason),
    usage: { promptTokens, completionTokens: resumed.length + completionTokens },
  });
  const complete = async (sequence: NodeLlamaCpp.LlamaContextSequence, tokens: NodeLlamaCpp.Token[], maxTokens: number, stopTriggers: readonly (NodeLlamaCpp.LlamaText | string)[]) => {
    const completion = new lib.LlamaCompletion({ contextSequence: sequence });
    try {
      const customStopTriggers = [...stopTriggers, ...(input.stop ?? [])];
      // contextShiftSize 0: otherwise LlamaCompletion keeps only the last contextSize − shift tokens of its
      // input (a tenth of the context), cutting a prompt that fits from the front without a word.
      const whole = { disableContextShift: true, contextShiftSize: 0 };
      return await completion.generateCompletionWithMeta(tokens, { ...sampling, ...streaming, maxTokens, ...whole, ...(customStopTriggers.length > 0 && { customStopTriggers }) });
    } finally {
      completion.dispose();
    }
  };

  if (input.messages) {
    const history = chatHistory(input.messages);
    const state = chatWrapper.generateContextState({ chatHistory: history });
    const prompt = state.contextText.tokenize(model.tokenizer);
    const maxTokens = budget(prompt.length, resumed.length, input.maxTokens, contextSize);
    if (maxTokens === 0) return answer(prompt.length, 'maxTokens');
    return withSequence(loaded, prompt, async (sequence) => {
      if (!resume) {
        const chat = new lib.LlamaChat({ contextSequence: sequence, chatWrapper });
        try {
          const res = await chat.generateResponse(history, { ...sampling, ...streaming, maxTokens, ...(input.stop && { customStopTriggers: input.stop }) });
          return answer(prompt.length, res.metadata.stopReason);
        } finally {
          chat.dispose();
        }
      }
      // LlamaChat takes a model turn as text only: the rendered chat and the resumed tokens go to
      // LlamaCompletion, which ends where LlamaChat would (the template's stop triggers) and, for
      // a model that wants one, puts the BOS first itself.
      const body = model.tokens.shouldPrependBosToken && prompt[0] === model.tokens.bos ? prompt.slice(1) : prompt;
      await replay(sequence, prompt, resumed);
      const res = await complete(sequence, [...body, ...resumed], maxTokens, state.stopGenerationTriggers);
      return answer(prompt.length, res.metadata.stopReason);
    });
  }

  // A raw prompt: tokenized here, so the count is what is evaluated (llama.cpp's BOS, where the model wants one, comes on top).
  const bos = model.tokens.shouldPrependBosToken;
  const bosToken = model.tokens.bos;
  const prompt = model.tokenize(input.prompt!, false, bos ? 'trimLeadingSpace' : undefined);
  const evaluated = bos && bosToken !== null ? [bosToken, ...prompt] : prompt;
  const maxTokens = budget(evaluated.length, resumed.length, input.maxTokens, contextSize);
  if (maxTokens === 0) return answer(evaluated.length, 'maxTokens');
  return withSequence(loaded, evaluated, async (sequence) => {
    if (resume) await replay(sequence, evaluated, resumed);
    const res = await complete(sequence, [...prompt, ...resumed], maxTokens, []);
    return answer(evaluated.length, res.metadata.stopReason);
  });
}

/**
 * Runs `use` on a sequence no other job holds: the one whose history shares
 * the longest start with `prompt` (node-llama-cpp evaluates only the tokens
 * after it, so the next turn of a chat skips its history), the most recently
 * used among equals.
 */
async function withSequence<T>(loaded: LoadedModel, prompt: readonly NodeLlamaCpp.Token[], use: (sequence: NodeLlamaCpp.LlamaContextSequence) => Promise<T>): Promise<T> {
  let best = -1;
  let bestShared = -1;
  for (const [i, sequence] of loaded.free.entries()) {
    const shared = sharedPrefix(sequence.contextTokens, prompt);
    if (shared >= bestShared) [best, bestShared] = [i, shared];
  }
  // The pool gives a process no more jobs than it has slots, and each slot has its sequence.
  if (best < 0) throw new Error(`no free sequence: more jobs than the ${loaded.context.totalSequences} slots the model was loaded for`);
  const [sequence] = loaded.free.splice(best, 1);
  try {
    return await use(sequence!);
  } finally {
    loaded.free.push(sequence!);
  }
}

function sharedPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** A vector per text, from the model's own embedding context (llama.cpp pools the last layer). */
async function embed(loaded: LoadedModel, texts: readonly string[], threads: number, signal: AbortSignal): Promise<LlmEmbeddingOutput> {
  loaded.embedding ??= loaded.model.createEmbeddingContext({ threads });
  const context = await loaded.embedding.catch((e: unknown) => {
    loaded.embedding = undefined;
    throw new GridError('GG_ERR_MODEL_UNSUPPORTED', `llama.cpp could not make an embedding context for the model: ${errorMessage(e)}`, { cause: e });
  });
  let promptTokens = 0;
  const embeddings: number[][] = [];
  for (const [i, text] of texts.entries()) {
    signal.throwIfAborted();
    const tokens = loaded.model.tokenize(text);
    promptTokens += tokens.length;
    const embedding = await context.getEmbeddingFor(tokens).catch((e: unknown) => {
      // Too long for the context is the one way a text can fail here.
      throw new GridError('GG_ERR_INPUT_INVALID', `embed.${i}: the text is ${tokens.length} tokens: ${errorMessage(e)}`, { cause: e });
    });
    embeddings.push([...embedding.vector]);
  }
  return { embeddings, usage: { promptTokens } };
}

/**
 * Puts the prompt and a lost attempt's tokens into the sequence as that
 * attempt had them: the prompt in one evaluation, each generated token on its
 * own. llama.cpp's sums depend on how many tokens one evaluation takes, and a
 * near-tie between two tokens can go either way: the tiny model, resumed with
 * the tokens evaluated together, went on differently at 24 of 40 cut points;
 * one by one, at none. LlamaCompletion then finds them all in place and
 * evaluates nothing again. Slower than one evaluation (generation speed, not
 * prompt speed), so a long resume lengthens the failover gap.
 */
async function replay(sequence: NodeLlamaCpp.LlamaContextSequence, prompt: NodeLlamaCpp.Token[], resumed: NodeLlamaCpp.Token[]): Promise<void> {
  await sequence.clearHistory();
  await sequence.evaluateWithoutGeneratingNewTokens(prompt);
  for (const token of resumed) await sequence.evaluateWithoutGeneratingNewTokens([token]);
}

/** The grammar that holds the text to JSON, or to a JSON Schema; a schema node-llama-cpp cannot turn into one is the input's fault. */
async function grammarFor(llama: NodeLlamaCpp.Llama, format: NonNullable<LlmJobInput['format']>): Promise<NodeLlamaCpp.LlamaGrammar> {
  if (format.type === 'json') return llama.getGrammarFor('json');
  try {
    return await llama.createGrammarForJsonSchema(format.schema as Parameters<NodeLlamaCpp.Llama['createGrammarForJsonSchema']>[0]);
  } catch (e) {
    throw new GridError('GG_ERR_INPUT_INVALID', `format.schema: node-llama-cpp cannot make a grammar of this JSON Schema: ${errorMessage(e)}`, { cause: e });
  }
}

/**
 * How many tokens the generation may take: what was asked, less what a lost
 * attempt already generated, within what the context has left; 0 when
 * nothing is left. A prompt that fills the context is refused rather than
 * cut: node-llama-cpp would otherwise drop its start (context shift) and
 * answer a question that was not asked.
 */
function budget(promptTokens: number, resumedTokens: number, maxTokens: number | undefined, contextSize: number): number {
  if (promptTokens >= contextSize) {
    const capped = contextSize >= contextCap() ? ` (GOGRID_LLM_CONTEXT on the worker allows ${contextCap()})` : '';
    throw new GridError(
      'GG_ERR_INPUT_INVALID',
      `the prompt is ${promptTokens} tokens, and the model's context here holds ${contextSize}${capped}: no room left to generate (shorten the prompt)`,
    );
  }
  const room = contextSize - promptTokens - resumedTokens;
  const wanted = maxTokens === undefined ? room : maxTokens - resumedTokens;
  return Math.max(0, Math.min(wanted, room));
}

function finishReason(stopReason: string): LlmJobOutput['finishReason'] {
  return stopReason === 'maxTokens' ? 'length' : 'stop';
}

/** OpenAI-style messages as node-llama-cpp's chat history; the model's turn comes last, empty unless the chat ends with one to continue. */
function chatHistory(messages: LlmMessage[]): NodeLlamaCpp.ChatHistoryItem[] {
  const history: NodeLlamaCpp.ChatHistoryItem[] = messages.map((m) => {
    switch (m.role) {
      case 'system':
        return { type: 'system', text: m.content };
      case 'user':
        return { type: 'user', text: m.content };
      case 'assistant':
        return { type: 'model', response: [m.content] };
    }
  });
  if (history.at(-1)?.type !== 'model') history.push({ type: 'model', response: [] });
  return history;
}

let llamaRuntime: Promise<NodeLlamaCpp.Llama> | undefined;
/**
 * llama.cpp's latest error lines. node-llama-cpp's own error for a model that
 * will not load says only "Failed to load model"; the why (a truncated file,
 * an unknown tokenizer) is in llama.cpp's log, so the job's error carries it.
 */
const llamaErrors: string[] = [];
const ERROR_LINES_KEPT = 5;
/** How long a failed load waits for llama.cpp's lines saying why. */
const LOG_GRACE_MS = 250;

/**
 * The process's one llama.cpp runtime: a process loads one binary (CPU, CUDA,
 * Vulkan or Metal), chosen once. Never built or downloaded at run time: the
 * prebuilt binaries from npm, or nothing.
 */
async function runtime(lib: Lib, threads: number): Promise<NodeLlamaCpp.Llama> {
  llamaRuntime ??= lib
    .getLlama({
      gpu: gpuSetting(),
      build: 'never',
      maxThreads: threads,
      ...keepFree(),
      logLevel: lib.LlamaLogLevel.warn,
      logger(level, message) {
        // The job process's stderr goes to the worker's log, prefixed with the job.
        console.error(`[llama.cpp ${level}] ${message}`);
        if (level !== lib.LlamaLogLevel.error) return;
        llamaErrors.push(message.trim());
        llamaErrors.splice(0, llamaErrors.length - ERROR_LINES_KEPT);
      },
    })
    .catch((e: unknown) => {
      llamaRuntime = undefined;
      throw new GridError('GG_ERR_EXECUTOR_UNAVAILABLE', `node-llama-cpp could not load llama.cpp on this machine: ${errorMessage(e)}`, { cause: e });
    });
  const llama = await llamaRuntime;
  llama.maxThreads = threads;
  return llama;
}

/** GOGRID_LLM_GPU as node-llama-cpp's `gpu` option: the job processes' and the start-up probe's (llm-probe.ts) alike. */
export function gpuSetting(): NodeLlamaCpp.LlamaOptions['gpu'] {
  const value = process.env['GOGRID_LLM_GPU'] ?? 'auto';
  if (value === 'off') return false;
  if (value === 'auto' || value === 'cuda' || value === 'vulkan' || value === 'metal') return value;
  throw new GridError('GG_ERR_CONFIG_INVALID', `GOGRID_LLM_GPU is "${value}"; it takes auto, off, cuda, vulkan or metal`);
}

/** GOGRID_LLM_KEEP_FREE_MIB: RAM node-llama-cpp counts as taken when it sizes a context; unset, its own default (a quarter of the RAM, at most 6 GiB; 1 GiB on Linux). */
function keepFree(): Pick<NodeLlamaCpp.LlamaOptions, 'ramPadding'> {
  const mib = wholeNumberEnv('GOGRID_LLM_KEEP_FREE_MIB', 0, 2 ** 30, 'MiB');
  return mib === undefined ? {} : { ramPadding: mib * 2 ** 20 };
}

/** GOGRID_LLM_CONTEXT: the most tokens a request's context may hold on this worker. */
function contextCap(): number {
  return wholeNumberEnv('GOGRID_LLM_CONTEXT', 256, 2 ** 24, 'tokens') ?? DEFAULT_CONTEXT_CAP;
}

async function load(lib: Lib, llama: NodeLlamaCpp.Llama, modelPath: string, threads: number, slots: number, onGpu: boolean): Promise<LoadedModel> {
  const cap = contextCap();
  llamaErrors.length = 0;
  const model = await llama.loadModel({ modelPath, gpuLayers: onGpu ? 'auto' : 0 }).catch(async (e: unknown) => {
    if (e instanceof lib.InsufficientMemoryError) throw outOfMemory(e);
    // llama.cpp's log lines come from its loader thread and may land after the rejection.
    await delay(LOG_GRACE_MS);
    const logged = llamaErrors.length > 0 ? ` (${llamaErrors.join('; ')})` : '';
    throw new GridError('GG_ERR_MODEL_UNSUPPORTED', `llama.cpp could not load the model: ${errorMessage(e)}${logged}`, { cause: e });
  });
  try {
    // Each sequence has a context of its own size: the KV cache grows with the slots.
    const context = await model.createContext({ threads, sequences: slots, contextSize: { max: cap } });
    const loaded: LoadedModel = {
      model,
      context,
      chatWrapper: lib.resolveChatWrapper(model),
      free: Array.from({ length: slots }, () => context.getSequence()),
      async release() {
        await (await loaded.embedding?.catch(() => undefined))?.dispose();
        await context.dispose();
        await model.dispose();
      },
    };
    return loaded;
  } catch (e) {
    await model.dispose();
    if (e instanceof lib.InsufficientMemoryError) throw outOfMemory(e);
    throw new GridError('GG_ERR_MODEL_UNSUPPORTED', `llama.cpp could not create a context for the model: ${errorMessage(e)}`, { cause: e });
  }
}

/** Not this model's fault, nor for good: another worker, or this one later, may have the memory. */
function outOfMemory(e: Error): GridError {
  return new GridError('GG_ERR_WORKER_OUT_OF_MEMORY', `not enough free memory on this worker for the model and a context for it: ${errorMessage(e)}`, { cause: e });
}

function prebuiltInstalled(platform: string): boolean {
  const pkg = PREBUILT[platform];
  if (!pkg) return false;
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

function parseInput(raw: unknown): LlmJobInput {
  const parsed = LlmJobInput.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new GridError('GG_ERR_INPUT_INVALID', `${firstZodProblem(parsed.error, [], 'input')} (expected {"messages": [{"role", "content"}, …]}, {"prompt": TEXT} or {"embed": [TEXT, …]})`);
}

function errorMessage(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).trim();
}
