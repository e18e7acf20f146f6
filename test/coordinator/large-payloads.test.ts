/**
 * Inputs and outputs too large for a control frame are kept outside the jobs
 * row in pieces (payloads.ts): read back exactly, written with the state
 * change or not at all, and never carried whole by one statement, which is
 * what grew the embedded database's memory for good and ran it out of memory
 * under the documented 64 MiB limit.
 */
import { describe, expect, it } from 'vitest';
import { MAX_INLINE_PAYLOAD_BYTES } from '../../src/protocol/index.js';
import { PAYLOAD_PIECE_UNITS, storedPayload } from '../../src/coordinator/store/payloads.js';
import { forgetJobText, getJob, jobOutput, leaseJobs, payloadPieces, type Db } from '../../src/coordinator/store/index.js';
import { backends, useMigratedDb } from '../helpers/backends.js';
import { at, completeJob, insertJob, lease, newJob } from '../helpers/store-jobs.js';

/** A string tensor input whose JSON is about `units` UTF-16 units, with text of every width (a surrogate pair among them). */
function bigInput(units: number) {
  const word = 'tensor \u00e9t\u00e9 \u6f22\u5b57 \ud83d\ude00 \u0000 ';
  return { inputs: { x: { dtype: 'string', dims: [1], data: [word.repeat(Math.ceil(units / word.length))] } } };
}

const joined = async (pieces: AsyncIterable<string>) => {
  let text = '';
  for await (const p of pieces) text += p;
  return text;
};

/** The db, recording the longest text any statement carried. */
function measured(db: Db): { db: Db; longest: () => number } {
  let longest = 0;
  const wrap = (d: Db): Db => ({
    ...d,
    kind: d.kind,
    query: (text, params) => {
      for (const p of params ?? []) for (const v of Array.isArray(p) ? p : [p]) if (typeof v === 'string') longest = Math.max(longest, v.length);
      return d.query(text, params);
    },
    transaction: (fn) => d.transaction((tx) => fn(wrap(tx))),
  });
  return { db: wrap(db), longest: () => longest };
}

describe('where a value is kept', () => {
  it('keeps what fits a control frame in the row and splits the rest into pieces that join to the JSON', () => {
    expect(storedPayload({ a: 1 })).toEqual({ text: '{"a":1}', pieces: [] });
    // A pair's high half falls exactly on a piece's last unit: the piece ends before it.
    const s = `${'x'.repeat(PAYLOAD_PIECE_UNITS - 2)}\ud83d\ude00${'y'.repeat(10)}`;
    const stored = storedPayload(s);
    expect(stored.text).toBeNull();
    expect(stored.pieces.join('')).toBe(JSON.stringify(s));
    expect(stored.pieces[0]).toHaveLength(PAYLOAD_PIECE_UNITS - 1);
    // Valid text on its own: a lone half would come back from UTF-8 as U+FFFD.
    for (const p of stored.pieces) expect(Buffer.from(p).toString()).toBe(p);
    // Decided by UTF-8 bytes: 200,000 three-byte characters are over 512 KiB.
    expect(storedPayload('\u6f22'.repeat(200_000)).text).toBeNull();
    expect(storedPayload('a'.repeat(MAX_INLINE_PAYLOAD_BYTES - 2)).text).not.toBeNull();
  });
});

describe.each(backends)('large inputs and outputs on $name', (backend) => {
  let db: Db;
  useMigratedDb(backend, (opened) => (db = opened));

  it('keeps them in pieces, reads them back exactly, and no statement carries one whole', async () => {
    const { db: spy, longest } = measured(db);
    const input = bigInput(2.5 * PAYLOAD_PIECE_UNITS);
    const output = { outputs: { y: bigInput(1.5 * PAYLOAD_PIECE_UNITS).inputs.x } };
    const [inputPieces, outputPieces] = [storedPayload(input).pieces.length, storedPayload(output).pieces.length];
    expect([inputPieces, outputPieces]).toEqual([4, 2]);
    const j = await insertJob(spy, newJob({ input }));
    const row = await getJob(db, j.id);
    expect(row).toMatchObject({ input: null, inputPieces, output: null, outputPieces: 0 });
    const [leased] = await leaseJobs(spy, [lease(j.id, 'L1')], at(1));
    expect(leased).toMatchObject({ input: null, inputPieces });
    expect(JSON.parse(await joined(payloadPieces(spy, j.id, 'input', inputPieces)))).toEqual(input);
    await completeJob(spy, j.id, 'L1', { ok: true, output }, at(2));
    const done = (await getJob(db, j.id))!;
    expect(done).toMatchObject({ state: 'succeeded', output: null, outputPieces });
    expect(await jobOutput(spy, done)).toEqual(output);
    expect(longest()).toBeLessThanOrEqual(PAYLOAD_PIECE_UNITS);
  });

  it('writes no pieces for a stale result, and a small value stays in the row', async () => {
    const j = await insertJob(db, newJob());
    await leaseJobs(db, [lease(j.id, 'L1')], at(1));
    expect(await completeJob(db, j.id, 'stale', { ok: true, output: bigInput(PAYLOAD_PIECE_UNITS) }, at(2))).toBeNull();
    expect(await db.query('SELECT 1 FROM job_payloads WHERE job_id = $1', [j.id])).toHaveLength(0);
    await completeJob(db, j.id, 'L1', { ok: true, output: { outputs: {} } }, at(3));
    expect(await getJob(db, j.id)).toMatchObject({ output: { outputs: {} }, outputPieces: 0 });
  });

  it('forgets a large prompt and answer with their pieces', async () => {
    const prompt = 'plans '.repeat(PAYLOAD_PIECE_UNITS / 4);
    const j = await insertJob(db, newJob({ kind: 'llm', input: { prompt }, forgetText: true }));
    await leaseJobs(db, [lease(j.id, 'L1')], at(1));
    await completeJob(db, j.id, 'L1', { ok: true, output: { text: prompt, finishReason: 'length' } }, at(2));
    expect(await forgetJobText(db, { ids: [j.id] })).toBe(1);
    const row = (await getJob(db, j.id))!;
    expect(row).toMatchObject({ input: null, inputPieces: 0, output: { finishReason: 'length' }, outputPieces: 0 });
    expect(await db.query('SELECT 1 FROM job_payloads WHERE job_id = $1', [j.id])).toHaveLength(0);
  });
});
