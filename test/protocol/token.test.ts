import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { displayFingerprint, formatEnrollmentToken, parseEnrollmentToken } from '../../src/protocol/token.js';

const fp = 'ab'.repeat(32);
const good = { id: 'k3x9a2m4', secret: 'A'.repeat(21) + '_', caFingerprint: fp };

describe('enrollment token', () => {
  it("shows a CA fingerprint as the token's last part, so a person can compare the two", () => {
    const text = formatEnrollmentToken(good);
    expect(displayFingerprint(fp)).toBe(`sha256:${text.split('.')[3]}`);
  });

  it('round-trips id, secret and CA fingerprint', () => {
    const text = formatEnrollmentToken(good);
    expect(text).toMatch(/^gg1\.k3x9a2m4\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
    expect(parseEnrollmentToken(` ${text}\n`)).toEqual(good);
  });

  it('writes the fingerprint as Node writes base64url, whatever its bytes', () => {
    for (const bytes of [Buffer.alloc(32), Buffer.alloc(32, 0xff), ...Array.from({ length: 50 }, () => randomBytes(32))]) {
      const caFingerprint = bytes.toString('hex');
      const text = formatEnrollmentToken({ ...good, caFingerprint });
      expect(text.split('.')[3]).toBe(bytes.toString('base64url'));
      expect(parseEnrollmentToken(text).caFingerprint).toBe(caFingerprint);
    }
  });

  it.each([
    ['empty', ''],
    ['wrong prefix', formatEnrollmentToken(good).replace('gg1', 'gg2')],
    ['short id', formatEnrollmentToken(good).replace('k3x9a2m4', 'k3x9')],
    ['upper-case id', formatEnrollmentToken(good).replace('k3x9a2m4', 'K3X9A2M4')],
    ['missing fingerprint', formatEnrollmentToken(good).split('.').slice(0, 3).join('.')],
    ['extra part', `${formatEnrollmentToken(good)}.x`],
    ['bad secret characters', formatEnrollmentToken({ ...good, secret: '!'.repeat(22) })],
  ])('rejects a %s token with GG_ERR_TOKEN_MALFORMED', (_name, text) => {
    expect(() => parseEnrollmentToken(text)).toThrow(expect.objectContaining({ code: 'GG_ERR_TOKEN_MALFORMED' }));
  });
});
