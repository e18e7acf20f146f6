/** Settings from the environment: a value set but not what the variable takes is a configuration error naming it, never a silent default. */
import { afterEach, describe, expect, it } from 'vitest';
import { booleanEnv, wholeNumberEnv } from '../../src/common/env.js';

const NAME = 'GOGRID_TEST_ENV_SETTING';
afterEach(() => {
  delete process.env[NAME];
});

describe('booleanEnv', () => {
  it.each([
    ['1', true],
    ['true', true],
    [' YES ', true],
    ['0', false],
    ['False', false],
    ['no', false],
    ['', undefined],
  ] as const)('%j is %s', (raw, expected) => {
    process.env[NAME] = raw;
    expect(booleanEnv(NAME)).toBe(expected);
  });

  it('is undefined when unset', () => {
    expect(booleanEnv(NAME)).toBeUndefined();
  });

  it.each(['2', 'on', 'yess', '-1', '1e9', 'tru\u0000e', '\ud800', 'x'.repeat(10_000)])('refuses %j naming the variable', (raw) => {
    process.env[NAME] = raw;
    expect(() => booleanEnv(NAME)).toThrow(expect.objectContaining({ code: 'GG_ERR_CONFIG_INVALID', message: expect.stringContaining(NAME) }));
  });
});

describe('wholeNumberEnv', () => {
  it.each(['-1', '1.5', '1e400', 'NaN', '0x10', '9007199254740993', ' '])('refuses %j naming the variable and the range', (raw) => {
    process.env[NAME] = raw;
    expect(() => wholeNumberEnv(NAME, 0, 2 ** 30, 'MiB')).toThrow(expect.objectContaining({ code: 'GG_ERR_CONFIG_INVALID', message: expect.stringMatching(new RegExp(`${NAME}.*from 0 to`)) }));
  });

  it('takes a whole number in range', () => {
    process.env[NAME] = '512';
    expect(wholeNumberEnv(NAME, 0, 2 ** 30, 'MiB')).toBe(512);
  });
});
