/**
 * How GoGrid's HTTP endpoints (the coordinator's API, the worker's local
 * control endpoint) and the desktop app's IPC read bodies and report
 * failures: every body parsed with a shared schema, every failure
 * `{ error: { code, message } }` with the GG_ERR code's HTTP status.
 *
 *   const action = parseBody(ControlAction, req.body);  // throws GG_ERR_BAD_REQUEST "minutes: Too big…"
 *   answerErrors(app, 'worker');                         // every failure and unknown route, in that shape
 */
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerBase } from 'fastify';
import { z } from 'zod';
import { firstZodProblem, GridError, isGridError, line, printable, type ApiErrorBody, type ErrorCode } from '../protocol/index.js';

/** Parses `value` or throws GG_ERR_BAD_REQUEST naming the first bad field (under `prefix`, if given). */
export function parseBody<T extends z.ZodType>(schema: T, value: unknown, prefix?: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new GridError('GG_ERR_BAD_REQUEST', firstZodProblem(result.error, prefix ? [prefix] : [], '(body)'));
}

export function errorPayload(code: ErrorCode, message: string): ApiErrorBody {
  return { error: { code, message } };
}

/** The coordinator's error body also carries OpenAI's fields, so OpenAI's clients read its errors (issue #13). */
export function withOpenAiFields(body: ApiErrorBody, status: number): ApiErrorBody {
  return { error: { ...body.error, type: openAiErrorType(status), param: null } };
}

/** OpenAI's error `type` for an HTTP status, by which its clients choose their error class. */
function openAiErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** `side` names whose log holds the details of an internal error. */
export function toErrorBody(err: unknown, side: 'coordinator' | 'worker'): { status: number; payload: ApiErrorBody } {
  if (isGridError(err)) return { status: err.status, payload: errorPayload(err.code, err.message) };
  // A full disk (a model upload, a settings file) passes once there is room: say so, not "internal error".
  if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
    return toErrorBody(new GridError('GG_ERR_OUT_OF_RESOURCES', `no space left on the ${side}'s disk; free some and try again`), side);
  }
  const statusCode = (err as { statusCode?: unknown }).statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    // fastify's own client errors: bad JSON, body too large, wrong content type.
    return { status: statusCode, payload: errorPayload('GG_ERR_BAD_REQUEST', (err as Error).message) };
  }
  return { status: 500, payload: errorPayload('GG_ERR_INTERNAL', `internal error; see the ${side} log`) };
}

/** Makes every failure and every unknown route of `app` answer `{ error: { code, message } }` (the coordinator's with OpenAI's fields too); internal errors are logged. */
export function answerErrors<S extends RawServerBase, L extends FastifyBaseLogger>(
  app: FastifyInstance<S, RawRequestDefaultExpression<S>, RawReplyDefaultExpression<S>, L>,
  side: 'coordinator' | 'worker',
): void {
  const shaped = (status: number, payload: ApiErrorBody) => (side === 'coordinator' ? withOpenAiFields(payload, status) : payload);
  app.setErrorHandler((err, req, reply) => {
    const body = toErrorBody(err, side);
    if (body.status >= 500) {
      // An operator's problem (a full disk, a database down) is one line per request; a stack is for bugs.
      if (isGridError(err) && err.code !== 'GG_ERR_INTERNAL') req.log.warn({ code: err.code }, `request failed: ${err.message}`);
      else req.log.error({ err }, 'request failed');
    }
    if (isGridError(err) && err.retryAfterSecs !== undefined) void reply.header('retry-after', String(err.retryAfterSecs));
    void reply.status(body.status).send(shaped(body.status, body.payload));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send(shaped(404, errorPayload('GG_ERR_NOT_FOUND', `no route ${printable(req.method)} ${printable(req.url)}`)));
  });
  // Path parameters are ids, hashes and file names: one line of text each. A NUL (`%00`) once reached PostgreSQL, which answered 500.
  app.addHook('preValidation', async (req) => {
    parseBody(PathParams, req.params ?? {});
  });
}

const PathParams = z.record(z.string(), line(1024));

/**
 * For Fastify's `frameworkErrors` option: what its router refuses before any
 * route runs (a URL that is not valid percent-encoded UTF-8, a parameter over
 * its length limit) answers in the same `{ error: { code, message } }` shape.
 */
export function frameworkErrors(error: FastifyError, _req: unknown, reply: FastifyReply): void {
  void reply.status(400).send(errorPayload('GG_ERR_BAD_REQUEST', printable(error.message)));
}
