/**
 * The schema as an ordered list of migrations, applied once each and recorded in
 * `schema_migrations`. Append new migrations; never edit one that has shipped.
 *
 *   const applied = await migrate(db); // versions applied now; [] when up to date
 */
import { z } from 'zod';
import type { Db } from './db.js';

export interface Migration {
  version: number;
  name: string;
  up: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'workers, enrollment tokens, api keys',
    up: `
      CREATE TABLE workers (
        id               text PRIMARY KEY,
        name             text NOT NULL,
        state            text NOT NULL DEFAULT 'offline' CHECK (state IN ('online', 'offline', 'revoked')),
        -- Why an online worker is not taking jobs (admin pause or the worker's own policy); null = not paused.
        paused_reason    text,
        hardware         jsonb,
        app_version      text,
        cert_fingerprint text NOT NULL,
        cert_not_after   timestamptz NOT NULL,
        enrolled_at      timestamptz NOT NULL,
        -- When the worker entered its current state ("offline since …").
        state_changed_at timestamptz NOT NULL,
        -- Last connect or heartbeat.
        last_seen        timestamptz,
        revoked_at       timestamptz,
        -- The coordinator instance holding the worker's session, while online.
        instance_id      text,
        token_id         text,
        CHECK ((state = 'revoked') = (revoked_at IS NOT NULL))
      );
      CREATE INDEX workers_enrolled_at_idx ON workers (enrolled_at, id);
      CREATE INDEX workers_instance_id_idx ON workers (instance_id) WHERE instance_id IS NOT NULL;

      CREATE TABLE enrollment_tokens (
        id            text PRIMARY KEY,
        secret_sha256 text NOT NULL CHECK (secret_sha256 ~ '^[0-9a-f]{64}$'),
        description   text NOT NULL DEFAULT '',
        created_at    timestamptz NOT NULL,
        expires_at    timestamptz NOT NULL,
        max_uses      integer NOT NULL CHECK (max_uses > 0),
        uses          integer NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
        revoked_at    timestamptz
      );

      CREATE TABLE api_keys (
        id          text PRIMARY KEY,
        key_sha256  text NOT NULL UNIQUE CHECK (key_sha256 ~ '^[0-9a-f]{64}$'),
        created_at  timestamptz NOT NULL,
        description text NOT NULL DEFAULT ''
      );
    `,
  },
  {
    version: 2,
    name: 'jobs and their state history',
    up: `
      CREATE TABLE jobs (
        id               text PRIMARY KEY,
        kind             text NOT NULL,
        model_sha256     text NOT NULL CHECK (model_sha256 ~ '^[0-9a-f]{64}$'),
        model_size       bigint NOT NULL,
        model_name       text NOT NULL,
        input            jsonb NOT NULL,
        requirements     jsonb NOT NULL,
        timeout_ms       integer NOT NULL CHECK (timeout_ms > 0),
        max_attempts     integer NOT NULL CHECK (max_attempts > 0),
        priority         integer NOT NULL DEFAULT 0,
        state            text NOT NULL CHECK (state IN ('queued', 'leased', 'running', 'succeeded', 'failed', 'canceled')),
        -- Attempts started so far; the lease of attempt N is the only one whose result counts.
        attempt          integer NOT NULL DEFAULT 0,
        lease_id         text,
        lease_expires_at timestamptz,
        worker_id        text,
        -- The instance whose session holds the lease (its worker's connection).
        instance_id      text,
        progress         real,
        -- Why a queued job is still waiting, in words (no eligible worker, all busy).
        waiting_reason   text,
        output           jsonb,
        error            jsonb,
        submitted_at     timestamptz NOT NULL,
        updated_at       timestamptz NOT NULL,
        started_at       timestamptz,
        finished_at      timestamptz,
        CHECK ((state IN ('leased', 'running')) = (lease_id IS NOT NULL))
      );
      CREATE INDEX jobs_queue_idx ON jobs (priority DESC, submitted_at, id) WHERE state = 'queued';
      CREATE INDEX jobs_lease_idx ON jobs (lease_expires_at) WHERE state IN ('leased', 'running');
      CREATE INDEX jobs_submitted_idx ON jobs (submitted_at DESC, id);

      CREATE TABLE job_events (
        job_id    text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq       bigserial,
        at        timestamptz NOT NULL,
        state     text NOT NULL,
        attempt   integer NOT NULL,
        worker_id text,
        detail    text,
        PRIMARY KEY (job_id, seq)
      );
    `,
  },
  {
    version: 3,
    name: "administrators' policy overrides",
    up: `
      -- An administrator's pause, preset or limits for one worker; null = none (the fleet's applies).
      ALTER TABLE workers ADD COLUMN admin_policy jsonb;
      -- The same for every worker without one of its own: a single row.
      CREATE TABLE fleet_policy (
        id           boolean PRIMARY KEY DEFAULT true CHECK (id),
        admin_policy jsonb NOT NULL,
        updated_at   timestamptz NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: 'job inputs and outputs as JSON text',
    // jsonb cannot hold every string JSON can: a NUL (\u0000, ordinary in a
    // string tensor's fixed-width labels) made PostgreSQL refuse the row. The
    // text is what the coordinator wrote with JSON.stringify, read back with
    // JSON.parse; nothing queries inside it.
    up: `
      ALTER TABLE jobs ALTER COLUMN input TYPE text USING input::text, ALTER COLUMN output TYPE text USING output::text;
    `,
  },
  {
    version: 5,
    name: 'api key scopes, names and revocation',
    up: `
      ALTER TABLE api_keys RENAME COLUMN description TO name;
      -- Every key before scopes could do everything: it stays an admin key. New keys name their scope.
      ALTER TABLE api_keys ADD COLUMN scope text NOT NULL DEFAULT 'admin' CHECK (scope IN ('admin', 'inference'));
      ALTER TABLE api_keys ALTER COLUMN scope DROP DEFAULT;
      ALTER TABLE api_keys ADD COLUMN revoked_at timestamptz;
      -- Written at most once a minute per key, so a busy client does not cost a write per request.
      ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
    `,
  },
  {
    version: 6,
    name: 'llm text: what a lost attempt streamed, and whether to forget prompts and answers',
    // resume_from: written only when an attempt that streamed output ends
    // without a result (its worker lost, the job handed back); the next
    // attempt continues from it. forget_text: the job's prompt and answer are
    // to be forgotten once it ends (an OpenAI request, [llm] keep_text off);
    // cleared when they are, so the index holds only what is still to do.
    up: `
      ALTER TABLE jobs ADD COLUMN resume_from text;
      ALTER TABLE jobs ADD COLUMN forget_text boolean NOT NULL DEFAULT false;
      CREATE INDEX jobs_text_to_forget ON jobs (finished_at) WHERE forget_text;
    `,
  },
  {
    version: 7,
    name: 'the workers a job was lost or failed on',
    // Appended when an attempt ends without a result and the job goes back to
    // the queue: the scheduler then prefers another worker for the next one.
    up: `
      ALTER TABLE jobs ADD COLUMN failed_on text[] NOT NULL DEFAULT '{}';
    `,
  },
  {
    version: 8,
    name: 'idempotency keys of job submits',
    // A client that retries a submit after a timeout sends the same key: the
    // jobs its first try queued are answered instead of queued twice. Keyed
    // per API key, so clients cannot see each other's keys; kept a day.
    up: `
      CREATE TABLE submit_keys (
        api_key_id     text NOT NULL,
        key            text NOT NULL,
        request_sha256 text NOT NULL,
        job_ids        text[] NOT NULL,
        created_at     timestamptz NOT NULL,
        PRIMARY KEY (api_key_id, key)
      );
      CREATE INDEX submit_keys_created_at ON submit_keys (created_at);
    `,
  },
  {
    version: 9,
    name: 'a deadline for leaving the queue',
    // A job no worker takes by then fails with its waiting reason, instead of
    // waiting for ever (a kind no worker runs, a label nobody has). Jobs from
    // before have none, and keep waiting as they were promised.
    up: `
      ALTER TABLE jobs ADD COLUMN queue_deadline timestamptz;
      CREATE INDEX jobs_queue_deadline ON jobs (queue_deadline) WHERE state = 'queued';
    `,
  },
  {
    version: 10,
    name: 'large inputs and outputs in pieces outside the jobs row',
    // An input or output too large for a control frame (over 512 KiB of JSON,
    // up to 64 MiB) is kept in pieces of 1 Mi characters: in one row it made the embedded
    // database's memory grow by several times its size for good, and ran it
    // out of memory at 38–57 MiB. The row's column is then NULL and *_pieces
    // says how many pieces there are; 0 means the value is in the row, as in
    // every row from before.
    up: `
      ALTER TABLE jobs ALTER COLUMN input DROP NOT NULL;
      ALTER TABLE jobs ADD COLUMN input_pieces integer NOT NULL DEFAULT 0, ADD COLUMN output_pieces integer NOT NULL DEFAULT 0;
      CREATE TABLE job_payloads (
        job_id text NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        part   text NOT NULL CHECK (part IN ('input', 'output')),
        seq    integer NOT NULL,
        piece  text NOT NULL,
        PRIMARY KEY (job_id, part, seq)
      );
    `,
  },
  {
    version: 11,
    name: 'metrics api keys',
    // A key a Prometheus server keeps in its configuration may read /metrics
    // and nothing else; before, a scrape needed an admin key.
    up: `
      ALTER TABLE api_keys DROP CONSTRAINT api_keys_scope_check;
      ALTER TABLE api_keys ADD CONSTRAINT api_keys_scope_check CHECK (scope IN ('admin', 'inference', 'metrics'));
    `,
  },
  {
    version: 12,
    name: 'how each worker connects, and its labels',
    // Workers on networks that drop UDP connect over TLS on TCP; `gogrid workers`
    // says which. Labels were only in a live session's hello, so an offline
    // worker's were shown nowhere. NULL transport: not connected since this version.
    up: `
      ALTER TABLE workers ADD COLUMN transport text CHECK (transport IN ('quic', 'tcp')),
        ADD COLUMN labels jsonb NOT NULL DEFAULT '[]';
    `,
  },
];

// Any fixed number, the same in every instance: serializes concurrent migrate() calls.
const MIGRATION_LOCK_KEY = 0x6767_6d69;

const AppliedRow = z.object({ version: z.number().int(), name: z.string(), applied_at: z.date() });

export interface AppliedMigration {
  version: number;
  name: string;
  appliedAt: Date;
}

/**
 * Applies every pending migration, each in its own transaction. On PostgreSQL an
 * advisory lock makes coordinator instances that start together take turns, so
 * exactly one applies each migration and the others find it recorded.
 */
export async function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  const applied: number[] = [];
  for (const m of migrations) {
    const didApply = await db.transaction(async (tx) => {
      if (tx.kind === 'postgres') await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      await tx.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    integer PRIMARY KEY,
        name       text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const done = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
      if (done.length > 0) return false;
      await tx.exec(m.up);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      return true;
    });
    if (didApply) applied.push(m.version);
  }
  return applied;
}

/** What `schema_migrations` records, oldest first; [] on a database never migrated. */
export async function appliedMigrations(db: Db): Promise<AppliedMigration[]> {
  const exists = await db.query<{ t: string | null }>(`SELECT to_regclass('schema_migrations')::text AS t`);
  if (exists[0]?.t == null) return [];
  const rows = await db.query('SELECT version, name, applied_at FROM schema_migrations ORDER BY version');
  return rows.map((r) => {
    const row = AppliedRow.parse(r);
    return { version: row.version, name: row.name, appliedAt: row.applied_at };
  });
}
