/**
 * The session layer without QUIC: workers connect through in-memory channels
 * to a real SessionManager and Dispatcher on a real store. The QUIC paths are
 * covered by test/integration; these pin what a session does, step by step.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Db } from '../../src/coordinator/store/db.js';
import { getJob, getWorker, revokeWorker, setWorkerPolicy } from '../../src/coordinator/store/index.js';
import { backends, useMigratedDb } from '../helpers/backends.js';
import { sessionRig, type SessionRig } from '../helpers/session-rig.js';
import { memoryConnection } from '../helpers/memory-peer.js';
import { frameReader, helloFrame } from '../helpers/raw-worker.js';

const MODEL = { sha256: 'a'.repeat(64), size: 10, name: 'm.onnx' };
const INPUT = { inputs: { x: { dtype: 'float32', dims: [1], data: [1] } } };

/** A Db whose policy reads return only once `open()` is called: the moment between loading a worker's policy and welcoming it. */
function gatePolicies(db: Db): { db: Db; open(): void; reached: Promise<void> } {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let reached: () => void = () => undefined;
  const reachedP = new Promise<void>((resolve) => (reached = resolve));
  return {
    db: {
      ...db,
      async query(text, params) {
        const rows = await db.query(text, params);
        if (text.includes('admin_policy AS worker')) {
          reached();
          await gate;
        }
        return rows as never;
      },
    },
    open: () => open(),
    reached: reachedP,
  };
}

for (const backend of backends) {
  describe(`sessions (${backend.name})`, () => {
    let db: Db;
    useMigratedDb(backend, (opened) => (db = opened));
    let rig: SessionRig;
    let n = 0;
    const id = () => `w-s${++n}`;

    beforeEach(async () => {
      rig = await sessionRig(db);
    });
    afterEach(async () => {
      await rig.stop();
    });

    it('welcomes an enrolled worker with its settings and records it online', async () => {
      const online = new Promise<string>((resolve) => rig.sessions.once('online', resolve));
      const w = await rig.connect(await rig.enroll(id()));
      const welcome = await w.frame();
      expect(welcome).toMatchObject({ type: 'welcome', workerId: w.workerId, heartbeatIntervalSecs: 30, heartbeatTimeoutSecs: 90, adminPolicy: {} });
      expect(await online).toBe(w.workerId);
      expect((await getWorker(db, w.workerId))?.state).toBe('online');
      expect(rig.sessions.views().map((v) => v.id)).toContain(w.workerId);
    });

    it.each([
      ['no certificate', 'GG_ERR_UNAUTHENTICATED', async () => ({ certDer: null, hello: await helloFrame('w-nocert') })],
      ['a hello naming another worker', 'GG_ERR_UNAUTHENTICATED', async () => ({ certDer: (await rig.enroll(id())).certDer, hello: await helloFrame('w-other') })],
      [
        'another message before hello',
        'GG_ERR_MESSAGE_UNEXPECTED',
        async () => ({ certDer: (await rig.enroll(id())).certDer, hello: { type: 'error', code: 'GG_ERR_INTERNAL', message: 'hi', fatal: false } }),
      ],
      ['a frame that is not a message', 'GG_ERR_FRAME_INVALID', async () => ({ certDer: (await rig.enroll(id())).certDer, hello: { type: 'hello' } })],
      [
        'an unsupported protocol version',
        'GG_ERR_PROTOCOL_VERSION_UNSUPPORTED',
        async () => {
          const e = await rig.enroll(id());
          return { certDer: e.certDer, hello: { ...(await helloFrame(e.workerId)), protocolVersion: 99 } };
        },
      ],
      [
        'a worker the store does not know',
        'GG_ERR_WORKER_UNKNOWN',
        async () => {
          const e = await rig.enroll(id());
          await db.query('DELETE FROM workers WHERE id = $1', [e.workerId]);
          return { certDer: e.certDer, hello: await helloFrame(e.workerId) };
        },
      ],
      [
        'a revoked worker',
        'GG_ERR_WORKER_REVOKED',
        async () => {
          const e = await rig.enroll(id());
          await revokeWorker(db, e.workerId, new Date());
          return { certDer: e.certDer, hello: await helloFrame(e.workerId) };
        },
      ],
    ])('refuses %s with %s and closes the connection', async (_what, code, make) => {
      const { certDer, hello } = await make();
      const conn = memoryConnection({ certDer });
      rig.sessions.handlePeer(conn.peer);
      await conn.client.send(hello);
      const frames = frameReader(conn.client);
      expect(await frames.frame()).toMatchObject({ type: 'error', code, fatal: true });
      await conn.closed;
      expect(rig.sessions.onlineCount).toBe(0);
    });

    it('sends no job.assign before the welcome, even when a job waits and a pass runs meanwhile', async () => {
      await rig.stop();
      const gated = gatePolicies(db);
      rig = await sessionRig(gated.db);
      const job = await rig.dispatcher.submit({ kind: 'onnx', model: { sha256: MODEL.sha256 }, input: INPUT, requirements: {}, timeoutMs: 60_000, maxAttempts: 3, priority: 0 }, MODEL);
      const w = await rig.connect(await rig.enroll(id()));
      await gated.reached;
      // A full pass while the welcome is held: the worker is not schedulable yet, so the job waits.
      rig.dispatcher.kick(true);
      await expect.poll(async () => (await getJob(db, job.id))?.waitingReason, { timeout: 5000 }).toBeTruthy();
      expect((await getJob(db, job.id))?.state).toBe('queued');
      gated.open();
      expect((await w.frame()).type).toBe('welcome');
      const assign = await w.frame();
      expect(assign).toMatchObject({ type: 'job.assign', job: { jobId: job.id } });
    });

    it('sends a policy changed while the session was being set up, after the welcome', async () => {
      await rig.stop();
      const gated = gatePolicies(db);
      rig = await sessionRig(gated.db);
      const w = await rig.connect(await rig.enroll(id()));
      await gated.reached;
      await setWorkerPolicy(db, w.workerId, { paused: true });
      expect(await rig.sessions.pushPolicy(w.workerId)).toBe(0); // not registered yet: nobody to send it to
      gated.open();
      expect(await w.frame()).toMatchObject({ type: 'welcome', adminPolicy: {} });
      expect(await w.frame()).toMatchObject({ type: 'worker.policy', adminPolicy: { paused: true } });
      expect(rig.sessions.views().find((v) => v.id === w.workerId)?.paused).toBe(true);
    });

    it('tells the scheduler which models a worker has cached and loaded, as its heartbeats say, and that something changed', async () => {
      const online = new Promise<string>((resolve) => rig.sessions.once('online', resolve));
      const w = await rig.connect(await rig.enroll(id()));
      await w.next('welcome');
      await online;
      const view = () => rig.sessions.views().find((v) => v.id === w.workerId)!;
      expect(view().loadedModels).toEqual(new Set());
      const capacity = new Promise<string>((resolve) => rig.sessions.once('capacity', resolve));
      await w.send({ type: 'heartbeat', status: 'idle', load: { cpu: 0, freeMemoryBytes: 0 }, cachedModels: ['a'.repeat(64), 'b'.repeat(64)], loadedModels: ['b'.repeat(64)] });
      expect(await capacity).toBe(w.workerId);
      expect(view()).toMatchObject({ cachedModels: new Set(['a'.repeat(64), 'b'.repeat(64)]), loadedModels: new Set(['b'.repeat(64)]) });
      // A heartbeat without the lists leaves them as they were.
      const beat = new Promise<void>((resolve) => rig.sessions.once('heartbeat', () => resolve()));
      await w.send({ type: 'heartbeat', status: 'idle', load: { cpu: 0, freeMemoryBytes: 0 } });
      await beat;
      expect(view().loadedModels).toEqual(new Set(['b'.repeat(64)]));
    });

    it('lets the newest connection of a worker win and keeps it online', async () => {
      const identity = await rig.enroll(id());
      const first = await rig.connect(identity);
      await first.next('welcome');
      const second = await rig.connect(identity);
      await second.next('welcome');
      expect(await first.next('error')).toMatchObject({ code: 'GG_ERR_SESSION_REPLACED' });
      await first.closed;
      expect(rig.sessions.onlineCount).toBe(1);
      expect((await getWorker(db, identity.workerId))?.state).toBe('online');
    });

    it('disconnects a revoked worker and records it offline', async () => {
      const online = new Promise<string>((resolve) => rig.sessions.once('online', resolve));
      const w = await rig.connect(await rig.enroll(id()));
      await online;
      const offline = new Promise<string>((resolve) => rig.sessions.once('offline', resolve));
      await revokeWorker(db, w.workerId, new Date());
      expect(await rig.sessions.disconnect(w.workerId, 'GG_ERR_WORKER_REVOKED', 'revoked')).toBe(true);
      expect(await w.next('error')).toMatchObject({ code: 'GG_ERR_WORKER_REVOKED' });
      expect(await offline).toBe(w.workerId);
      expect(rig.sessions.onlineCount).toBe(0);
    });

    it('closes a session whose worker sends a second hello', async () => {
      const w = await rig.connect(await rig.enroll(id()));
      await w.next('welcome');
      await w.send(await helloFrame(w.workerId));
      expect(await w.next('error')).toMatchObject({ code: 'GG_ERR_MESSAGE_UNEXPECTED', message: 'hello sent twice' });
      await w.closed;
    });

    it('records a worker that hangs up as offline', async () => {
      const w = await rig.connect(await rig.enroll(id()));
      await w.next('welcome');
      const offline = new Promise<string>((resolve) => rig.sessions.once('offline', resolve));
      w.drop();
      expect(await offline).toBe(w.workerId);
      expect((await getWorker(db, w.workerId))?.state).toBe('offline');
    });
  });
}

describe('sessions: heartbeat timeout', () => {
  const backend = backends[0]!;
  let db: Db;
  useMigratedDb(backend, (opened) => (db = opened));

  it('drops a worker that stops heartbeating', async () => {
    const rig = await sessionRig(db, { timing: { heartbeatTimeoutSecs: 0.2 } });
    try {
      const offline = new Promise<string>((resolve) => rig.sessions.once('offline', resolve));
      const w = await rig.connect(await rig.enroll('w-silent'));
      await w.next('welcome');
      expect(await w.next('error')).toMatchObject({ code: 'GG_ERR_HEARTBEAT_TIMEOUT' });
      expect(await offline).toBe('w-silent');
      expect((await getWorker(db, 'w-silent'))?.state).toBe('offline');
    } finally {
      await rig.stop();
    }
  });

  it('keeps a session through a step of the wall clock: liveness is timed on the monotonic clock', async () => {
    const rig = await sessionRig(db, { timing: { heartbeatTimeoutSecs: 2 } });
    try {
      const w = await rig.connect(await rig.enroll('w-clock'));
      await w.next('welcome');
      // An NTP step (or a suspended VM resumed) puts the wall clock an hour ahead.
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + 3_600_000);
      // Three sweeps (every 500 ms here), well inside the 2 s timeout by the monotonic clock.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(rig.sessions.views().map((v) => v.id)).toContain('w-clock');
    } finally {
      vi.useRealTimers();
      await rig.stop();
    }
  });

  it('holds a worker with busy heartbeats to the busy timeout once it has a job; one without them, and an idle one, to the usual', async () => {
    const rig = await sessionRig(db, { timing: { heartbeatTimeoutSecs: 30, busyHeartbeatIntervalSecs: 0.1, busyHeartbeatTimeoutSecs: 0.3 } });
    try {
      const busy = await rig.connect(await rig.enroll('w-busy'), { executors: ['onnx'], slots: 1, busyHeartbeats: true } as never);
      const old = await rig.connect(await rig.enroll('w-old'), { executors: ['onnx'], slots: 1 });
      const idle = await rig.connect(await rig.enroll('w-idle'), { executors: [], slots: 1, busyHeartbeats: true } as never);
      expect(await busy.next('welcome')).toMatchObject({ busyHeartbeatIntervalSecs: 0.1, busyHeartbeatTimeoutSecs: 0.3 });
      await old.next('welcome');
      await idle.next('welcome');
      const submit = () => rig.dispatcher.submit({ kind: 'onnx', model: { sha256: MODEL.sha256 }, input: INPUT, requirements: {}, timeoutMs: 60_000, maxAttempts: 3, priority: 0 }, MODEL);
      const jobs = [await submit(), await submit()];
      const assigned = (await busy.next('job.assign')) as { job: { jobId: string } };
      await old.next('job.assign');
      const t0 = performance.now();
      // Silent from here: the busy one is lost after its busy timeout (the sweep runs every 75 ms).
      expect(await busy.next('error')).toMatchObject({ code: 'GG_ERR_HEARTBEAT_TIMEOUT', message: 'no heartbeat for 0.3 s while running jobs' });
      expect(performance.now() - t0).toBeLessThan(5000);
      await expect.poll(async () => (await getJob(db, assigned.job.jobId))?.state, { timeout: 5000 }).toBe('queued');
      expect((await getWorker(db, 'w-old'))?.state).toBe('online');
      expect((await getWorker(db, 'w-idle'))?.state).toBe('online');
      expect(jobs).toHaveLength(2);
    } finally {
      await rig.stop();
    }
  });
});
