import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/protocol/errors.js';

describe('error code registry', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  const rows = new Map(
    [...doc.matchAll(/^\| `(GG_ERR_[A-Z_]+)` \| (\d+) \| (yes|no) \| (.+) \|$/gm)].map((m) => [m[1]!, { status: Number(m[2]), retryable: m[3] === 'yes', summary: m[4]! }]),
  );

  it('documents every code in docs/errors.md with its status, retryability and summary', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(rows.get(code), code).toEqual({ status: info.status, retryable: info.retryable, summary: info.summary });
    }
  });

  it('documents no code the registry lacks', () => {
    expect([...rows.keys()].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });
});
