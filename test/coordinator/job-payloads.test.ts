/**
 * Job inputs and outputs are stored as the JSON text they are, on every
 * backend: whatever the protocol accepts comes back exactly, including what
 * PostgreSQL's jsonb cannot hold (NUL, as `\u0000`), and one result the
 * database refuses fails only itself, never the others written with it.
 */
import { describe, expect, it } from 'vitest';
import { JobWrites } from '../../src/coordinator/job-writes.js';
import { completeJobs, getJob, insertJobs, leaseJobs, migrate, MIGRATIONS, type Db } from '../../src/coordinator/store/index.js';
import { backends, useMigratedDb } from '../helpers/backends.js';
import { at, lease, newJob } from '../helpers/store-jobs.js';

const strings = (data: string[]) => ({ outputs: { label: { dtype: 'string', dims: [data.length], data } } });
/** What a fixed-width label model returns, and text PostgreSQL's jsonb refuses or mangles. */
const AWKWARD = strings(['cat\0\0\0', '\0', 'dog\u0001\u001f', '😀 \u202e bidi', '\\u0000 as typed', ' '.repeat(3)]);
const deep = (n: number): unknown => (n === 0 ? 'bottom' : { d: deep(n - 1) });

describe.each(backends)('job payloads on $name', (backend) => {
  let db: Db;
  useMigratedDb(backend, (opened) => (db = opened));

  async function leased(input: unknown = { inputs: {} }) {
    const job = newJob({ input });
    await insertJobs(db, [job]);
    await leaseJobs(db, [lease(job.id, `L-${job.id}`)], at(1));
    return job;
  }

  it('keeps an input with NUL characters and deep nesting exactly', async () => {
    const input = { inputs: AWKWARD.outputs, extra: deep(60) };
    const job = await leased(input);
    expect((await getJob(db, job.id))?.input).toEqual(input);
  });

  it('keeps an output with NUL characters exactly', async () => {
    const job = await leased();
    const [row] = await completeJobs(db, [{ jobId: job.id, leaseId: `L-${job.id}`, outcome: { ok: true, output: AWKWARD }, at: at(2) }]);
    expect(row?.state).toBe('succeeded');
    expect((await getJob(db, job.id))?.output).toEqual(AWKWARD);
  });

  it('fails only the result the database refuses, not the others in its batch', async () => {
    const writes = new JobWrites(db);
    const [a, b] = [await leased(), await leased()];
    // A lease id with a NUL: PostgreSQL's text refuses it (the protocol never lets one through; here it stands for any refused row).
    const bad = writes.complete({ jobId: a.id, leaseId: 'L-\0', outcome: { ok: true, output: AWKWARD }, at: at(2) });
    const good = writes.complete({ jobId: b.id, leaseId: `L-${b.id}`, outcome: { ok: true, output: AWKWARD }, at: at(2) });
    await expect(bad).rejects.toThrow();
    expect((await good)?.state).toBe('succeeded');
    expect((await getJob(db, a.id))?.state).toBe('leased');
  });

  it('fails only the mark the database refuses, not the others in its batch', async () => {
    const writes = new JobWrites(db);
    const [a, b] = [await leased(), await leased()];
    const bad = writes.markRunning(a.id, 'L-\0', at(2));
    const good = writes.markRunning(b.id, `L-${b.id}`, at(2));
    await expect(bad).rejects.toThrow();
    expect(await good).toBe(true);
  });
});

describe.each(backends)('the payload migration on $name', (backend) => {
  let db: Db;
  useMigratedDb(backend, (opened) => (db = opened));

  it('turns jobs written as jsonb into the same JSON as text', async () => {
    // The state before it: a job row written by the schema up to version 3.
    const tables = await db.query<{ tablename: string }>('SELECT tablename FROM pg_tables WHERE schemaname = current_schema()');
    await db.exec(tables.map((t) => `DROP TABLE ${t.tablename} CASCADE;`).join('\n'));
    const before = MIGRATIONS.filter((m) => m.version <= 3);
    await migrate(db, before);
    const job = newJob({ input: { inputs: { x: { dtype: 'float32', dims: [1], data: [1.5] } } } });
    await insertJobsAsJsonb(db, job.id, job.input);
    expect(await migrate(db)).toEqual(MIGRATIONS.filter((m) => m.version > 3).map((m) => m.version));
    expect((await getJob(db, job.id))?.input).toEqual(job.input);
  });
});

async function insertJobsAsJsonb(db: Db, id: string, input: unknown): Promise<void> {
  await db.query(
    `INSERT INTO jobs (id, kind, model_sha256, model_size, model_name, input, requirements, timeout_ms, max_attempts, priority, state, submitted_at, updated_at)
     VALUES ($1, 'onnx', $2, 1, 'm.onnx', $3::jsonb, '{}'::jsonb, 1000, 3, 0, 'queued', now(), now())`,
    [id, 'a'.repeat(64), JSON.stringify(input)],
  );
}
