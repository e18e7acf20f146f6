/**
 * `gogrid submit --batch FILE`: one job per line of a JSON Lines file, each
 * line the body of a single `POST /v1/jobs` (protocol/api.ts's
 * SubmitJobRequest) whose `model` may also be what `--model` takes (a name,
 * alias, sha256 or file). Fields a line leaves out come from the command's
 * flags. Every line is checked, and every bad one named with its line
 * number, before anything is queued; then the jobs go in chunks through the
 * batch API, each chunk with an Idempotency-Key of its own.
 *
 *   const lines = parseBatchLines(text, 'jobs.jsonl', defaults);   // pure; BatchProblems when bad
 *   const jobs = await queueBatch(api, lines, key, note);
 *   const done = await waitForBatch(api, jobs, onProgress);
 *   process.stderr.write(batchSummary(done));
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { firstZodProblem } from '../protocol/zod-problems.js';
import { GridError, JobInfo, MAX_SUBMIT_BATCH, SubmitJobRequest, SubmitJobsResponse, TERMINAL_JOB_STATES, printable } from '../protocol/index.js';
import type { AdminClient } from './admin-client.js';
import { formatDuration } from './duration.js';

/** A line as read: its number (1-based), the model as written, the rest of its request. */
export interface BatchLine {
  line: number;
  model: string;
  fields: Record<string, unknown>;
}

/** Bad lines, each with its number and what is wrong: nothing was queued. */
export class BatchProblems extends GridError {
  constructor(
    readonly file: string,
    readonly problems: { line: number; problem: string }[],
    total: number,
  ) {
    super('GG_ERR_BAD_REQUEST', `${file}: ${problems.length} of ${total} line${total === 1 ? '' : 's'} cannot be submitted (listed above); nothing was queued`);
  }
}

/** What a line may hold: a single submit's fields. */
const FIELDS = Object.keys(SubmitJobRequest.shape);

const LineShape = z.looseObject({ model: z.union([z.string().min(1).max(4096), z.object({ sha256: z.string() })]).optional() });

/**
 * The lines of `text`, blank ones skipped (their numbers still count),
 * `defaults` under each (the command's flags: kind, timeoutMs, …, and the
 * model of --model). Throws BatchProblems listing every line that is not a
 * JSON object with a model; what the fields hold is checked once the models
 * are known (`requestsOf`).
 */
export function parseBatchLines(text: string, file: string, defaults: { model?: string; fields: Record<string, unknown> }): BatchLine[] {
  const lines: BatchLine[] = [];
  const problems: { line: number; problem: string }[] = [];
  const rows = text.split(/\r?\n/);
  rows.forEach((row, i) => {
    const line = i + 1;
    if (row.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(row);
    } catch (e) {
      problems.push({ line, problem: `not JSON (${(e as Error).message})` });
      return;
    }
    const shape = LineShape.safeParse(value);
    if (!shape.success) {
      problems.push({ line, problem: typeof value !== 'object' || value === null || Array.isArray(value) ? 'not a JSON object: one job per line, {"model": …, "input": …}' : firstZodProblem(shape.error) });
      return;
    }
    const { model, ...fields } = shape.data;
    // The API drops fields it does not know; in a file a person wrote, one is a typo that must not go unnoticed.
    const unknown = Object.keys(fields).filter((k) => !FIELDS.includes(k));
    if (unknown.length > 0) {
      problems.push({ line, problem: `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(printable(k.slice(0, 64)))).join(', ')} (a job line has ${FIELDS.join(', ')})` });
      return;
    }
    const named = typeof model === 'object' ? model.sha256 : (model ?? defaults.model);
    if (named === undefined) {
      problems.push({ line, problem: 'model: required (on the line, or --model for every line)' });
      return;
    }
    lines.push({ line, model: named, fields: { ...defaults.fields, ...fields } });
  });
  if (lines.length === 0 && problems.length === 0) problems.push({ line: 0, problem: 'no jobs: the file is empty' });
  // A parser's message quotes the line: what it quotes must not reach a terminal raw.
  if (problems.length > 0) throw new BatchProblems(file, problems.map((p) => ({ ...p, problem: printable(p.problem) })), rows.filter((r) => r.trim() !== '').length);
  return lines;
}

/** Each line's request with its model's sha256 (`shas`: model as written → sha256), checked against the API's schema. */
export function requestsOf(lines: BatchLine[], shas: ReadonlyMap<string, string>, file: string): SubmitJobRequest[] {
  const problems: { line: number; problem: string }[] = [];
  const requests: SubmitJobRequest[] = [];
  for (const l of lines) {
    const parsed = SubmitJobRequest.safeParse({ ...l.fields, model: { sha256: shas.get(l.model) } });
    if (parsed.success) requests.push(parsed.data);
    else problems.push({ line: l.line, problem: firstZodProblem(parsed.error) });
  }
  if (problems.length > 0) throw new BatchProblems(file, problems, lines.length);
  return requests;
}

/**
 * Chunks of at most MAX_SUBMIT_BATCH jobs and about `maxBytes` of JSON (the
 * API's body limit is 1 MiB past the largest payload; a job larger than that
 * goes alone).
 */
export function chunksOf(requests: SubmitJobRequest[], maxBytes = 768 * 1024): SubmitJobRequest[][] {
  const chunks: SubmitJobRequest[][] = [];
  let current: SubmitJobRequest[] = [];
  let bytes = 0;
  for (const r of requests) {
    const size = JSON.stringify(r).length;
    if (current.length > 0 && (current.length >= MAX_SUBMIT_BATCH || bytes + size > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(r);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * Queues the chunks in order. A retried chunk (a lost answer) is not queued
 * twice: each carries `${key}.${index}` as its Idempotency-Key. A chunk that
 * fails stops the rest, and the error says how many jobs were queued before it.
 */
export async function queueBatch(api: AdminClient, requests: SubmitJobRequest[], key: string, note: (line: string) => void): Promise<JobInfo[]> {
  const jobs: JobInfo[] = [];
  for (const [i, chunk] of chunksOf(requests).entries()) {
    try {
      const answer = await api.postOnce('/v1/jobs', SubmitJobsResponse, { jobs: chunk }, `${key}.${i}`, note);
      jobs.push(...answer.jobs);
    } catch (e) {
      if (!(e instanceof GridError) || jobs.length === 0) throw e;
      throw new GridError(e.code, `${e.message}; the first ${jobs.length} jobs were queued (${jobs[0]!.id} … ${jobs.at(-1)!.id}), the other ${requests.length - jobs.length} were not`, { cause: e });
    }
  }
  return jobs;
}

/** How many are done, for a progress line. */
export interface BatchProgress {
  total: number;
  succeeded: number;
  failed: number;
  canceled: number;
}

/** Follows every job until each is final, a few requests in flight; `progress` hears every change of the counts. */
export async function waitForBatch(api: AdminClient, jobs: JobInfo[], progress: (p: BatchProgress) => void, pollMs = 1000): Promise<JobInfo[]> {
  const final = new Map<string, JobInfo>();
  let open = jobs.map((j) => j.id);
  let said = '';
  for (;;) {
    const next: string[] = [];
    for (let i = 0; i < open.length; i += 8) {
      const got = await Promise.all(open.slice(i, i + 8).map((id) => api.call('GET', `/v1/jobs/${encodeURIComponent(id)}`, JobInfo)));
      for (const job of got) {
        if (TERMINAL_JOB_STATES.includes(job.state)) final.set(job.id, job);
        else next.push(job.id);
      }
    }
    const count = (state: JobInfo['state']) => [...final.values()].filter((j) => j.state === state).length;
    const p = { total: jobs.length, succeeded: count('succeeded'), failed: count('failed'), canceled: count('canceled') };
    if (JSON.stringify(p) !== said) progress(p);
    said = JSON.stringify(p);
    open = next;
    if (open.length === 0) return jobs.map((j) => final.get(j.id)!);
    await sleep(pollMs);
  }
}

/** "2 failed, 1 canceled", or '' while all went well: the note beside a batch's progress. */
export function failedNote(p: BatchProgress): string {
  return [p.failed && `${p.failed} failed`, p.canceled && `${p.canceled} canceled`].filter(Boolean).join(', ');
}

/** The closing summary: counts, run-time percentiles, and each job that did not succeed with its line. */
export function batchSummary(jobs: JobInfo[], lines: readonly number[]): string {
  const by = (state: JobInfo['state']) => jobs.filter((j) => j.state === state).length;
  const ran = jobs
    .filter((j) => j.state === 'succeeded' && j.startedAt && j.finishedAt)
    .map((j) => Date.parse(j.finishedAt!) - Date.parse(j.startedAt!))
    .sort((a, b) => a - b);
  const pct = (q: number) => ran[Math.min(ran.length - 1, Math.ceil(q * ran.length) - 1)]!;
  const out = [
    `${jobs.length} jobs: ${by('succeeded')} succeeded, ${by('failed')} failed, ${by('canceled')} canceled` +
      (ran.length > 0 ? `; run time p50 ${formatDuration(pct(0.5))}, p95 ${formatDuration(pct(0.95))}` : ''),
  ];
  jobs.forEach((j, i) => {
    if (j.state !== 'succeeded') out.push(`  line ${lines[i]} (${j.id}): ${j.state}${j.error ? `: ${printable(`${j.error.code}: ${j.error.message}`)}` : ''}`);
  });
  return `${out.join('\n')}\n`;
}
