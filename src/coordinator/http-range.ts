/**
 * The single-range subset of HTTP range requests (RFC 9110 §14) that a
 * resuming download needs: `bytes=N-`, `bytes=N-M` and `bytes=-SUFFIX`.
 *
 *   const r = parseRange(req.headers.range, size);
 *   if (r.kind === 'partial') reply.code(206).header('content-range', `bytes ${r.start}-${r.end}/${size}`);
 *
 * A header that is absent, malformed, in another unit or asks for several
 * ranges gets the whole file, as the RFC allows a server to do.
 */

export type RangeResult = { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

const SINGLE = /^bytes=(\d*)-(\d*)$/;

export function parseRange(header: string | undefined, size: number): RangeResult {
  const match = header === undefined ? null : SINGLE.exec(header.trim());
  if (!match) return { kind: 'full' };
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'full' };
  if (first === '') {
    const suffix = toInt(last);
    if (suffix === null) return { kind: 'full' };
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = toInt(first);
  const end = last === '' ? Infinity : toInt(last);
  if (start === null || end === null || end < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end: Math.min(end, size - 1) };
}

function toInt(digits: string): number | null {
  const n = Number(digits);
  return Number.isSafeInteger(n) ? n : null;
}
