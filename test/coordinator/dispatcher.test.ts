/**
 * Leases as the dispatcher hands them out and takes them back, with workers
 * on in-memory channels (test/helpers/session-rig.ts) and a real store.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/coordinator/store/db.js';
import { getJob, getJobEvents } from '../../src/coordinator/store/index.js';
import type { SubmitJobRequest } from '../../src/protocol/index.js';
import { backends, useMigratedDb } from '../helpers/backends.js';
import { sessionRig, type RigWorker, type SessionRig } from '../helpers/session-rig.js';

const MODEL = { sha256: 'b'.repeat(64), size: 10, name: 'm.onnx' };
const request = (o: Partial<SubmitJobRequest> = {}): SubmitJobRequest => ({
  kind: 'onnx',
  model: { sha256: MODEL.sha256 },
  input: { inputs: { x: { dtype: 'float32', dims: [1], data: [1] } } },
  requirements: {},
  timeoutMs: 60_000,
  maxAttempts: 3,
  priority: 0,
  ...o,
});
const OUTPUT = { outputs: { y: { dtype: 'float32', dims: [1], data: [2] } } };

for (const backend of backends) {
  describe(`dispatcher leases (${backend.name})`, () => {
    let db: Db;
    useMigratedDb(backend, (opened) => (db = opened));
    let rig: SessionRig;
    let n = 0;

    beforeEach(async () => {
      rig = await sessionRig(db);
    });
    afterEach(async () => {
      await rig.stop();
      // Each test starts from an empty queue: the next rig would lease what this one left.
      await db.exec('DELETE FROM job_events; DELETE FROM jobs;');
    });

    /** A connected worker that has read its welcome and is schedulable. */
    const worker = async (slots = 1): Promise<RigWorker> => {
      const online = new Promise<void>((resolve) => rig.sessions.once('online', () => resolve()));
      const w = await rig.connect(await rig.enroll(`w-d${++n}`), { executors: ['onnx'], slots });
      await w.next('welcome');
      await online;
      return w;
    };
    const finished = (jobId: string) =>
      new Promise<void>((resolve) => {
        const on = (row: { id: string }) => {
          if (row.id !== jobId) return;
          rig.dispatcher.off('finished', on);
          resolve();
        };
        rig.dispatcher.on('finished', on);
      });

    it('writes a short job’s start with its result, from the run time the result reports', async () => {
      const w = await worker();
      const job = await rig.dispatcher.submit(request(), MODEL);
      const assign = await w.next('job.assign');
      const done = finished(job.id);
      await w.send({ type: 'job.result', jobId: job.id, leaseId: assign.leaseId, runMs: 1500, outcome: { ok: true, output: OUTPUT } });
      await done;
      const row = (await getJob(db, job.id))!;
      expect(row.state).toBe('succeeded');
      expect(row.finishedAt!.getTime() - row.startedAt!.getTime()).toBe(1500);
      expect((await getJobEvents(db, job.id)).map((e) => e.state)).toEqual(['queued', 'leased', 'running', 'succeeded']);
    });

    it('marks a job running at its first progress, and keeps that start when the result comes', async () => {
      const w = await worker();
      const job = await rig.dispatcher.submit(request(), MODEL);
      const assign = await w.next('job.assign');
      expect(await rig.dispatcher.takeJobMessage(w.workerId, { type: 'job.progress', jobId: job.id, leaseId: assign.leaseId, progress: 0 })).toBe(true);
      const running = (await getJob(db, job.id))!;
      expect(running.state).toBe('running');
      expect(await rig.dispatcher.takeJobMessage(w.workerId, { type: 'job.progress', jobId: job.id, leaseId: assign.leaseId, progress: 0.5 })).toBe(true);
      const done = finished(job.id);
      await w.send({ type: 'job.result', jobId: job.id, leaseId: assign.leaseId, runMs: 10_000_000, outcome: { ok: true, output: OUTPUT } });
      await done;
      expect((await getJob(db, job.id))!.startedAt).toEqual(running.startedAt);
    });

    it('takes messages only under the lease the worker holds', async () => {
      const [a, b] = [await worker(), await worker()];
      const job = await rig.dispatcher.submit(request(), MODEL);
      const holder = await Promise.race([a.next('job.assign').then(() => a), b.next('job.assign').then(() => b)]);
      const other = holder === a ? b : a;
      const row = (await getJob(db, job.id))!;
      const result = (leaseId: string) => ({ type: 'job.result' as const, jobId: job.id, leaseId, outcome: { ok: true as const, output: OUTPUT } });
      expect(rig.dispatcher.holdsLease(holder.workerId, job.id, row.leaseId!)).toBe(true);
      expect(await rig.dispatcher.takeJobMessage(holder.workerId, result('l-forged'))).toBe(false);
      expect(await rig.dispatcher.takeJobMessage(other.workerId, result(row.leaseId!))).toBe(false);
      expect((await getJob(db, job.id))!.state).toBe('leased');
      expect(await rig.dispatcher.takeJobMessage(holder.workerId, result(row.leaseId!))).toBe(true);
      expect(rig.dispatcher.holdsLease(holder.workerId, job.id, row.leaseId!)).toBe(false);
    });

    it('queues a job again when its worker hangs up, and leases it to another', async () => {
      const a = await worker();
      const job = await rig.dispatcher.submit(request(), MODEL);
      const first = await a.next('job.assign');
      a.drop();
      const b = await worker();
      const second = await b.next('job.assign');
      expect(second.job).toMatchObject({ jobId: job.id, attempt: 2 });
      expect(second.leaseId).not.toBe(first.leaseId);
    });

    it('gives the next attempt what a lost one streamed, its text and tokens, to continue from', async () => {
      const a = await worker();
      const job = await rig.dispatcher.submit(request(), MODEL);
      const first = await a.next('job.assign');
      expect(first.job.resumeFrom).toBeUndefined();
      const partial = (offset: number, text: string, tokens?: number[]) =>
        rig.dispatcher.takeJobMessage(a.workerId, { type: 'job.partial', jobId: job.id, leaseId: first.leaseId, offset, text, ...(tokens && { tokens }) });
      await partial(0, 'Hel', [1]);
      await partial(3, 'lo', [2, 3]);
      a.drop();
      const b = await worker();
      expect((await b.next('job.assign')).job).toMatchObject({ attempt: 2, resumeFrom: { text: 'Hello', tokens: [1, 2, 3] } });
    });

    it('resumes from the text alone once a piece came without tokens, and from nothing after a gap', async () => {
      const a = await worker();
      const job = await rig.dispatcher.submit(request(), MODEL);
      const assign = await a.next('job.assign');
      const partial = (leaseId: string, offset: number, text: string, tokens?: number[]) =>
        rig.dispatcher.takeJobMessage(a.workerId, { type: 'job.partial', jobId: job.id, leaseId, offset, text, ...(tokens && { tokens }) });
      await partial(assign.leaseId, 0, 'Hel', [1]);
      await partial(assign.leaseId, 3, 'lo');
      await a.send({ type: 'job.release', jobId: job.id, leaseId: assign.leaseId, reason: 'owner is back' });
      const again = await a.next('job.assign');
      expect(again.job.resumeFrom).toEqual({ text: 'Hello' });
      // This attempt says it starts at 5 of a text it never sent: what it streamed is not the job's output.
      await partial(again.leaseId, 5, ', world', [4]);
      a.drop();
      const b = await worker();
      const third = await b.next('job.assign');
      // What the earlier attempt kept stays: only a continuation the coordinator can vouch for replaces it.
      expect(third.job.resumeFrom).toEqual({ text: 'Hello' });
    });

    it('tells the worker to stop a job canceled while it runs', async () => {
      const w = await worker();
      const job = await rig.dispatcher.submit(request(), MODEL);
      const assign = await w.next('job.assign');
      expect((await rig.dispatcher.cancel(job.id))?.state).toBe('leased');
      expect(await w.next('job.cancel')).toMatchObject({ jobId: job.id, leaseId: assign.leaseId, reason: 'canceled by an administrator' });
      expect(rig.dispatcher.holdsLease(w.workerId, job.id, assign.leaseId)).toBe(false);
      expect((await getJob(db, job.id))!.state).toBe('canceled');
    });

    it('releases the leases of a replaced session, not the new session’s', async () => {
      const old = await worker();
      const job = await rig.dispatcher.submit(request(), MODEL);
      const first = await old.next('job.assign');
      const online = new Promise<void>((resolve) => rig.sessions.once('online', () => resolve()));
      const renewed = await rig.connect({ workerId: old.workerId, certDer: old.peer.peerCertificate! }, { executors: ['onnx'], slots: 1 });
      await renewed.next('welcome');
      await online;
      const again = await renewed.next('job.assign');
      expect(again.job).toMatchObject({ jobId: job.id, attempt: 2 });
      expect(rig.dispatcher.holdsLease(old.workerId, job.id, first.leaseId)).toBe(false);
      expect(rig.dispatcher.holdsLease(old.workerId, job.id, again.leaseId)).toBe(true);
      expect((await getJob(db, job.id))!.leaseId).toBe(again.leaseId);
    });

    it('fills a worker’s free slots and no more', async () => {
      const w = await worker(2);
      const jobs = await rig.dispatcher.submitMany([1, 2, 3].map(() => ({ request: request(), model: MODEL })));
      const assigned = [(await w.next('job.assign')).job.jobId, (await w.next('job.assign')).job.jobId];
      expect(assigned.sort()).toEqual([jobs[0]!.id, jobs[1]!.id].sort());
      rig.dispatcher.kick(true);
      await expect.poll(async () => (await getJob(db, jobs[2]!.id))?.waitingReason, { timeout: 5000 }).toBeTruthy();
      expect((await getJob(db, jobs[2]!.id))!.state).toBe('queued');
    });
  });
}
