/**
 * `submit --batch`'s pure steps (cli/batch.ts): reading the lines, checking
 * them against the API's schema, chunking, and what it prints at the end.
 * The command end to end: test/integration/cli-batch.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GridError, MAX_SUBMIT_BATCH, type JobInfo, type SubmitJobRequest } from '../../src/protocol/index.js';
import { batchSummary, BatchProblems, chunksOf, failedNote, parseBatchLines, requestsOf } from '../../src/cli/batch.js';
import { hostileJson, hostileString } from '../helpers/hostile.js';

const SHA = 'a'.repeat(64);
const defaults = { model: 'mlp', fields: { kind: 'onnx', priority: 0, maxAttempts: 3, timeoutMs: 60_000, requirements: {} } };

function problems(text: string, d: Parameters<typeof parseBatchLines>[2] = defaults): { line: number; problem: string }[] {
  try {
    parseBatchLines(text, 'jobs.jsonl', d);
  } catch (e) {
    if (e instanceof BatchProblems) return e.problems;
    throw e;
  }
  return [];
}

describe('parseBatchLines', () => {
  it('reads one job per line, blank lines skipped but counted, the flags under each line', () => {
    const lines = parseBatchLines(['{"input": 1}', '', '{"input": 2, "model": "other", "priority": 7}', '{"model": {"sha256": "' + SHA + '"}, "input": 3}'].join('\n'), 'jobs.jsonl', defaults);
    expect(lines).toEqual([
      { line: 1, model: 'mlp', fields: { ...defaults.fields, input: 1 } },
      { line: 3, model: 'other', fields: { ...defaults.fields, input: 2, priority: 7 } },
      { line: 4, model: SHA, fields: { ...defaults.fields, input: 3 } },
    ]);
  });

  it('names every bad line with its number and what is wrong', () => {
    const text = ['{"input": 1}', 'not json', '[1, 2]', '{"input": 1, "prority": 3}', '{"model": 5, "input": 1}', '"x"', '{"input": 1}'].join('\n');
    const found = problems(text);
    expect(found.map((p) => p.line)).toEqual([2, 3, 4, 5, 6]);
    expect(found[0]!.problem).toMatch(/^not JSON/);
    expect(found[1]!.problem).toMatch(/^not a JSON object: one job per line/);
    expect(found[2]!.problem).toMatch(/^unknown field "prority" \(a job line has kind, model, input, requirements, timeoutMs, queueTimeoutMs, maxAttempts, priority\)$/);
    expect(found[3]!.problem).toMatch(/^model: /);
    expect(() => parseBatchLines(text, 'jobs.jsonl', defaults)).toThrow(/jobs\.jsonl: 5 of 7 lines cannot be submitted \(listed above\); nothing was queued/);
  });

  it('wants a model on each line when no --model is given, and at least one job', () => {
    expect(problems('{"input": 1}', { fields: {} })).toEqual([{ line: 1, problem: 'model: required (on the line, or --model for every line)' }]);
    expect(problems('\n\n', defaults)).toEqual([{ line: 0, problem: 'no jobs: the file is empty' }]);
  });

  it('refuses any hostile line with BatchProblems, never another error; unknown names printed without control characters', () => {
    const hostileLine = fc.oneof(hostileString, hostileJson.map((v) => JSON.stringify(v) ?? 'undefined'), fc.dictionary(hostileString, hostileJson, { maxKeys: 3 }).map((o) => JSON.stringify(o)));
    fc.assert(
      fc.property(hostileLine, (line) => {
        for (const p of problems(line.replace(/[\r\n]/g, ' '))) {
          // eslint-disable-next-line no-control-regex
          expect(p.problem).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\u202a-\u202e\u2066-\u2069]/);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('requestsOf', () => {
  it("checks each line's fields against the API's schema once the models are known, naming the line", () => {
    const lines = parseBatchLines(['{"input": 1}', '{"input": 1, "priority": 5000}', '{"input": 1, "model": "gone"}', '{"timeoutMs": 5}'].join('\n'), 'jobs.jsonl', defaults);
    try {
      requestsOf(lines, new Map([['mlp', SHA]]), 'jobs.jsonl');
      expect.fail('no problems found');
    } catch (e) {
      expect(e).toBeInstanceOf(BatchProblems);
      expect((e as BatchProblems).problems).toEqual([
        { line: 2, problem: expect.stringMatching(/^priority: /) },
        { line: 3, problem: expect.stringMatching(/^model\.sha256: /) },
        { line: 4, problem: 'input: required' },
      ]);
    }
    expect(requestsOf(lines.slice(0, 1), new Map([['mlp', SHA]]), 'f')).toEqual([expect.objectContaining({ model: { sha256: SHA }, input: 1, kind: 'onnx' })]);
  });
});

describe('chunksOf', () => {
  const job = (pad = 0) => ({ kind: 'onnx', model: { sha256: SHA }, input: 'x'.repeat(pad), requirements: {}, timeoutMs: 1, maxAttempts: 1, priority: 0 }) as SubmitJobRequest;

  it('keeps the order, at most MAX_SUBMIT_BATCH jobs and about maxBytes of JSON each; a larger job goes alone', () => {
    const many = Array.from({ length: 2 * MAX_SUBMIT_BATCH + 1 }, () => job());
    expect(chunksOf(many).map((c) => c.length)).toEqual([MAX_SUBMIT_BATCH, MAX_SUBMIT_BATCH, 1]);
    const big = [job(10), job(600), job(10), job(2000), job(10)];
    expect(chunksOf(big, 1000).map((c) => c.map((r) => (r.input as string).length))).toEqual([[10, 600], [10], [2000], [10]]);
    expect(chunksOf(big, 1000).flat()).toEqual(big);
  });
});

describe('what it prints', () => {
  const done = (state: JobInfo['state'], ms: number, error: JobInfo['error'] = null) =>
    ({ id: `j-${state}-${ms}`, state, startedAt: '2026-12-08T00:00:00.000Z', finishedAt: new Date(Date.parse('2026-12-08T00:00:00.000Z') + ms).toISOString(), error }) as JobInfo;

  it("progress: how many failed or were canceled, beside the bar's n of N", () => {
    expect(failedNote({ total: 200, succeeded: 10, failed: 0, canceled: 0 })).toBe('');
    expect(failedNote({ total: 200, succeeded: 10, failed: 2, canceled: 1 })).toBe('2 failed, 1 canceled');
  });

  it('summary: counts, p50 and p95 of the run times, and each job that did not succeed with its line', () => {
    const jobs = [...Array.from({ length: 19 }, (_, i) => done('succeeded', (i + 1) * 1000)), done('failed', 5, { code: 'GG_ERR_INPUT_INVALID', message: 'input "x": missing\u001b[2J' })];
    const text = batchSummary(jobs, jobs.map((_, i) => i + 3));
    expect(text).toBe(
      '20 jobs: 19 succeeded, 1 failed, 0 canceled; run time p50 10 s, p95 19 s\n' + '  line 22 (j-failed-5): failed: GG_ERR_INPUT_INVALID: input "x": missing\\u{1b}[2J\n',
    );
  });

  it('the error of a refused file is one GG_ERR_BAD_REQUEST line', () => {
    const e = new BatchProblems('jobs.jsonl', [{ line: 3, problem: 'x' }], 10);
    expect(e).toBeInstanceOf(GridError);
    expect(e.code).toBe('GG_ERR_BAD_REQUEST');
    expect(e.message).not.toContain('\n');
  });
});
