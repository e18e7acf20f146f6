/**
 * The store against every backend available: embedded PGlite always, PostgreSQL when
 * GOGRID_TEST_PG_URL is set (`eval "$(scripts/postgres.sh start)"`). Each PostgreSQL
 * run works in a schema of its own, dropped afterwards, so reruns start clean.
 */
import net from 'node:net';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appliedMigrations,
  consumeToken,
  countApiKeys,
  createApiKey,
  createToken,
  findApiKeyBySha256,
  getApiKey,
  getToken,
  getWorker,
  getWorkers,
  listWorkerStates,
  insertWorker,
  listApiKeys,
  listTokens,
  listWorkers,
  markApiKeyUsed,
  markInstanceWorkersOffline,
  markOffline,
  markOnline,
  migrate,
  MIGRATIONS,
  openDb,
  revokeApiKey,
  revokeToken,
  revokeWorker,
  setPausedReason,
  touchLastSeen,
  updateCert,
  type Db,
  type OnlineInfo,
} from '../../src/coordinator/store/index.js';
import type { HardwareReport } from '../../src/protocol/index.js';

import { backends, PG_URL } from '../helpers/backends.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const at = (iso: string) => new Date(iso);
const T0 = at('2026-01-01T00:00:00.000Z');
const later = (ms: number, from = T0) => new Date(from.getTime() + ms);

const hardware: HardwareReport = {
  cpu: { manufacturer: 'AMD', brand: 'EPYC', physicalCores: 2, threads: 4, speedGHz: 2.45 },
  memory: { totalBytes: 8 * 2 ** 30 },
  gpus: [{ vendor: 'NVIDIA', model: 'H100', vramMiB: 81_559, backends: ['cuda'] }],
  os: { platform: 'linux', distro: 'Debian', release: '12', arch: 'x64', hostname: 'w1' },
};
const online = (instanceId: string, now: Date, name = 'w'): OnlineInfo => ({ name, hardware, appVersion: '0.1.0', transport: 'quic', labels: [], instanceId, now });

async function newWorker(db: Db, id: string, now = T0) {
  return insertWorker(db, { id, name: id, certFingerprint: sha256(`cert-${id}`), certNotAfter: later(86_400_000, now), tokenId: null, now });
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Error && 'code' in e && typeof e.code === 'string') return e.code;
    throw e;
  }
  return 'resolved';
}

describe.each(backends)('store on $name', (backend) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let firstMigration: number[];

  beforeAll(async () => {
    ({ db, dispose } = await backend.open());
    firstMigration = await migrate(db);
  });
  afterAll(async () => {
    await dispose();
  });

  describe('migrations', () => {
    it('applies every migration once and records it', async () => {
      expect(firstMigration).toEqual(MIGRATIONS.map((m) => m.version));
      expect(await migrate(db)).toEqual([]);
      const recorded = await appliedMigrations(db);
      expect(recorded.map((m) => [m.version, m.name])).toEqual(MIGRATIONS.map((m) => [m.version, m.name]));
      expect(recorded[0]?.appliedAt).toBeInstanceOf(Date);
    });

    it('rolls back a failing migration and leaves it pending', async () => {
      const broken = { version: 1001, name: 'broken', up: 'CREATE TABLE half_done (id int); SELECT no_such_column FROM half_done;' };
      await expect(migrate(db, [...MIGRATIONS, broken])).rejects.toThrow(/no_such_column/);
      expect((await appliedMigrations(db)).map((m) => m.version)).not.toContain(1001);
      expect(await db.query(`SELECT to_regclass('half_done')::text AS t`)).toEqual([{ t: null }]);
    });

    it('lets instances migrating at once take turns: exactly one applies', async () => {
      // The sleep holds each migration open long enough for the others to overlap it.
      const next = { version: 1002, name: 'concurrent', up: 'SELECT pg_sleep(0.1); CREATE TABLE concurrent_t (id int PRIMARY KEY);' };
      const results = await Promise.all([1, 2, 3].map(() => migrate(db, [...MIGRATIONS, next])));
      expect(results.flat()).toEqual([1002]);
    });

    it.runIf(backend.name === 'PostgreSQL')('migrates a brand-new database from several instances at once', async () => {
      const fresh = await backend.open();
      try {
        const results = await Promise.all([1, 2, 3, 4].map(() => migrate(fresh.db)));
        expect(results.flat()).toEqual(MIGRATIONS.map((m) => m.version));
      } finally {
        await fresh.dispose();
      }
    });
  });

  describe('Db', () => {
    it('commits a transaction, rolls one back on throw, and joins nested ones', async () => {
      await db.exec('CREATE TABLE tx_t (id int PRIMARY KEY); CREATE TABLE tx_u (id int);');
      await db.transaction(async (tx) => {
        await tx.query('INSERT INTO tx_t VALUES (1)');
        await tx.transaction((inner) => inner.query('INSERT INTO tx_t VALUES (2)'));
      });
      const boom = db.transaction(async (tx) => {
        await tx.query('INSERT INTO tx_t VALUES (3)');
        throw new Error('boom');
      });
      await expect(boom).rejects.toThrow('boom');
      expect(await db.query('SELECT id FROM tx_t ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
    });
  });

  describe('workers', () => {
    it('inserts offline workers and lists them by enrollment time', async () => {
      const b = await newWorker(db, 'list-b', later(2000));
      await newWorker(db, 'list-a', later(1000));
      expect(b).toMatchObject({ id: 'list-b', state: 'offline', lastSeen: null, instanceId: null, hardware: null, pausedReason: null });
      expect(b.enrolledAt).toEqual(later(2000));
      expect(b.stateChangedAt).toEqual(later(2000));
      expect(b.certNotAfter).toBeInstanceOf(Date);
      const ids = (await listWorkers(db)).map((w) => w.id).filter((id) => id.startsWith('list-'));
      expect(ids).toEqual(['list-a', 'list-b']);
      expect(await getWorker(db, 'no-such-worker')).toBeNull();
      // The dashboard's cheap reads: states in the same order, and a page of full rows by id.
      const states = (await listWorkerStates(db)).filter((w) => w.id.startsWith('list-'));
      expect(states).toEqual([
        { id: 'list-a', state: 'offline', pausedReason: null, instanceId: null, lastSeen: null },
        { id: 'list-b', state: 'offline', pausedReason: null, instanceId: null, lastSeen: null },
      ]);
      expect((await getWorkers(db, ['list-b', 'nobody', 'list-a'])).map((w) => w.id)).toEqual(['list-b', 'list-a']);
      expect(await getWorkers(db, [])).toEqual([]);
    });

    it('moves between online and offline', async () => {
      await newWorker(db, 'flip');
      const up = await markOnline(db, 'flip', online('i1', later(10), 'renamed'));
      expect(up).toMatchObject({ state: 'online', name: 'renamed', appVersion: '0.1.0', instanceId: 'i1', hardware });
      expect(up?.lastSeen).toEqual(later(10));
      expect(up?.stateChangedAt).toEqual(later(10));

      // A reconnect while online keeps the online-since time.
      expect((await markOnline(db, 'flip', online('i1', later(20))))?.stateChangedAt).toEqual(later(10));

      // A late disconnect seen by another instance does not take it offline.
      expect(await markOffline(db, 'flip', later(30), 'i2')).toBe(false);
      expect(await markOffline(db, 'flip', later(30), 'i1')).toBe(true);
      expect(await getWorker(db, 'flip')).toMatchObject({ state: 'offline', instanceId: null, stateChangedAt: later(30), lastSeen: later(20) });
      expect(await markOffline(db, 'flip', later(40))).toBe(false);
      expect(await markOnline(db, 'nobody', online('i1', T0))).toBeNull();
    });

    it('keeps a pause reason until cleared', async () => {
      await newWorker(db, 'pause');
      await markOnline(db, 'pause', online('i1', T0));
      expect(await setPausedReason(db, 'pause', 'paused by admin')).toBe(true);
      expect(await getWorker(db, 'pause')).toMatchObject({ state: 'online', pausedReason: 'paused by admin' });
      expect(await setPausedReason(db, 'pause', null)).toBe(true);
      expect((await getWorker(db, 'pause'))?.pausedReason).toBeNull();
      expect(await setPausedReason(db, 'nobody', 'x')).toBe(false);
    });

    it('renews a certificate', async () => {
      await newWorker(db, 'renew');
      expect(await updateCert(db, 'renew', 'f'.repeat(64), at('2027-01-01T00:00:00Z'))).toBe(true);
      expect(await getWorker(db, 'renew')).toMatchObject({ certFingerprint: 'f'.repeat(64), certNotAfter: at('2027-01-01T00:00:00Z') });
      expect(await updateCert(db, 'nobody', 'f'.repeat(64), T0)).toBe(false);
    });

    it('keeps a revoked worker revoked through every later transition', async () => {
      await newWorker(db, 'rev');
      await markOnline(db, 'rev', online('rev-run', later(5)));
      expect(await revokeWorker(db, 'rev', later(10))).toBe(true);
      expect(await revokeWorker(db, 'rev', later(20))).toBe(true);
      expect(await revokeWorker(db, 'nobody', later(10))).toBe(false);

      expect(await markOnline(db, 'rev', online('rev-run', later(30)))).toBeNull();
      expect(await markOffline(db, 'rev', later(40))).toBe(false);
      expect(await updateCert(db, 'rev', 'e'.repeat(64), later(50))).toBe(false);
      await touchLastSeen(db, [{ id: 'rev', at: later(60) }]);
      expect(await markInstanceWorkersOffline(db, 'rev-run', later(70))).toBe(0);

      expect(await getWorker(db, 'rev')).toMatchObject({
        state: 'revoked',
        revokedAt: later(10),
        stateChangedAt: later(10),
        instanceId: null,
        lastSeen: later(5),
      });
    });

    it('records the last-seen times of 1,000 workers in one statement', async () => {
      await db.query(
        `INSERT INTO workers (id, name, cert_fingerprint, cert_not_after, enrolled_at, state_changed_at)
         SELECT 'hb-' || i, 'hb-' || i, 'fp', $1, $1, $1 FROM generate_series(1, 1000) AS i`,
        [T0],
      );
      const entries = Array.from({ length: 1000 }, (_, i) => ({ id: `hb-${i + 1}`, at: later(1000 + i) }));
      // An older duplicate in the same batch must not win over the newer time.
      entries.push({ id: 'hb-1', at: later(1) });
      let statements = 0;
      const counting: Db = { ...db, query: (text, params) => ((statements += 1), db.query(text, params)) };

      const started = performance.now();
      await touchLastSeen(counting, entries);
      const ms = performance.now() - started;
      expect(statements).toBe(1);
      expect(ms).toBeLessThan(2000);

      const rows = await db.query<{ id: string; last_seen: Date }>(
        `SELECT id, last_seen FROM workers WHERE id LIKE 'hb-%' ORDER BY (substr(id, 4))::int`,
      );
      expect(rows).toHaveLength(1000);
      expect(rows.every((r, i) => r.last_seen.getTime() === later(1000 + i).getTime())).toBe(true);

      // An older heartbeat arriving late does not move last_seen back.
      await touchLastSeen(db, [{ id: 'hb-2', at: T0 }]);
      expect((await getWorker(db, 'hb-2'))?.lastSeen).toEqual(later(1001));
      await touchLastSeen(counting, []);
      expect(statements).toBe(1);
    });

    it('marks offline the workers a restarted instance held, and only those', async () => {
      for (const id of ['inst-a', 'inst-b', 'inst-c']) await newWorker(db, id);
      await markOnline(db, 'inst-a', online('old-run', T0));
      await markOnline(db, 'inst-b', online('old-run', T0));
      await markOnline(db, 'inst-c', online('other', T0));

      expect(await markInstanceWorkersOffline(db, 'old-run', later(100))).toBe(2);
      expect(await getWorker(db, 'inst-a')).toMatchObject({ state: 'offline', instanceId: null, stateChangedAt: later(100) });
      expect((await getWorker(db, 'inst-c'))?.state).toBe('online');
      expect(await getWorker(db, 'inst-b')).toMatchObject({ state: 'offline', instanceId: null });
      expect(await markInstanceWorkersOffline(db, 'old-run', later(100))).toBe(0);
    });
  });

  describe('enrollment tokens', () => {
    const make = (id: string, over: { expiresAt?: Date; maxUses?: number } = {}) =>
      createToken(db, {
        id,
        secretSha256: sha256(`secret-${id}`),
        description: `token ${id}`,
        expiresAt: over.expiresAt ?? later(3_600_000),
        maxUses: over.maxUses ?? 1,
        now: T0,
      });

    it('creates, lists and consumes a token', async () => {
      const created = await make('tok-ok', { maxUses: 2 });
      expect(created).toMatchObject({ id: 'tok-ok', uses: 0, maxUses: 2, revokedAt: null, description: 'token tok-ok' });
      expect(created.createdAt).toEqual(T0);
      expect((await listTokens(db)).map((t) => t.id)).toContain('tok-ok');

      expect((await consumeToken(db, 'tok-ok', 'secret-tok-ok', later(1))).uses).toBe(1);
      expect((await consumeToken(db, 'tok-ok', 'secret-tok-ok', later(2))).uses).toBe(2);
      expect(await codeOf(consumeToken(db, 'tok-ok', 'secret-tok-ok', later(3)))).toBe('GG_ERR_TOKEN_USED_UP');
    });

    it('refuses with exactly one code per failure', async () => {
      await make('tok-rev');
      await make('tok-exp', { expiresAt: later(1000) });
      expect(await codeOf(consumeToken(db, 'tok-none', 'secret', T0))).toBe('GG_ERR_TOKEN_INVALID');
      expect(await codeOf(consumeToken(db, 'tok-rev', 'wrong secret', T0))).toBe('GG_ERR_TOKEN_INVALID');

      expect(await revokeToken(db, 'tok-rev', later(5))).toBe(true);
      expect(await revokeToken(db, 'tok-none', later(5))).toBe(false);
      expect(await codeOf(consumeToken(db, 'tok-rev', 'secret-tok-rev', later(10)))).toBe('GG_ERR_TOKEN_REVOKED');
      // Without the secret, a revoked token looks like any wrong guess.
      expect(await codeOf(consumeToken(db, 'tok-rev', 'wrong secret', later(10)))).toBe('GG_ERR_TOKEN_INVALID');
      expect((await getToken(db, 'tok-rev'))?.revokedAt).toEqual(later(5));

      expect(await codeOf(consumeToken(db, 'tok-exp', 'secret-tok-exp', later(1000)))).toBe('GG_ERR_TOKEN_EXPIRED');
      expect((await getToken(db, 'tok-exp'))?.uses).toBe(0);
    });

    it('lets exactly one of five concurrent consumers use a 1-use token', async () => {
      await make('tok-race');
      const results = await Promise.allSettled([1, 2, 3, 4, 5].map(() => consumeToken(db, 'tok-race', 'secret-tok-race', later(1))));
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as { code?: string }] : []));
      expect(won).toHaveLength(1);
      expect(lost.map((e) => e.code)).toEqual(Array(4).fill('GG_ERR_TOKEN_USED_UP'));
      expect((await getToken(db, 'tok-race'))?.uses).toBe(1);
    });
  });

  describe('api keys', () => {
    it('stores, finds and counts keys by hash', async () => {
      expect(await countApiKeys(db)).toBe(0);
      const key = await createApiKey(db, { id: 'admin', keySha256: sha256('k1'), name: 'first', scope: 'admin', now: T0 });
      expect(key).toEqual({ id: 'admin', keySha256: sha256('k1'), name: 'first', scope: 'admin', createdAt: T0, lastUsedAt: null, revokedAt: null });
      await createApiKey(db, { id: 'ci', keySha256: sha256('k2'), name: 'ci', scope: 'inference', now: T0 });
      expect(await findApiKeyBySha256(db, sha256('k2'))).toMatchObject({ id: 'ci', scope: 'inference' });
      expect(await findApiKeyBySha256(db, sha256('nope'))).toBeNull();
      expect(await countApiKeys(db)).toBe(2);
      await expect(createApiKey(db, { id: 'dup', keySha256: sha256('k1'), name: '', scope: 'admin', now: T0 })).rejects.toThrow(/unique|duplicate/i);
    });

    it('refuses a scope it does not know', async () => {
      await expect(db.query("INSERT INTO api_keys (id, key_sha256, name, scope, created_at) VALUES ('x', $1, '', 'root', now())", [sha256('x')])).rejects.toThrow(/check/i);
    });

    it('lists keys oldest first, records a use, and revokes a key once', async () => {
      expect((await listApiKeys(db)).map((k) => k.id)).toEqual(['admin', 'ci']);
      await markApiKeyUsed(db, 'ci', later(5));
      expect(await getApiKey(db, 'ci')).toMatchObject({ lastUsedAt: later(5) });
      expect(await revokeApiKey(db, 'ci', later(10))).toMatchObject({ id: 'ci', revokedAt: later(10) });
      // Revoking again keeps the first time; the key is still found, so a caller can say it was revoked.
      expect(await revokeApiKey(db, 'ci', later(20))).toMatchObject({ revokedAt: later(10) });
      expect(await findApiKeyBySha256(db, sha256('k2'))).toMatchObject({ revokedAt: later(10) });
      expect(await revokeApiKey(db, 'nope', later(20))).toBeNull();
    });

    it('never revokes the last active admin key, even when two revocations race', async () => {
      expect(await codeOf(revokeApiKey(db, 'admin', later(30)))).toBe('GG_ERR_LAST_ADMIN_KEY');
      await createApiKey(db, { id: 'admin-2', keySha256: sha256('k3'), name: 'second', scope: 'admin', now: T0 });
      const results = await Promise.allSettled([revokeApiKey(db, 'admin', later(40)), revokeApiKey(db, 'admin-2', later(40))]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code?: string }).code] : []))).toEqual(['GG_ERR_LAST_ADMIN_KEY']);
      expect((await listApiKeys(db)).filter((k) => k.scope === 'admin' && !k.revokedAt)).toHaveLength(1);
    });
  });
});

describe('PGlite data directory', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gogrid-store-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps its rows across a close and reopen (coordinator restart)', async () => {
    const url = `pglite://${join(dir, 'db')}`;
    const first = await openDb(url);
    try {
      expect(await migrate(first)).toEqual(MIGRATIONS.map((m) => m.version));
      await newWorker(first, 'persisted');
      await markOnline(first, 'persisted', online('run-1', later(1)));
    } finally {
      await first.close();
    }

    const second = await openDb(url);
    try {
      expect(await migrate(second)).toEqual([]);
      expect(await getWorker(second, 'persisted')).toMatchObject({ state: 'online', instanceId: 'run-1', hardware });
      expect(await markInstanceWorkersOffline(second, 'run-1', later(2))).toBe(1);
    } finally {
      await second.close();
    }
  });
});

describe('openDb', () => {
  it('rejects a URL of no supported form', async () => {
    await expect(openDb('mysql://root:hunter2@db/gogrid')).rejects.toMatchObject({
      code: 'GG_ERR_CONFIG_INVALID',
      message: expect.not.stringContaining('hunter2'),
    });
  });

  it.runIf(PG_URL !== undefined)('fails at open, without the password in the message, when PostgreSQL refuses', async () => {
    const wrong = new URL(PG_URL ?? '');
    wrong.password = 'definitely-wrong';
    const err = await openDb(wrong.toString()).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'GG_ERR_DATABASE_UNREACHABLE' });
    expect((err as Error).message).toMatch(/^cannot connect to the database at postgres:\/\/gogrid:\*\*\*@.*password authentication failed.*; check the user and password in \[database\] url$/);
    expect((err as Error).message).not.toContain('definitely-wrong');
  });

  it('says a PostgreSQL that is not running is not running, with the URL and without its password', async () => {
    // A port nothing listens on: bound and closed again.
    const free = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as net.AddressInfo;
        s.close(() => resolve(port));
      });
    });
    await expect(openDb(`postgres://gogrid:secret-pw@127.0.0.1:${free}/gogrid`)).rejects.toMatchObject({
      code: 'GG_ERR_DATABASE_UNREACHABLE',
      message: expect.stringMatching(new RegExp(`^cannot connect to the database at postgres://gogrid:\\*\\*\\*@127\\.0\\.0\\.1:${free}/gogrid: nothing listens there .*; is PostgreSQL running, and on that host and port\\?$`)),
    });
  });
});
