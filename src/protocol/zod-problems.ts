/**
 * zod's issues as the sentences GoGrid's errors carry: `path: message`, the
 * path dotted as the value is written (`inputs.x.data.0`).
 *
 *   throw new GridError('GG_ERR_BAD_REQUEST', firstZodProblem(result.error, [], '(body)'));  // "minutes: Too big: …"
 *   const lines = zodProblems(parsed.error).map((p) => `${file}: ${p.path}: ${p.message}`);   // every problem of a file
 *
 * Not z.prettifyError: it writes each issue on two lines (`✖ Too big…`, then
 * `→ at inputs.x.data[0]`), a root issue with no path at all, and has no place
 * for the file or field a problem is under, while these sentences go into
 * one-line errors (wire frames, HTTP bodies, log lines) and, in a file's
 * errors, start with the file's name.
 */
import type { z } from 'zod';

export interface ZodProblem {
  /** Dotted, under the given prefix; '' for the value itself. */
  path: string;
  message: string;
}

/** Every problem, each unknown key its own (`server.workers`, "unknown key"), so a file's author can fix them all in one go. */
export function zodProblems(error: z.ZodError, under: readonly PropertyKey[] = []): ZodProblem[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: dotted([...under, ...issue.path, key]), message: 'unknown key' }))
      : [{ path: dotted([...under, ...issue.path]), message: issue.message }],
  );
}

/** The first problem as `path: message`, `root` naming an empty path: what a one-line error has room for. */
export function firstZodProblem(error: z.ZodError, under: readonly PropertyKey[] = [], root = '(root)'): string {
  const issue = error.issues[0];
  return `${dotted([...under, ...(issue?.path ?? [])]) || root}: ${issue?.message ?? 'invalid'}`;
}

function dotted(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}
