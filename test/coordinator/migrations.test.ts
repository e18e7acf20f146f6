/**
 * One test per migration, on every backend: a database is taken up one
 * version at a time, each version's coordinator writing rows as that version
 * could, then up to the latest; today's store must read every row back as it
 * was written, and work on it. Starting from version 0 (an empty database)
 * and from each version in turn covers every migration with data in place.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  expireQueued,
  findApiKeyBySha256,
  forgetSubmitKeys,
  getJob,
  getJobEvents,
  getPolicies,
  getToken,
  getWorker,
  insertJobsOnce,
  jobOutput,
  leaseJobs,
  listQueueHead,
  migrate,
  MIGRATIONS,
  revokeApiKey,
  type Db,
} from '../../src/coordinator/store/index.js';
import { backends } from '../helpers/backends.js';
import { at, lease } from '../helpers/store-jobs.js';

const hex = (c: string) => c.repeat(64);
const T = '2026-01-01T00:00:00.000Z';

/** A string tensor with non-ASCII text, the kind of input migration 4 moved from jsonb to text. */
const V2_INPUT = { inputs: { x: { dtype: 'string', dims: [2], data: ['😀', 'ü ß'] }, n: { dtype: 'float32', dims: [1], data: [1.5] } } };
const V2_OUTPUT = { outputs: { y: { dtype: 'float32', dims: [1], data: [3] } } };

/**
 * What a coordinator of each version wrote, in that version's schema. A new
 * migration needs its own entry here (the first test says so).
 */
const WRITTEN_AT: Record<number, string> = {
  1: `
    INSERT INTO workers (id, name, state, app_version, cert_fingerprint, cert_not_after, enrolled_at, state_changed_at, last_seen, token_id)
      VALUES ('w-v1', 'old worker', 'offline', '0.1.0', '${hex('c')}', '2027-01-01T00:00:00Z', '${T}', '${T}', '${T}', 't-v1');
    INSERT INTO enrollment_tokens (id, secret_sha256, description, created_at, expires_at, max_uses, uses)
      VALUES ('t-v1', '${hex('a')}', 'rack 4', '${T}', '2027-01-01T00:00:00Z', 3, 1);
    INSERT INTO api_keys (id, key_sha256, created_at, description) VALUES ('k-v1', '${hex('b')}', '${T}', 'admin');`,
  2: `
    INSERT INTO jobs (id, kind, model_sha256, model_size, model_name, input, requirements, timeout_ms, max_attempts, state, attempt,
                      worker_id, output, submitted_at, updated_at, started_at, finished_at)
      VALUES ('j-v2-done', 'onnx', '${hex('d')}', 10, 'm.onnx', '${JSON.stringify(V2_INPUT)}', '{}', 1000, 3, 'succeeded', 1,
              'w-v1', '${JSON.stringify(V2_OUTPUT)}', '${T}', '${T}', '${T}', '${T}');
    INSERT INTO jobs (id, kind, model_sha256, model_size, model_name, input, requirements, timeout_ms, max_attempts, state, submitted_at, updated_at)
      VALUES ('j-v2-queued', 'onnx', '${hex('d')}', 10, 'm.onnx', '${JSON.stringify(V2_INPUT)}', '{"labels":["gpu"]}', 1000, 3, 'queued', '${T}', '${T}');
    INSERT INTO job_events (job_id, at, state, attempt, worker_id, detail) VALUES ('j-v2-done', '${T}', 'succeeded', 1, 'w-v1', NULL);`,
  3: `
    UPDATE workers SET admin_policy = '{"paused":true,"message":"Rack move"}' WHERE id = 'w-v1';
    INSERT INTO fleet_policy (admin_policy, updated_at) VALUES ('{"settings":{"preset":"desktop"},"limits":{"maxCores":2}}', '${T}');`,
  4: `
    INSERT INTO jobs (id, kind, model_sha256, model_size, model_name, input, requirements, timeout_ms, max_attempts, state, submitted_at, updated_at)
      VALUES ('j-v4-nul', 'onnx', '${hex('d')}', 10, 'm.onnx', '{"inputs":{"x":{"dtype":"string","dims":[1],"data":["a\\u0000b"]}}}', '{}', 1000, 3, 'queued', '${T}', '${T}');`,
  5: `
    INSERT INTO api_keys (id, key_sha256, name, scope, created_at, last_used_at) VALUES ('k-v5', '${hex('e')}', 'chat app', 'inference', '${T}', '${T}');`,
  6: `
    INSERT INTO jobs (id, kind, model_sha256, model_size, model_name, input, requirements, timeout_ms, max_attempts, state, attempt, resume_from, submitted_at, updated_at)
      VALUES ('j-v6-resume', 'llm', '${hex('f')}', 10, 'tiny', '{"prompt":"Hi"}', '{}', 1000, 3, 'queued', 1,
              '{"text":"Hel\\u0000lo","tokens":[7,8]}', '${T}', '${T}');`,
  7: `
    INSERT INTO jobs (id, kind, model_sha256, model_size, model_name, input, requirements, timeout_ms, max_attempts, state, attempt, failed_on, submitted_at, updated_at)
      VALUES ('j-v7-failed-on', 'onnx', '${hex('f')}', 10, 'm.onnx', '{}', '{}', 1000, 3, 'queued', 1, '{w-v1}', '${T}', '${T}');`,
  8: `
    INSERT INTO submit_keys (api_key_id, key, request_sha256, job_ids, created_at)
      VALUES ('k-v1', 'retry-8', '${hex('a')}', '{j-v7-failed-on}', '${T}');`,
  9: `
    INSERT INTO jobs (id, kind, model_sha256, model_size, model_name, input, requirements, timeout_ms, max_attempts, state, submitted_at, updated_at, queue_deadline)
      VALUES ('j-v9-deadline', 'onnx', '${hex('f')}', 10, 'm.onnx', '{}', '{}', 1000, 3, 'queued', '${T}', '${T}', '${T}');`,
  10: `
    INSERT INTO jobs (id, kind, model_sha256, model_size, model_name, input, input_pieces, requirements, timeout_ms, max_attempts, state,
                      output, output_pieces, submitted_at, updated_at)
      VALUES ('j-v10-pieces', 'onnx', '${hex('f')}', 10, 'm.onnx', NULL, 1, '{}', 1000, 3, 'succeeded', NULL, 2, '${T}', '${T}');
    INSERT INTO job_payloads (job_id, part, seq, piece) VALUES ('j-v10-pieces', 'input', 0, '{"inputs":{}}'),
      ('j-v10-pieces', 'output', 0, '{"outputs":{"y":"\\u0000'), ('j-v10-pieces', 'output', 1, '\u00e9"}}');`,
  11: `
    INSERT INTO api_keys (id, key_sha256, name, scope, created_at) VALUES ('k-v11', '${hex('1')}', 'prometheus', 'metrics', '${T}');`,
  12: `
    INSERT INTO workers (id, name, state, app_version, cert_fingerprint, cert_not_after, enrolled_at, state_changed_at, transport, labels)
      VALUES ('w-v12', 'behind a firewall', 'offline', '0.2.0', '${hex('2')}', '2027-01-01T00:00:00Z', '${T}', '${T}', 'tcp', '["gpu", "rack-4"]');`,
};

/** What today's store reads of the rows each version wrote, and that it can still work on them. */
const READ_BACK: Record<number, (db: Db) => Promise<void>> = {
  1: async (db) => {
    expect(await getWorker(db, 'w-v1')).toMatchObject({ name: 'old worker', state: 'offline', appVersion: '0.1.0', certFingerprint: hex('c'), enrolledAt: new Date(T) });
    expect(await getToken(db, 't-v1')).toMatchObject({ description: 'rack 4', maxUses: 3, uses: 1, revokedAt: null });
    // A key from before scopes could do everything: it is an admin key, its description now its name.
    expect(await findApiKeyBySha256(db, hex('b'))).toMatchObject({ id: 'k-v1', name: 'admin', scope: 'admin', revokedAt: null, lastUsedAt: null });
  },
  2: async (db) => {
    expect(await getJob(db, 'j-v2-done')).toMatchObject({ state: 'succeeded', input: V2_INPUT, output: V2_OUTPUT, workerId: 'w-v1', finishedAt: new Date(T) });
    expect(await getJobEvents(db, 'j-v2-done')).toEqual([{ at: new Date(T), state: 'succeeded', attempt: 1, workerId: 'w-v1', detail: null }]);
    const [leased] = await leaseJobs(db, [lease('j-v2-queued', 'L-v2')], at(1));
    expect(leased).toMatchObject({ state: 'leased', attempt: 1, input: V2_INPUT, requirements: { labels: ['gpu'] } });
  },
  3: async (db) => {
    expect(await getPolicies(db, 'w-v1')).toEqual({
      worker: { paused: true, message: 'Rack move' },
      fleet: { settings: { preset: 'desktop' }, limits: { maxCores: 2 } },
      effective: { paused: true, message: 'Rack move' },
    });
  },
  4: async (db) => {
    expect((await getJob(db, 'j-v4-nul'))?.input).toEqual({ inputs: { x: { dtype: 'string', dims: [1], data: ['a\u0000b'] } } });
  },
  5: async (db) => {
    expect(await findApiKeyBySha256(db, hex('e'))).toMatchObject({ id: 'k-v5', name: 'chat app', scope: 'inference', lastUsedAt: new Date(T) });
    // Version 1's key (written before these rows) counts as an admin key: the inference key may go, the last admin key may not.
    expect(await revokeApiKey(db, 'k-v5', new Date(T))).toMatchObject({ revokedAt: new Date(T) });
    await expect(revokeApiKey(db, 'k-v1', new Date(T))).rejects.toMatchObject({ code: 'GG_ERR_LAST_ADMIN_KEY' });
  },
  6: async (db) => {
    // What a lost attempt streamed goes with the next lease.
    const [leased] = await leaseJobs(db, [lease('j-v6-resume', 'L-v6')], at(1));
    expect(leased).toMatchObject({ attempt: 2, input: { prompt: 'Hi' }, resumeFrom: { text: 'Hel\u0000lo', tokens: [7, 8] } });
  },
  7: async (db) => {
    // The scheduler reads where a job failed before.
    expect((await listQueueHead(db, 100)).find((q) => q.id === 'j-v7-failed-on')?.failedOn).toEqual(['w-v1']);
  },
  8: async (db) => {
    // A retry with the key queues nothing and learns the job; a day later the key is taken afresh.
    const retry = { apiKeyId: 'k-v1', key: 'retry-8', requestSha256: hex('a') };
    expect(await insertJobsOnce(db, [], { ...retry, now: new Date(T) })).toEqual({ earlier: { requestSha256: hex('a'), jobIds: ['j-v7-failed-on'] } });
    expect(await forgetSubmitKeys(db, new Date(Date.parse(T) + 1))).toBe(1);
  },
  9: async (db) => {
    // Jobs from before version 9 have no deadline and are never expired; this one has, and is.
    expect((await expireQueued(db, new Date(Date.parse(T) + 1))).map((r) => r.id)).toEqual(['j-v9-deadline']);
  },
  10: async (db) => {
    // A value kept in pieces reads back whole, however the pieces cut it.
    const row = (await getJob(db, 'j-v10-pieces'))!;
    expect(row).toMatchObject({ input: null, inputPieces: 1, output: null, outputPieces: 2 });
    expect(await jobOutput(db, row)).toEqual({ outputs: { y: '\u0000\u00e9' } });
  },
  11: async (db) => {
    expect(await findApiKeyBySha256(db, hex('1'))).toMatchObject({ id: 'k-v11', name: 'prometheus', scope: 'metrics' });
  },
  12: async (db) => {
    // A worker from before: how it connects is not known until it does, and it has no labels.
    expect(await getWorker(db, 'w-v1')).toMatchObject({ transport: null, labels: [] });
    expect(await getWorker(db, 'w-v12')).toMatchObject({ transport: 'tcp', labels: ['gpu', 'rack-4'] });
  },
};

const VERSIONS = MIGRATIONS.map((m) => m.version);

it('has rows to write and read back for every migration', () => {
  expect(Object.keys(WRITTEN_AT).map(Number)).toEqual(VERSIONS);
  expect(Object.keys(READ_BACK).map(Number)).toEqual(VERSIONS);
});

describe.each(backends)('migrations on $name', (backend) => {
  // One database, its schema emptied before each test: a new embedded PGlite
  // takes about 3 s to start here, which ten tests would pay ten times.
  let db: Db;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    ({ db, dispose } = await backend.open());
  });
  afterAll(() => dispose());
  beforeEach(async () => {
    const [current] = await db.query<{ schema: string }>('SELECT current_schema() AS schema');
    await db.exec(`DROP SCHEMA "${current!.schema}" CASCADE; CREATE SCHEMA "${current!.schema}";`);
  });

  it.each([0, ...VERSIONS])('from version %i, with rows written at each version on the way, to the latest', { timeout: 90_000 }, async (from) => {
    for (const m of MIGRATIONS.filter((x) => x.version <= from)) {
      expect(await migrate(db, MIGRATIONS.filter((x) => x.version <= m.version))).toEqual([m.version]);
      await db.exec(WRITTEN_AT[m.version]!);
    }
    expect(await migrate(db)).toEqual(VERSIONS.filter((v) => v > from));
    for (const v of VERSIONS.filter((x) => x <= from)) await READ_BACK[v]!(db);
  });
});
