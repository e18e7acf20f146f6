/**
 * The OpenAI-compatible API (issue #13): each request is an `llm` job on the
 * grid, so the scheduler, leases, retries and the workers' policy apply.
 *
 *   POST /v1/chat/completions   ChatCompletionRequest → ChatCompletion, or server-sent chunks with `stream`
 *   POST /v1/completions        CompletionRequest → Completion, or chunks
 *   POST /v1/embeddings         EmbeddingRequest → EmbeddingList
 *
 * Errors answer in OpenAI's shape (the coordinator's error body carries its
 * fields): an unknown model 404, a bad body 400, no worker that can serve
 * the model 503 with the reason.
 *
 * A stream relays the text as the worker produces it (job.partial frames,
 * gathered by the worker every 25 ms), then the finish reason and usage.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, GridError, LlmEmbeddingOutput, LlmJobOutput, TERMINAL_JOB_STATES, type ErrorCode, type ModelInfo } from '../protocol/index.js';
import { ChatCompletionRequest, CompletionRequest, EmbeddingRequest, type FinishReason, type Usage } from '../protocol/openai.js';
import type { LlmJobInput } from '../protocol/llm.js';
import { errorPayload, parseBody, withOpenAiFields } from '../common/http-errors.js';
import type { Dispatcher } from './dispatcher.js';
import type { Db } from './store/db.js';
import { forgetJobText, getJob, jobOutput, type JobRow } from './store/index.js';
import { chatCompletion, chatJobInput, completion, completionJobInput, embeddingJobInput, embeddingList, usage, type AnswerIds } from './openai.js';

export interface OpenAiRouteDeps {
  db: Db;
  dispatcher: Dispatcher;
  /** Keep the prompt and the answer in the database after the answer went out (`[llm] keep_text`). */
  keepText: boolean;
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

  app.post('/v1/embeddings', async (req, reply) => {
    const body = parseBody(EmbeddingRequest, req.body);
    const row = await submit(body.model, embeddingJobInput(body));
    const gone = hangUp(reply).signal;
    try {
      const done = await finished(row.id, gone);
      if (!done) {
        await deps.dispatcher.cancel(row.id);
        return reply.hijack();
      }
      if (done.state !== 'succeeded') throw failure(done);
      return embeddingList(body.model, LlmEmbeddingOutput.parse(await jobOutput(deps.db, done)), body.encoding_format ?? 'float');
    } finally {
      await forget(req, row.id);
    }
  });

  /** Queues the request as an `llm` job on the model it names, if a connected worker can run it. */
  async function submit(name: string, input: LlmJobInput): Promise<JobRow> {
    const model = await deps.modelNamed(name);
    if (!model) throw new GridError('GG_ERR_MODEL_NOT_FOUND', `the model '${name}' does not exist; GET /v1/models lists the names`);
    if (model.format !== 'gguf') throw new GridError('GG_ERR_MODEL_UNSUPPORTED', `the model '${name}' is ${model.format ?? 'not'} a GGUF model; an llm request needs one`);
    const job = { kind: 'llm', model: { sha256: model.sha256, size: model.size }, requirements: {} };
    const why = deps.dispatcher.whyUnservable({ id: '', ...job });
    if (why) throw new GridError('GG_ERR_NO_WORKER_AVAILABLE', `model '${name}' cannot run now: ${why}`);
    return deps.dispatcher.submit(
      { ...job, model: { sha256: model.sha256 }, input, timeoutMs: LLM_JOB_TIMEOUT_MS, maxAttempts: LLM_JOB_ATTEMPTS, priority: 0 },
      { sha256: model.sha256, size: model.size, name: model.name },
      { forgetText: !deps.keepText },
    );
  }

  /** Aborted when the client hangs up before its answer was sent: it wants nothing more. */
  function hangUp(reply: FastifyReply): AbortController {
    const gone = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) gone.abort();
    });
    return gone;
  }

  /** The answer went out (or nobody waits for it): the prompt and the text go, the counts stay. */
  async function forget(req: FastifyRequest, jobId: string): Promise<void> {
    if (deps.keepText) return;
    await forgetJobText(deps.db, { ids: [jobId] }).catch((err: unknown) => req.log.error({ err, jobId }, 'could not forget a request’s text; the next sweep will'));
  }

  async function answer(
    req: FastifyRequest,
    reply: FastifyReply,
    r: { model: string; input: LlmJobInput; stream: boolean; includeUsage: boolean; chat: boolean },
  ): Promise<unknown> {
    const row = await submit(r.model, r.input);
    // A client that hangs up wants nothing more: the job is canceled, and its worker told to stop.
    const gone = hangUp(reply);
    const ids: AnswerIds = { id: row.id, model: r.model, created: Math.floor(row.submittedAt.getTime() / 1000) };
    const stream = r.stream ? new EventStream(reply, ids, r.chat) : null;
    const unsubscribe = stream
      ? deps.dispatcher.onPartial(row.id, (offset, text) => {
          // The client has text this attempt did not produce: nothing after it would fit. The job stops.
          if (!stream.text(offset, text)) gone.abort();
        })
      : () => undefined;
    try {
      const done = await finished(row.id, gone.signal);
      if (!done) {
        await deps.dispatcher.cancel(row.id);
        req.log.info({ jobId: row.id }, 'client went away; its llm job was canceled');
        return reply.hijack();
      }
      if (done.state !== 'succeeded') {
        if (!stream) throw failure(done);
        stream.fail(failure(done));
        return reply;
      }
      const out = LlmJobOutput.parse(await jobOutput(deps.db, done));
      if (!stream) return r.chat ? chatCompletion(ids, out) : completion(ids, out);
      if (stream.text(0, out.text)) stream.finish(out.finishReason, usage(out), r.includeUsage);
      return reply;
    } finally {
      unsubscribe();
      await forget(req, row.id);
    }
  }

  /** Why a job that did not succeed failed, as the error the client gets. */
  function failure(done: JobRow): GridError {
    const error = done.error ?? { code: 'GG_ERR_INTERNAL', message: `the job ended ${done.state}` };
    return new GridError(Object.hasOwn(ERROR_CODES, error.code) ? (error.code as ErrorCode) : 'GG_ERR_INTERNAL', `job ${done.id}: ${error.message}`);
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

/**
 * An answer as server-sent events in OpenAI's chunk format, ended by
 * `[DONE]`: the text as the worker produces it, then the finish reason and
 * the usage. The headers go out at once, so later errors are sent as an
 * `error` event, as OpenAI's server does.
 */
class EventStream {
  /** The text the client has. */
  private sent = '';
  private ended = false;
  private readonly object: string;

  constructor(
    private readonly reply: FastifyReply,
    private readonly ids: AnswerIds,
    private readonly chat: boolean,
  ) {
    this.object = chat ? 'chat.completion.chunk' : 'text_completion';
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    // The client learns at once that its request was taken, not when the first text comes.
    reply.raw.flushHeaders();
  }

  /**
   * Output from `offset` of the attempt's text; only what the client lacks is
   * sent. A repeated attempt starts again at 0, with what the lost one
   * streamed (it continues from it). False, and the stream ended with
   * GG_ERR_STREAM_BROKEN, when the text disagrees with what the client has:
   * an attempt that could not continue (it started over and sampled another
   * text) must not be spliced into the answer.
   */
  text(offset: number, text: string): boolean {
    if (this.ended) return false;
    // A piece after a gap (pieces come in order, so only of another attempt): the rest comes with the result.
    if (offset > this.sent.length) return true;
    const overlap = Math.min(this.sent.length - offset, text.length);
    if (text.slice(0, overlap) !== this.sent.slice(offset, offset + overlap)) {
      this.fail(new GridError('GG_ERR_STREAM_BROKEN', `job ${this.ids.id}: the worker streaming this answer was lost, and the next attempt could not continue where it stopped`));
      return false;
    }
    const fresh = text.slice(overlap);
    if (fresh === '') return true;
    const first = this.sent === '';
    this.sent += fresh;
    this.event({ choices: [this.choice(fresh, null, first)] });
    return true;
  }

  /** Ends the stream after all of the text was sent (`text(0, whole)`). */
  finish(finishReason: FinishReason, used: Usage, includeUsage: boolean): void {
    // The last chunk with a choice carries the usage too, for clients that do not ask for a usage chunk.
    this.event({ choices: [this.choice(null, finishReason, false)], usage: includeUsage ? null : used });
    if (includeUsage) this.event({ choices: [], usage: used });
    this.end();
  }

  fail(error: GridError): void {
    if (this.ended) return;
    this.reply.raw.write(`data: ${JSON.stringify(withOpenAiFields(errorPayload(error.code, error.message), error.status))}\n\n`);
    this.end();
  }

  private choice(content: string | null, finishReason: FinishReason | null, first: boolean) {
    if (!this.chat) return { index: 0, text: content ?? '', finish_reason: finishReason, logprobs: null };
    const delta = content === null ? {} : { ...(first ? { role: 'assistant' } : {}), content };
    return { index: 0, delta, finish_reason: finishReason, logprobs: null };
  }

  private event(fields: Record<string, unknown>): void {
    this.reply.raw.write(`data: ${JSON.stringify({ ...this.ids, object: this.object, ...fields })}\n\n`);
  }

  private end(): void {
    this.ended = true;
    this.reply.raw.end('data: [DONE]\n\n');
  }
}
