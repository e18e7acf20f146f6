/**
 * The OpenAI-compatible API (issue #13): each request is an `llm` job on the
 * grid, so the scheduler, leases, retries and the workers' policy apply.
 *
 *   POST /v1/chat/completions   ChatCompletionRequest → ChatCompletion, or server-sent chunks with `stream`
 *   POST /v1/completions        CompletionRequest → Completion, or chunks
 *
 * Errors answer in OpenAI's shape (the coordinator's error body carries its
 * fields): an unknown model 404, a bad body 400, no worker that can serve
 * the model 503 with the reason.
 *
 * A stream sends the whole text in one chunk when the job ends: tokens
 * relayed as they are generated are issue #13's item 6.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, GridError, LlmJobOutput, TERMINAL_JOB_STATES, type ErrorCode, type ModelInfo } from '../protocol/index.js';
import { ChatCompletionRequest, CompletionRequest, type FinishReason, type Usage } from '../protocol/openai.js';
import type { LlmJobInput } from '../protocol/llm.js';
import { parseBody } from '../common/http-errors.js';
import type { Dispatcher } from './dispatcher.js';
import type { Db } from './store/db.js';
import { getJob, type JobRow } from './store/index.js';
import { chatCompletion, chatJobInput, completion, completionJobInput, usage, type AnswerIds } from './openai.js';

export interface OpenAiRouteDeps {
  db: Db;
  dispatcher: Dispatcher;
  /** The stored model a client's `model` names (a name, an alias or a sha256), or null. */
  modelNamed(name: string): Promise<ModelInfo | null>;
}

/** How long one request may run on a worker before it fails (and is retried elsewhere). */
const LLM_JOB_TIMEOUT_MS = 10 * 60_000;
const LLM_JOB_ATTEMPTS = 3;

export function registerOpenAiRoutes(app: FastifyInstance, deps: OpenAiRouteDeps): void {
  app.post('/v1/chat/completions', async (req, reply) => {
    const body = parseBody(ChatCompletionRequest, req.body);
    return answer(req, reply, { model: body.model, input: chatJobInput(body), stream: body.stream === true, includeUsage: body.stream_options?.include_usage === true, chat: true });
  });

  app.post('/v1/completions', async (req, reply) => {
    const body = parseBody(CompletionRequest, req.body);
    return answer(req, reply, { model: body.model, input: completionJobInput(body), stream: body.stream === true, includeUsage: body.stream_options?.include_usage === true, chat: false });
  });

  async function answer(
    req: FastifyRequest,
    reply: FastifyReply,
    r: { model: string; input: LlmJobInput; stream: boolean; includeUsage: boolean; chat: boolean },
  ): Promise<unknown> {
    const model = await deps.modelNamed(r.model);
    if (!model) throw new GridError('GG_ERR_MODEL_NOT_FOUND', `the model '${r.model}' does not exist; GET /v1/models lists the names`);
    if (model.format !== 'gguf') throw new GridError('GG_ERR_MODEL_UNSUPPORTED', `the model '${r.model}' is ${model.format ?? 'not'} a GGUF model; text generation needs one`);
    const job = { kind: 'llm', model: { sha256: model.sha256 }, requirements: {} };
    const why = deps.dispatcher.whyUnservable({ id: '', ...job });
    if (why) throw new GridError('GG_ERR_NO_WORKER_AVAILABLE', `model '${r.model}' cannot run now: ${why}`);
    const row = await deps.dispatcher.submit(
      { ...job, input: r.input, timeoutMs: LLM_JOB_TIMEOUT_MS, maxAttempts: LLM_JOB_ATTEMPTS, priority: 0 },
      { sha256: model.sha256, size: model.size, name: model.name },
    );
    // A client that hangs up wants nothing more: the job is canceled, and its worker told to stop.
    const gone = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) gone.abort();
    });
    const done = await finished(row.id, gone.signal);
    if (!done) {
      await deps.dispatcher.cancel(row.id);
      req.log.info({ jobId: row.id }, 'client went away; its llm job was canceled');
      return reply.hijack();
    }
    if (done.state !== 'succeeded') {
      const error = done.error ?? { code: 'GG_ERR_INTERNAL', message: `the job ended ${done.state}` };
      throw new GridError(Object.hasOwn(ERROR_CODES, error.code) ? (error.code as ErrorCode) : 'GG_ERR_INTERNAL', `job ${done.id}: ${error.message}`);
    }
    const out = LlmJobOutput.parse(done.output);
    const ids: AnswerIds = { id: done.id, model: r.model, created: Math.floor(done.submittedAt.getTime() / 1000) };
    if (!r.stream) return r.chat ? chatCompletion(ids, out) : completion(ids, out);
    streamWhole(reply, ids, r.chat, out.text, out.finishReason, usage(out), r.includeUsage);
    return reply;
  }

  /** The job once final; null if `signal` aborts first. */
  async function finished(id: string, signal: AbortSignal): Promise<JobRow | null> {
    for (;;) {
      if (signal.aborted) return null;
      const waiting = new AbortController();
      const woken = deps.dispatcher.whenFinished(id, AbortSignal.any([signal, waiting.signal]));
      const row = await getJob(deps.db, id);
      if (row && TERMINAL_JOB_STATES.includes(row.state)) {
        waiting.abort();
        return row;
      }
      await woken;
    }
  }
}

/** Server-sent events in OpenAI's chunk format, ended by `[DONE]`. */
function streamWhole(reply: FastifyReply, ids: AnswerIds, chat: boolean, text: string, finish: FinishReason, used: Usage, includeUsage: boolean): void {
  const object = chat ? 'chat.completion.chunk' : 'text_completion';
  const choice = (content: string | null, finishReason: FinishReason | null) =>
    chat
      ? { index: 0, delta: content === null ? {} : { role: 'assistant', content }, finish_reason: finishReason, logprobs: null }
      : { index: 0, text: content ?? '', finish_reason: finishReason, logprobs: null };
  const chunks = [
    { ...ids, object, choices: [choice(text, null)] },
    // The last chunk with a choice carries the usage too, for clients that do not ask for a usage chunk.
    { ...ids, object, choices: [choice(null, finish)], usage: includeUsage ? null : used },
    ...(includeUsage ? [{ ...ids, object, choices: [], usage: used }] : []),
  ];
  reply.hijack();
  reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
  for (const c of chunks) reply.raw.write(`data: ${JSON.stringify(c)}\n\n`);
  reply.raw.end('data: [DONE]\n\n');
}
