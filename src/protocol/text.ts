/**
 * What text the protocol accepts, defined once: every string a worker, an
 * administrator or a client sends is one of these kinds, and anything else is
 * refused with the field named.
 *
 *   name: line(256)           // a name or label: one line, no control characters
 *   message: prose(4000)      // an error message or reason: may span lines
 *   data: tensorString        // a string tensor element: any Unicode text, NUL included
 *   text: generated(65536)    // text a model generated (an llm's output): the same
 *   input: json()             // a job's JSON: bounded depth, every string well-formed
 *
 * Every kind refuses lone surrogates (half of a UTF-16 pair): they have no
 * UTF-8 form, so they cannot be stored, logged or sent on faithfully. Names
 * and messages also refuse control characters (NUL above all: PostgreSQL's
 * text cannot hold it, and a terminal obeys the others). Tensor strings keep
 * NUL, since fixed-width labels ("cat\0\0\0") are ordinary model output; job
 * JSON is stored as JSON text, where NUL is the escape `\u0000`.
 *
 * Senders that pass on text they did not write (a runtime's error message, a
 * hardware string from the OS) make it acceptable with `cleanText`; printers
 * of text they did not write make it harmless with `printable`.
 */
import { z } from 'zod';

/** A lone surrogate: with the `u` flag, a paired one reads as one astral code point instead. */
const LONE_SURROGATE = /\p{Cs}/u;
/** Control characters (C0, DEL, C1) and the line and paragraph separators. */
const NOT_IN_LINE = /[\p{Cc}\p{Cs}\u2028\u2029]/u;
/** The same, but tab, line feed and carriage return are allowed. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NOT_IN_PROSE = /[\0-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\p{Cs}]/u;
/** How deep job JSON may nest: far beyond a tensor map (4 levels), far below what a recursive reader chokes on. */
export const MAX_JSON_DEPTH = 64;

const codePoint = (ch: string) => `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** Null when `s` is free of `bad`; else a sentence naming the first offending character and where it is. */
function findBad(s: string, bad: RegExp): string | null {
  const m = bad.exec(s);
  if (!m) return null;
  const what = LONE_SURROGATE.test(m[0]) ? `a lone surrogate (${codePoint(m[0])})` : `the control character ${codePoint(m[0])}`;
  return `contains ${what} at offset ${m.index}`;
}

const refused = (bad: RegExp) => (s: string, ctx: z.RefinementCtx) => {
  const problem = findBad(s, bad);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
};

/** One line of text, at most `max` UTF-16 units: names, labels, ids. `trim`: what a person typed, spaces (and a pasted newline) around it dropped first. */
export const line = (max: number, opts: { trim?: boolean } = {}) =>
  (opts.trim ? z.string().trim() : z.string()).max(max).superRefine(refused(NOT_IN_LINE));
/** Text that may span lines (tab, LF and CR allowed), at most `max` units: messages, reasons, descriptions. */
export const prose = (max: number) => z.string().max(max).superRefine(refused(NOT_IN_PROSE));
/** A string tensor element: any well-formed text, NUL and other control characters included. */
export const tensorString = z.string().superRefine(refused(LONE_SURROGATE));
export const generated = (max: number) => z.string().max(max).superRefine(refused(LONE_SURROGATE));

/**
 * Null when `value` (parsed JSON) nests at most `maxDepth` deep and every
 * string in it, keys included, is well-formed; else a sentence with the path.
 * Iterative, so hostile depth cannot exhaust the stack.
 */
export function checkJson(value: unknown, maxDepth = MAX_JSON_DEPTH): string | null {
  const stack: [unknown, string, number][] = [[value, '', 0]];
  while (stack.length > 0) {
    const [v, path, depth] = stack.pop()!;
    if (typeof v === 'string') {
      const problem = findBad(v, LONE_SURROGATE);
      if (problem) return `${path || '(root)'}: ${problem}`;
      continue;
    }
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= maxDepth) return `${path || '(root)'}: nested more than ${maxDepth} deep`;
    for (const [k, child] of Object.entries(v)) {
      const problem = findBad(k, LONE_SURROGATE);
      if (problem) return `${path || '(root)'}: a key ${problem}`;
      stack.push([child, path ? `${path}.${k}` : k, depth + 1]);
    }
  }
  return null;
}

/** Any JSON value that `checkJson` accepts: a job's input or output, whatever its kind. */
export const json = () =>
  z.unknown().superRefine((v, ctx) => {
    const problem = checkJson(v);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

/** `s` made acceptable as prose (or, with `oneLine`, as a line): each refused character becomes U+FFFD. */
export function cleanText(s: string, oneLine = false): string {
  return s.replace(new RegExp((oneLine ? NOT_IN_LINE : NOT_IN_PROSE).source, 'gu'), '\uFFFD');
}

/**
 * `s` safe to print on a terminal or in a log line: control characters, lone
 * surrogates and bidirectional controls (which reorder what follows them, so a
 * name could disguise the text after it) become visible `\u{…}` escapes.
 */
export function printable(s: string): string {
  return s.replace(/[\p{Cc}\p{Cs}\p{Bidi_Control}\u2028\u2029]/gu, (ch) => `\\u{${ch.codePointAt(0)!.toString(16)}}`);
}
