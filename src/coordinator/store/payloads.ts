/**
 * Job inputs and outputs too large for a control frame, kept out of the jobs
 * row in pieces of JSON text (`job_payloads`, migration 10) and read back one
 * piece at a time. A 56 MiB value in one row cost the embedded database
 * (PGlite, whose WebAssembly memory never shrinks) ~100–200 MiB more for good
 * at each write and read, and ran it out of memory at 38–57 MiB; in pieces
 * its memory stays flat and an HTTPS answer streams the pieces.
 *
 *   const stored = storedPayload(output);     // { text } for the row, or { text: null, pieces }
 *   await writePayload(tx, jobId, 'output', stored.pieces);
 *   for await (const piece of payloadPieces(db, jobId, 'output', row.outputPieces)) res.write(piece);
 */
import { MAX_INLINE_PAYLOAD_BYTES } from '../../protocol/index.js';
import type { Db } from './db.js';

export type PayloadPart = 'input' | 'output';

/**
 * UTF-16 units per piece (at most 3 MiB of UTF-8): one statement's worth,
 * which the embedded database handles without growing. Text, not bytea:
 * PGlite encodes bytea parameters ~10× slower than text (20 MiB: 13 s).
 */
export const PAYLOAD_PIECE_UNITS = 1024 * 1024;

export interface StoredPayload {
  /** The JSON text for the row, or null when it is kept in `pieces`. */
  text: string | null;
  pieces: string[];
}

/**
 * Where a value is kept: in the row when it would travel in a control frame
 * (the common, small case: one statement), in pieces otherwise.
 */
export function storedPayload(value: unknown): StoredPayload {
  const text = JSON.stringify(value);
  // UTF-8 takes at most three bytes per UTF-16 unit: short text needs no encoding to decide.
  if (text.length * 3 <= MAX_INLINE_PAYLOAD_BYTES || Buffer.byteLength(text) <= MAX_INLINE_PAYLOAD_BYTES) return { text, pieces: [] };
  const pieces: string[] = [];
  for (let at = 0; at < text.length; ) {
    let end = Math.min(at + PAYLOAD_PIECE_UNITS, text.length);
    // Never between the two halves of a surrogate pair: each piece must be valid text on its own.
    if (end < text.length && isHighSurrogate(text.charCodeAt(end - 1))) end -= 1;
    pieces.push(text.slice(at, end));
    at = end;
  }
  return { text: null, pieces };
}

const isHighSurrogate = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;

/** Writes a payload's pieces, replacing any it had; call inside the transaction that points the row at them. */
export async function writePayload(tx: Db, jobId: string, part: PayloadPart, pieces: readonly string[]): Promise<void> {
  await tx.query('DELETE FROM job_payloads WHERE job_id = $1 AND part = $2', [jobId, part]);
  // A statement per piece: one statement with every piece is the large row again, for the embedded database.
  for (const [seq, piece] of pieces.entries()) {
    await tx.query('INSERT INTO job_payloads (job_id, part, seq, piece) VALUES ($1, $2, $3, $4)', [jobId, part, seq, piece]);
  }
}

/** A payload's pieces in order, one read each, so a reader holds one piece at a time. */
export async function* payloadPieces(db: Db, jobId: string, part: PayloadPart, count: number): AsyncGenerator<string> {
  for (let seq = 0; seq < count; seq++) {
    const [row] = await db.query<{ piece: string }>('SELECT piece FROM job_payloads WHERE job_id = $1 AND part = $2 AND seq = $3', [jobId, part, seq]);
    if (row === undefined) throw new Error(`job ${jobId}: piece ${seq} of its ${part} is missing`);
    yield row.piece;
  }
}

/** The whole value kept in `count` pieces, for the few readers that need it at once (an OpenAI answer). */
export async function readPayload(db: Db, jobId: string, part: PayloadPart, count: number): Promise<unknown> {
  const pieces: string[] = [];
  for await (const piece of payloadPieces(db, jobId, part, count)) pieces.push(piece);
  return JSON.parse(pieces.join('')) as unknown;
}
