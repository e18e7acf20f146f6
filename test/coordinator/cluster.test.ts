/**
 * The cluster bus between coordinator instances (src/coordinator/cluster.ts):
 * on real PostgreSQL when GOGRID_TEST_PG_URL is set, and silent on PGlite.
 */
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterChannel, openCluster, type Cluster } from '../../src/coordinator/cluster.js';
import { openDb, type Db } from '../../src/coordinator/store/index.js';
import { listenPostgres } from '../../src/coordinator/store/postgres.js';
import type { ClusterEvent } from '../../src/protocol/cluster.js';
import { PG_URL } from '../helpers/backends.js';
import { silent } from '../helpers/grid.js';
import { within } from '../helpers/within.js';

/** Collects a cluster's events; `until(pred)` resolves once they satisfy it, and fails after 10 s. */
function inbox(cluster: Cluster) {
  const events: ClusterEvent[] = [];
  cluster.on('event', (e) => events.push(e));
  return {
    events,
    until(pred: (es: ClusterEvent[]) => boolean): Promise<void> {
      const arrived = (async () => {
        while (!pred(events)) await once(cluster, 'event');
      })();
      return within(10_000, () => `the cluster events awaited (got ${JSON.stringify(events)})`, arrived);
    },
  };
}

describe('on PGlite', () => {
  it('sends nothing and hears nothing: one instance holds the database', async () => {
    const db = await openDb('memory://');
    const cluster = await openCluster({ db, databaseUrl: 'memory://', instanceId: 'c-1', logger: silent });
    try {
      const heard: ClusterEvent[] = [];
      cluster.on('event', (e) => heard.push(e));
      cluster.publish({ type: 'jobs.queued' });
      await new Promise((resolve) => setImmediate(resolve));
      expect(heard).toEqual([]);
    } finally {
      await cluster.close();
      await db.close();
    }
  });
});

describe.runIf(PG_URL !== undefined)('on PostgreSQL', () => {
  const schema = `gg_bus_${process.pid}_${randomBytes(4).toString('hex')}`;
  let admin: Db;
  const dbs: Db[] = [];
  /** Resolves once each of the clusters has heard from all the others. */
  const acquainted = async (...clusters: Cluster[]) => {
    for (const c of clusters) await expect.poll(() => c.peers().length, { timeout: 5000, interval: 10 }).toBe(clusters.length - 1);
  };
  const open = async (instanceId: string, inSchema = schema) => {
    const u = new URL(PG_URL!);
    u.searchParams.set('options', `-c search_path=${inSchema}`);
    const db = await openDb(u.toString(), { poolSize: 2 });
    dbs.push(db);
    return openCluster({ db, databaseUrl: u.toString(), instanceId, logger: silent });
  };

  /** Instances a and b of one grid, acquainted, with b's inbox; closed after `fn`. */
  const pair = async (fn: (a: Cluster, b: Cluster, atB: ReturnType<typeof inbox>) => Promise<void>) => {
    const [a, b] = [await open('c-a'), await open('c-b')];
    try {
      const atB = inbox(b);
      await acquainted(a, b);
      await fn(a, b, atB);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  };

  beforeAll(async () => {
    admin = await openDb(PG_URL!, { poolSize: 1 });
    await admin.exec(`CREATE SCHEMA ${schema}; CREATE SCHEMA ${schema}_other`);
  });
  afterAll(async () => {
    await Promise.all(dbs.map((d) => d.close()));
    await admin.exec(`DROP SCHEMA ${schema} CASCADE; DROP SCHEMA ${schema}_other CASCADE`);
    await admin.close();
  });

  it('sends nothing but its presence while it has heard of no other instance', async () => {
    const seen: string[] = [];
    await admin.exec(`CREATE SCHEMA ${schema}_alone`);
    const stop = await listenPostgres(PG_URL!, clusterChannel(`${schema}_alone`), { onNotify: (p) => seen.push(p), onReconnect() {}, onError() {} });
    const alone = await open('c-alone', `${schema}_alone`);
    let other: Cluster | undefined;
    try {
      await expect.poll(() => seen.length, { timeout: 5000 }).toBe(1);
      alone.publish({ type: 'jobs.queued' });
      alone.publish({ type: 'jobs.finished', jobIds: ['j-1'] });
      // A second instance says it is there; the two greet each other, and that is all that goes out.
      other = await open('c-other', `${schema}_alone`);
      await acquainted(alone, other);
      await expect.poll(() => seen.length, { timeout: 5000 }).toBe(4);
      const alive = (from: string) => ({ from, events: [{ type: 'instance.alive' }] });
      expect(seen.map((p) => JSON.parse(p) as unknown)).toEqual([alive('c-alone'), alive('c-other'), alive('c-alone'), alive('c-other')]);
    } finally {
      await other?.close();
      await alone.close();
      await stop();
      await admin.exec(`DROP SCHEMA ${schema}_alone CASCADE`);
    }
  });

  it("delivers one instance's events to the others, not back to itself nor to another schema's grid", async () => {
    const [a, b, stranger] = [await open('c-a'), await open('c-b'), await open('c-x', `${schema}_other`)];
    try {
      const [fromA, atB, atStranger] = [inbox(a), inbox(b), inbox(stranger)];
      await acquainted(a, b);
      expect(stranger.peers()).toEqual([]);
      a.publish({ type: 'jobs.queued' });
      a.publish({ type: 'lease.ended', jobId: 'j-1', workerId: 'w-1', reason: 'canceled by an administrator' });
      a.publish({ type: 'jobs.queued' });
      a.publish({ type: 'jobs.finished', jobIds: ['j-1'] });
      a.publish({ type: 'jobs.finished', jobIds: ['j-2', 'j-1'] });
      await atB.until((es) => es.some((e) => e.type === 'jobs.finished'));
      // Gathered in one turn: one jobs.queued, the finished ones merged.
      expect(atB.events).toEqual([
        { type: 'jobs.queued' },
        { type: 'lease.ended', jobId: 'j-1', workerId: 'w-1', reason: 'canceled by an administrator' },
        { type: 'jobs.finished', jobIds: ['j-1', 'j-2'] },
      ]);
      // b's own event goes to a; by then a would also have heard its own, had it been echoed.
      b.publish({ type: 'policy.changed', workerId: null });
      await fromA.until((es) => es.length > 0);
      expect(fromA.events).toEqual([{ type: 'policy.changed', workerId: null }]);
      expect(atStranger.events).toEqual([]);
    } finally {
      await Promise.all([a.close(), b.close(), stranger.close()]);
    }
  });

  it('splits a list of finished jobs too long for one notification', () =>
    pair(async (a, _b, atB) => {
      const ids = Array.from({ length: 1500 }, (_, i) => `j-${String(i).padStart(20, '0')}`);
      a.publish({ type: 'jobs.finished', jobIds: ids });
      const heard = () => atB.events.flatMap((e) => (e.type === 'jobs.finished' ? e.jobIds : []));
      await atB.until(() => heard().length >= ids.length);
      expect(heard()).toEqual(ids);
      expect(atB.events.length).toBeGreaterThan(1);
    }));

  it('ignores a notification it does not understand, and hears the next one', () =>
    pair(async (a, _b, atB) => {
      const channel = clusterChannel(schema);
      await admin.query('SELECT pg_notify($1, $2)', [channel, '{"from":"c-evil","events":[{"type":"jobs.delete-all"}]}']);
      await admin.query('SELECT pg_notify($1, $2)', [channel, 'not json']);
      a.publish({ type: 'jobs.queued' });
      await atB.until((es) => es.length > 0);
      expect(atB.events).toEqual([{ type: 'jobs.queued' }]);
    }));

  it('listens again after its connection is killed, and says events may have been missed', () =>
    pair(async (a, b, atB) => {
      const resynced = once(b, 'resync');
      // This schema's listeners only (a's and b's): other test files may be listening on theirs.
      await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = $1`, [`LISTEN ${clusterChannel(schema)}`]);
      await resynced;
      a.publish({ type: 'jobs.queued' });
      await atB.until((es) => es.length > 0);
      expect(atB.events).toEqual([{ type: 'jobs.queued' }]);
    }));
});
