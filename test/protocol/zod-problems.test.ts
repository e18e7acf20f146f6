import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { firstZodProblem, zodProblems } from '../../src/protocol/zod-problems.js';

const File = z.strictObject({
  server: z.strictObject({ port: z.number().int().max(65535), names: z.array(z.string()) }),
});
const error = (value: unknown) => {
  const r = File.safeParse(value);
  if (r.success) throw new Error('expected a failure');
  return r.error;
};

describe('zod problems', () => {
  it('dots the path as the value is written, array indexes included, under a prefix', () => {
    expect(firstZodProblem(error({ server: { port: 1, names: ['a', 2] } }))).toBe('server.names.1: Invalid input: expected string, received number');
    expect(firstZodProblem(error({ server: { port: 1, names: ['a', 2] } }), ['policy'])).toBe('policy.server.names.1: Invalid input: expected string, received number');
  });

  it('names an empty path with the root label', () => {
    expect(firstZodProblem(error(null))).toBe('(root): Invalid input: expected object, received null');
    expect(firstZodProblem(error(null), [], '(body)')).toMatch(/^\(body\): /);
  });

  it('lists every problem, each unknown key on its own', () => {
    expect(zodProblems(error({ server: { port: 70000, names: [], workers: 3, extra: 1 }, metrics: {} }))).toEqual([
      { path: 'server.port', message: 'Too big: expected number to be <=65535' },
      { path: 'server.workers', message: 'unknown key' },
      { path: 'server.extra', message: 'unknown key' },
      { path: 'metrics', message: 'unknown key' },
    ]);
  });

  it('keeps the first unknown-keys issue as zod words it, for one-line errors', () => {
    expect(firstZodProblem(error({ server: { port: 1, names: [] }, x: 1 }))).toBe('(root): Unrecognized key: "x"');
  });
});
