/**
 * What a new user or an attacker sends, as fast-check arbitraries: strings
 * with NUL, lone surrogates, bidi overrides and control characters; numbers at
 * and past every edge; JSON nested deep and wide. The fuzz tests draw every
 * field they fill from here, so a new kind of bad input is added once.
 *
 *   fc.assert(fc.property(hostileString, (s) => …));
 */
import fc from 'fast-check';

/** Characters that broke something once, or are known to break someone. */
const AWKWARD = ['\0', '\ud800', '\udfff', '\u202e', '\u2066', '\u2028', '\x1b[2J', '\r\n', '\x7f', '\x85', '\ufeff', '😀', 'Ω'];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.array(fc.oneof(fc.constantFrom(...AWKWARD), fc.string({ maxLength: 4 })), { maxLength: 8 }).map((parts) => parts.join('')),
  fc.constantFrom('', ' ', 'x'.repeat(300), 'x'.repeat(5000), '../../etc/passwd', '%00', 'null', '{}'),
  // Names every plain object answers to: a lookup by a user's name must not find them.
  fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype'),
);

export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, -1, 2 ** 31, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e308, Number.MAX_VALUE, Number.MIN_VALUE, 0.5, NaN, Infinity, -Infinity),
);

/** Nested `depth` levels of arrays or objects around `leaf`. */
export const nested = (depth: number, leaf: unknown = 0): unknown => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { k: v };
  return v;
};

/** Any JSON value a parser could hand over, strings and numbers hostile, sometimes nested very deep. */
export const hostileJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.letrec((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      hostileString,
      hostileNumber,
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('value'), { maxLength: 4 }),
      fc.dictionary(hostileString, tie('value'), { maxKeys: 4 }),
    ),
  })).value },
  { weight: 1, arbitrary: fc.integer({ min: 60, max: 3000 }).map((d) => nested(d)) },
);

/** `base` with the value at one of its paths (`paths`) replaced by a hostile one. */
export function withHostileField(base: Record<string, unknown>, paths: readonly string[]): fc.Arbitrary<unknown> {
  return fc.tuple(fc.constantFrom(...paths), fc.oneof(hostileString, hostileNumber, hostileJson)).map(([path, value]) => setPath(structuredClone(base), path.split('.'), value));
}

function setPath(target: Record<string, unknown>, path: string[], value: unknown): Record<string, unknown> {
  let o: Record<string, unknown> = target;
  for (const key of path.slice(0, -1)) {
    if (typeof o[key] !== 'object' || o[key] === null) o[key] = {};
    o = o[key] as Record<string, unknown>;
  }
  o[path.at(-1)!] = value;
  return target;
}

/** Every string in `value` (keys too), with its path; nothing below a path `skip` says to leave out. */
export function stringsIn(value: unknown, skip: (path: string) => boolean = () => false): [string, string][] {
  const found: [string, string][] = [];
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (skip(path)) continue;
    if (typeof v === 'string') found.push([path, v]);
    else if (typeof v === 'object' && v !== null) {
      for (const [k, child] of Object.entries(v)) {
        found.push([`${path}.{key}`, k]);
        stack.push([child, path ? `${path}.${k}` : k]);
      }
    }
  }
  return found;
}
