/**
 * How the HTTP API reads bodies and reports failures: every body and query
 * parsed with a shared schema, every failure as `{ error: { code, message } }`
 * with the code's HTTP status.
 */
import type { z } from 'zod';
import { type ERROR_CODES, GridError, isGridError, type ApiErrorBody } from '../protocol/index.js';

/** Parses `value` or throws GG_ERR_BAD_REQUEST naming the first bad field (under `prefix`, if given). */
export function parseBody<T extends z.ZodType>(schema: T, value: unknown, prefix?: string): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = [...(prefix ? [prefix] : []), ...(issue?.path ?? []).map(String)];
  const field = path.length ? path.join('.') : '(body)';
  throw new GridError('GG_ERR_BAD_REQUEST', `${field}: ${issue?.message ?? 'invalid'}`);
}

export function errorPayload(code: keyof typeof ERROR_CODES, message: string): ApiErrorBody {
  return { error: { code, message } };
}

export function toErrorBody(err: unknown): { status: number; payload: ApiErrorBody } {
  if (isGridError(err)) return { status: err.status, payload: errorPayload(err.code, err.message) };
  const statusCode = (err as { statusCode?: unknown }).statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    // fastify's own client errors: bad JSON, body too large, wrong content type.
    return { status: statusCode, payload: errorPayload('GG_ERR_BAD_REQUEST', (err as Error).message) };
  }
  return { status: 500, payload: errorPayload('GG_ERR_INTERNAL', 'internal error; see the coordinator log') };
}
