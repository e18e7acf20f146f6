/**
 * Moves jobs between the store and the workers: leases queued jobs to the
 * workers the scheduler picks, takes progress and results (only for the
 * current lease), renews leases from heartbeats, and puts jobs back in the
 * queue when a worker goes away or a lease expires.
 *
 *   const d = new Dispatcher({ db, sessions, instanceId, ...runtimeSettings(config).dispatch, logger });
 *   d.start();
 *   const job = await d.submit(request, model);     // queued, and a pass is on its way
 *   const jobs = await d.submitMany([{ request, model }, …]); // one statement for all of them
 *   d.on('finished', (row) => …);                    // succeeded, failed or canceled here
 *
 * Passes are event-driven (submit, worker online, slot freed, resume, and
 * jobs queued through another coordinator instance on the same database, told
 * by the cluster) and coalesced; a slow poll also runs them, in case a
 * notification was lost.
 * An event's pass looks only as deep into the queue as the free slots need
 * (its plan is then the same as a full pass would make); the poll, or an
 * event pass that could not fill the free slots, reads a full batch and
 * also records why the jobs left queued are waiting.
 *
 * Which worker holds which lease is the LeaseTable's (leases.ts), which the
 * dispatcher alone changes; sessions only carry messages. New jobs, `running`
 * marks and results are written through JobWrites: one statement per kind for
 * everything that arrived meanwhile.
 *
 * With other instances on the same database (`cluster`), it tells them when
 * jobs become queued or final and when a cancel ends a lease, and acts on what
 * they tell: a pass, a job.cancel to its own worker, an answer to a waiting
 * client.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import {
  checkJobPayload,
  DEFAULT_QUEUE_TIMEOUT_MS,
  GridError,
  MAX_INLINE_PAYLOAD_BYTES,
  TERMINAL_JOB_STATES,
  type JobRequirements,
  type JobResult,
  type ModelRef,
  type SubmitJobRequest,
} from '../protocol/index.js';
import type { Db } from './store/db.js';
import {
  cancelJob,
  expireLeases,
  expireQueued,
  handBackJob,
  keepResumeFrom,
  forgetJobText,
  forgetSubmitKeys,
  getJob,
  insertJobsOnce,
  leaseJobs,
  listQueueHead,
  queuedJobRow,
  releaseInstanceLeases,
  releaseWorkerLeases,
  renewLeases,
  setWaitingReasons,
  SUBMIT_KEY_TTL_MS,
  type JobOutcome,
  type JobRow,
  type NewJob,
  type SubmitKey,
} from './store/index.js';
import { planAssignments, unservable, type SchedulableJob } from './scheduler.js';
import { jobIds, JobWrites } from './job-writes.js';
import type { JobMessage, SessionManager } from './sessions.js';
import { LeaseTable, type Lease } from './leases.js';
import type { Cluster } from './cluster.js';
import type { ClusterNews } from '../protocol/cluster.js';

/**
 * A request's text is forgotten by its handler as soon as its answer went out;
 * what a handler never got to (its coordinator died) goes this long after the
 * job ended, looked for as often.
 */
const FORGET_AFTER_MS = 60_000;

/** A job to queue: the client's request and the model it resolved to. */
export interface NewSubmit {
  request: SubmitJobRequest;
  model: ModelRef;
  /** Forget its prompt and answer once it ends (an OpenAI request with [llm] keep_text off). */
  forgetText?: boolean;
}

export interface DispatcherOptions {
  db: Db;
  sessions: SessionManager;
  instanceId: string;
  /** How long a lease lasts without a heartbeat renewing it. */
  leaseTtlMs: number;
  /** How often the queue is looked at without an event (a notification from another instance lost). */
  pollMs: number;
  /** Queued jobs a full pass considers. */
  batch: number;
  /** Other instances sharing the database. @default none: this instance is alone */
  cluster?: Cluster;
  logger: Logger;
}

export class Dispatcher extends EventEmitter<{ finished: [JobRow] }> {
  /** A scheduling pass is scheduled or running. */
  private passPending = false;
  /** Another pass was asked for while one was pending: it runs after. */
  private passAgain = false;
  /** The next pass reads a full batch of the queue, not just what the free slots need. */
  private nextPassFull = false;
  private stopped = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly unsubscribe: (() => void)[] = [];
  private readonly waiters = new Map<string, Set<() => void>>();
  /** jobId → who receives its output as it is produced (an llm request streaming to its client). */
  private readonly partialListeners = new Map<string, (offset: number, text: string) => void>();
  private readonly leases = new LeaseTable();
  /** Passes and lease releases run one at a time, so a release never races a lease being handed out. */
  private serial: Promise<unknown> = Promise.resolve();
  private readonly writes: JobWrites;
  private readonly nextJobId = jobIds();

  constructor(private readonly opts: DispatcherOptions) {
    super();
    this.writes = new JobWrites(opts.db);
  }

  async start(): Promise<void> {
    const { sessions } = this.opts;
    const stale = await releaseInstanceLeases(this.opts.db, this.opts.instanceId, { code: 'GG_ERR_SHUTTING_DOWN', message: 'coordinator restarted' }, new Date());
    this.afterRelease(stale);
    const on = <E extends 'online' | 'capacity' | 'offline' | 'job' | 'heartbeat'>(event: E, fn: (...args: never[]) => void) => {
      sessions.on(event, fn as never);
      this.unsubscribe.push(() => sessions.off(event, fn as never));
    };
    // A new session starts with no leases: any this instance recorded for the
    // worker belong to an earlier session (replaced, or before a restart).
    // Forgotten at once, so that a pass from now on leases to the new session
    // only; the store releases the old ones after.
    on('online', (workerId: string) => {
      const lost = this.leases.forgetWorker(workerId);
      this.guard(this.exclusive(() => this.workerGone(workerId, 'reconnected', lost)).then(() => this.kick()));
    });
    on('capacity', () => this.kick());
    on('offline', (workerId: string) => {
      const lost = this.leases.forgetWorker(workerId);
      this.guard(this.exclusive(() => this.workerGone(workerId, 'disconnected', lost)));
    });
    on('job', (workerId: string, msg: JobMessage) => this.guard(this.takeJobMessage(workerId, msg).then(() => undefined)));
    on('heartbeat', (workerId: string, hb: { runningJobs: { jobId: string; leaseId: string; progress: number | null }[] }) => {
      for (const r of hb.runningJobs) this.leases.renew(workerId, r);
    });
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    const { cluster } = this.opts;
    if (cluster) {
      const onEvent = (e: ClusterNews) => this.onClusterEvent(e);
      // Notifications sent while the listening connection was down are gone: look at everything again.
      const onResync = () => {
        this.kick(true);
        for (const jobId of [...this.waiters.keys()]) this.wake(jobId);
      };
      cluster.on('event', onEvent);
      cluster.on('resync', onResync);
      this.unsubscribe.push(() => cluster.off('event', onEvent), () => cluster.off('resync', onResync));
    }
    every(this.opts.pollMs, () => this.kick(true));
    // The text of requests whose answer was never sent (their coordinator died first) is forgotten here.
    every(FORGET_AFTER_MS, () => this.guard(forgetJobText(this.opts.db, { endedBefore: new Date(Date.now() - FORGET_AFTER_MS) }).then(() => undefined)));
    every(FORGET_AFTER_MS, () => this.guard(forgetSubmitKeys(this.opts.db, new Date(Date.now() - SUBMIT_KEY_TTL_MS)).then(() => undefined)));
    every(Math.max(100, this.opts.leaseTtlMs / 4), () => this.guard(this.exclusive(() => this.maintainLeases())));
    this.kick(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const u of this.unsubscribe) u();
    await this.serial;
    await this.writes.flush();
    await this.flushRenewals();
  }

  async submit(request: SubmitJobRequest, model: ModelRef, opts: { forgetText?: boolean } = {}): Promise<JobRow> {
    return (await this.submitMany([{ request, model, ...opts }]))[0]!;
  }

  /** Queues the jobs together (all or none), in the order given; they run in that order among equal priorities. */
  async submitMany(jobs: readonly NewSubmit[]): Promise<JobRow[]> {
    const rows = this.newJobs(jobs, new Date());
    await this.writes.insert(rows);
    this.kick();
    this.queued();
    return rows.map(queuedJobRow);
  }

  /**
   * submitMany for a request with an idempotency key: the first request with
   * the key queues the jobs; a later one (a client's retry) queues nothing and
   * gets the jobs as they are now, `replayed`. The same key with another
   * request is GG_ERR_IDEMPOTENCY_KEY_REUSED.
   */
  async submitOnce(jobs: readonly NewSubmit[], key: Omit<SubmitKey, 'now'>): Promise<{ rows: JobRow[]; replayed: boolean }> {
    const now = new Date();
    const rows = this.newJobs(jobs, now);
    const { earlier } = await insertJobsOnce(this.opts.db, rows, { ...key, now });
    if (!earlier) {
      this.writes.counted(rows.length);
      this.kick();
      this.queued();
      return { rows: rows.map(queuedJobRow), replayed: false };
    }
    if (earlier.requestSha256 !== key.requestSha256) {
      throw new GridError('GG_ERR_IDEMPOTENCY_KEY_REUSED', `Idempotency-Key ${key.key} was sent with another request before; use a new key for a new request`);
    }
    const found = await Promise.all(earlier.jobIds.map((id) => getJob(this.opts.db, id)));
    // Job rows are never deleted; a missing one is a broken invariant.
    if (found.some((r) => r === null)) throw new Error(`a job queued with Idempotency-Key ${key.key} is gone`);
    return { rows: found as JobRow[], replayed: true };
  }

  private newJobs(jobs: readonly NewSubmit[], now: Date): NewJob[] {
    return jobs.map(({ request: req, model, forgetText }) => ({
      id: this.nextJobId(now.getTime()),
      kind: req.kind,
      model,
      input: req.input,
      requirements: req.requirements as JobRequirements,
      timeoutMs: req.timeoutMs,
      maxAttempts: req.maxAttempts,
      priority: req.priority,
      now,
      forgetText,
      queueDeadline: new Date(now.getTime() + (req.queueTimeoutMs ?? DEFAULT_QUEUE_TIMEOUT_MS)),
    }));
  }

  /** Cancels a job; a running one is told to stop if its worker is connected here. Null if unknown or already final. */
  async cancel(jobId: string): Promise<JobRow | null> {
    // A result already received is written first: the job finished before the cancel came.
    await this.writes.flush();
    const before = await cancelJob(this.opts.db, jobId, new Date());
    if (!before) return null;
    if (before.workerId && before.state !== 'queued') {
      const reason = 'canceled by an administrator';
      await this.endLease(before.workerId, jobId, { reason });
      this.opts.cluster?.publish({ type: 'lease.ended', jobId, workerId: before.workerId, reason });
    }
    this.finished({ ...before, state: 'canceled' });
    this.kick();
    return before;
  }

  /**
   * Resolves when this instance sees the job reach a final state, or at once
   * when `signal` aborts. One map instead of a listener per waiting request:
   * many clients may long-poll at once.
   */
  whenFinished(jobId: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const set = this.waiters.get(jobId) ?? new Set<() => void>();
      this.waiters.set(jobId, set);
      const done = () => {
        set.delete(done);
        if (set.size === 0 && this.waiters.get(jobId) === set) this.waiters.delete(jobId);
        signal.removeEventListener('abort', done);
        resolve();
      };
      set.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /**
   * Hands the job's output to `listener` as its worker produces it, until the
   * returned function is called. Only output reaching this instance: a job
   * whose worker is connected to another one arrives whole, with its result.
   */
  onPartial(jobId: string, listener: (offset: number, text: string) => void): () => void {
    this.partialListeners.set(jobId, listener);
    return () => {
      if (this.partialListeners.get(jobId) === listener) this.partialListeners.delete(jobId);
    };
  }

  private finished(row: JobRow): void {
    this.wake(row.id);
    this.emit('finished', row);
    this.opts.cluster?.publish({ type: 'jobs.finished', jobIds: [row.id] });
  }

  /** Answers the clients waiting on the job (they read its state again). */
  private wake(jobId: string): void {
    for (const done of [...(this.waiters.get(jobId) ?? [])]) done();
  }

  private onClusterEvent(e: ClusterNews): void {
    switch (e.type) {
      case 'jobs.queued':
        return this.kick();
      case 'jobs.finished':
        for (const jobId of e.jobIds) this.wake(jobId);
        return;
      case 'lease.ended':
        // A no-op unless that worker's session is here and still holds the lease.
        return this.guard(this.endLease(e.workerId, e.jobId, { reason: e.reason }).then(() => this.kick()));
      case 'policy.changed':
      case 'worker.revoked':
        return; // sessions' business (the coordinator wires them); a revoked worker's leases go when its session ends
    }
  }

  /** Jobs became queued here (submitted or back in the queue): other instances' workers may be the ones free. */
  private queued(): void {
    this.opts.cluster?.publish({ type: 'jobs.queued' });
  }

  /** Asks for a scheduling pass soon (`full`: reading a full batch of the queue); passes never overlap. */
  kick(full = false): void {
    if (this.stopped) return;
    if (full) this.nextPassFull = true;
    if (this.passPending) {
      this.passAgain = true;
      return;
    }
    this.passPending = true;
    setImmediate(() => {
      this.exclusive(() => this.pass())
        .catch((e: unknown) => this.opts.logger.error({ err: e }, 'scheduling pass failed'))
        .finally(() => {
          this.passPending = false;
          if (this.passAgain) {
            this.passAgain = false;
            this.kick();
          }
        });
    });
  }

  private async pass(): Promise<void> {
    if (this.stopped) return;
    const { db } = this.opts;
    const { batch } = this.opts;
    const full = this.nextPassFull;
    this.nextPassFull = false;
    const views = this.opts.sessions.views().map((w) => ({ ...w, running: this.leases.countOf(w.id), placedVramMiB: this.leases.vramOf(w.id) }));
    const free = views.reduce((n, w) => n + (w.paused ? 0 : Math.max(0, w.slots - w.running)), 0);
    if (!full && free === 0) return;
    // Jobs are planned in queue order, each on the best worker with room, so
    // once the free slots are filled the jobs behind would all wait: an event
    // pass reads only a few more than it can place.
    const limit = full ? batch : Math.min(batch, Math.max(16, 2 * free));
    const queued = await listQueueHead(db, limit);
    if (queued.length === 0) return;
    const plan = planAssignments(queued, views);
    const now = new Date();
    const expiresAt = new Date(now.getTime() + this.opts.leaseTtlMs);
    const leased = await leaseJobs(
      db,
      plan.assignments.map((a) => ({ jobId: a.jobId, workerId: a.workerId, leaseId: `l-${randomBytes(12).toString('hex')}`, instanceId: this.opts.instanceId, expiresAt })),
      now,
    );
    this.writes.counted(leased.length);
    await Promise.all(
      leased.map(async (row) => {
        const workerId = row.workerId!;
        // Rows from before migration 10 may hold a large input themselves.
        const inline = row.inputPieces === 0 && Buffer.byteLength(JSON.stringify(row.input)) <= MAX_INLINE_PAYLOAD_BYTES;
        this.leases.grant(workerId, { jobId: row.id, leaseId: row.leaseId!, kind: row.kind, vramMiB: row.requirements.gpu?.minVramMiB ?? 0 });
        const sent = await this.opts.sessions.send(workerId, {
          type: 'job.assign',
          job: {
            jobId: row.id,
            kind: row.kind,
            model: row.model,
            input: inline ? row.input : null,
            inputByReference: !inline,
            requirements: row.requirements,
            timeoutMs: row.timeoutMs,
            attempt: row.attempt,
            ...(row.resumeFrom !== null && { resumeFrom: row.resumeFrom }),
          },
          leaseId: row.leaseId!,
          leaseExpiresAt: row.leaseExpiresAt!.toISOString(),
        });
        // The worker left between planning and sending: its offline handler
        // may have run before this lease existed, so release it here.
        if (!sent) {
          this.leases.end(workerId, row.id);
          const reason = { code: 'GG_ERR_CONNECTION_CLOSED', message: 'worker disconnected before the job reached it' };
          await releaseWorkerLeases(db, workerId, this.opts.instanceId, reason, new Date(), this.leases.leaseIdsOf(workerId));
        }
      }),
    );
    if (full) await setWaitingReasons(db, plan.waiting.map((w) => ({ jobId: w.jobId, reason: w.reason })));
    // A full window means more may be waiting behind it: jobs that fit where
    // these did not (a narrow pass), or more to lease (a full one).
    if (queued.length === limit && (full ? leased.length > 0 : plan.assignments.length < free)) this.kick(!full);
  }

  /**
   * Why no worker connected here could run the job, or null if one could.
   * Workers connected to other instances sharing the database are not known
   * here: while any other instance is heard from, the answer is null.
   */
  whyUnservable(job: SchedulableJob): string | null {
    if ((this.opts.cluster?.peers().length ?? 0) > 0) return null;
    return unservable(job, this.opts.sessions.views().map((w) => ({ ...w, running: 0, placedVramMiB: 0 })));
  }

  /** Whether `leaseId` is the lease the worker holds for the job through its session here. */
  holdsLease(workerId: string, jobId: string, leaseId: string): boolean {
    return this.leases.current(workerId, jobId, leaseId) !== undefined;
  }

  /**
   * Progress or a result from a worker, over its control stream or (large
   * results) HTTPS. Returns whether it was taken: false for a lease that is
   * not current.
   */
  async takeJobMessage(workerId: string, msg: JobMessage): Promise<boolean> {
    const lease = this.leases.current(workerId, msg.jobId, msg.leaseId);
    if (!lease) {
      this.opts.logger.warn({ workerId, jobId: msg.jobId, leaseId: msg.leaseId, type: msg.type }, 'message for a lease that is not current: rejected');
      return false;
    }
    if (msg.type === 'job.progress') {
      // Only the first progress of a lease changes the job's state; later ones
      // ride along with the next lease renewal instead of a write each.
      if (this.leases.markStarted(lease)) await this.writes.markRunning(msg.jobId, msg.leaseId, new Date());
      else this.leases.renew(workerId, { jobId: msg.jobId, leaseId: msg.leaseId, progress: msg.progress });
      return true;
    }
    if (msg.type === 'job.partial') {
      this.leases.addStreamed(lease, msg);
      this.partialListeners.get(msg.jobId)?.(msg.offset, msg.text);
      return true;
    }
    if (msg.type === 'job.release') return this.takeRelease(lease, msg);
    return this.takeResult(lease, msg);
  }

  private async takeRelease(lease: Lease, msg: Extract<JobMessage, { type: 'job.release' }>): Promise<boolean> {
    const { workerId } = lease;
    await this.writes.flush();
    await this.keepStreamed([lease]);
    const row = await handBackJob(this.opts.db, msg.jobId, msg.leaseId, msg.reason, new Date());
    this.leases.end(workerId, msg.jobId);
    this.kick();
    if (row) this.queued();
    this.opts.logger.info({ workerId, jobId: msg.jobId, handedBack: row !== null }, `job handed back: ${msg.reason}`);
    return row !== null;
  }

  private async takeResult(lease: Lease, msg: Extract<JobMessage, { type: 'job.result' }>): Promise<boolean> {
    const { logger } = this.opts;
    const { workerId } = lease;
    const at = new Date();
    const startedAt = this.leases.startedAt(lease, at, msg.runMs);
    // A failed attempt may be repeated: the next continues from what this one streamed.
    if (!msg.outcome.ok) await this.keepStreamed([lease]);
    const row = await this.writes.complete({ jobId: msg.jobId, leaseId: msg.leaseId, outcome: checkedOutcome(lease.kind, msg.outcome, workerId), at, startedAt });
    this.leases.end(workerId, msg.jobId);
    this.kick();
    if (!row) {
      logger.warn({ workerId, jobId: msg.jobId, leaseId: msg.leaseId }, 'result for a lease that is no longer current: rejected');
      return false;
    }
    logger.info({ workerId, jobId: row.id, state: row.state, attempt: row.attempt }, 'job result taken');
    if (TERMINAL_JOB_STATES.includes(row.state)) this.finished(row);
    else if (row.state === 'queued') this.queued();
    return true;
  }

  private async workerGone(workerId: string, what: string, lost: Lease[]): Promise<void> {
    // A pass may already have leased a job to the worker's new session before
    // this ran: those leases are current, the rest belong to an ended session.
    const keep = this.leases.leaseIdsOf(workerId);
    // What the worker sent before it went counts: its results are written before its leases are released.
    await this.writes.flush();
    await this.keepStreamed(lost);
    const reason = { code: 'GG_ERR_CONNECTION_CLOSED', message: `worker ${workerId} ${what}` };
    const released = await releaseWorkerLeases(this.opts.db, workerId, this.opts.instanceId, reason, new Date(), keep);
    this.afterRelease(released);
  }

  /** Saves what the leases' attempts streamed, before they end without a result: the next attempt continues from it. */
  private async keepStreamed(leases: readonly Lease[]): Promise<void> {
    await keepResumeFrom(
      this.opts.db,
      leases.flatMap((l) => {
        const resumeFrom = this.leases.resumeFrom(l);
        return resumeFrom ? [{ jobId: l.jobId, leaseId: l.leaseId, resumeFrom }] : [];
      }),
    );
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.serial.then(fn, fn);
    this.serial = next.catch(() => undefined);
    return next;
  }

  private async maintainLeases(): Promise<void> {
    await this.writes.flush();
    await this.flushRenewals();
    const expired = await expireLeases(this.opts.db, new Date());
    for (const row of expired) {
      // Stale on the worker too, if it is still connected here: stop it.
      if (row.workerId) await this.endLease(row.workerId, row.id, { reason: 'lease expired' });
    }
    this.afterRelease(expired);
    const waitedTooLong = await expireQueued(this.opts.db, new Date());
    if (waitedTooLong.length > 0) this.opts.logger.warn({ jobs: waitedTooLong.map((r) => r.id) }, 'jobs failed: no worker took them within their queue timeout');
    for (const row of waitedTooLong) this.finished(row);
  }

  /** Forgets a lease; with `cancel`, also tells its worker, if connected here, to stop the job. */
  private async endLease(workerId: string, jobId: string, cancel?: { reason: string }): Promise<void> {
    const lease = this.leases.end(workerId, jobId);
    if (lease && cancel) await this.opts.sessions.send(workerId, { type: 'job.cancel', jobId, leaseId: lease.leaseId, reason: cancel.reason });
  }

  private afterRelease(rows: JobRow[]): void {
    for (const row of rows) {
      if (row.workerId) this.leases.end(row.workerId, row.id);
      if (TERMINAL_JOB_STATES.includes(row.state)) this.finished(row);
    }
    if (rows.length > 0) {
      this.opts.logger.warn({ jobs: rows.map((r) => `${r.id}:${r.state}`) }, 'leases released');
      this.kick();
      if (rows.some((r) => r.state === 'queued')) this.queued();
    }
  }

  private async flushRenewals(): Promise<void> {
    const batch = this.leases.takeRenewals();
    if (batch.length === 0) return;
    await renewLeases(this.opts.db, batch, new Date(Date.now() + this.opts.leaseTtlMs));
  }

  private guard(p: Promise<void>): void {
    p.catch((e: unknown) => this.opts.logger.error({ err: e }, 'dispatcher error'));
  }
}

/**
 * A worker's outcome as the store takes it. An output that is not what the
 * job's kind produces (a buggy or hostile worker: an honest one checks its
 * own) fails the attempt, retryably, since another worker may do better.
 */
function checkedOutcome(kind: string, outcome: JobResult['outcome'], workerId: string): JobOutcome {
  if (!outcome.ok) return outcome;
  const problem = checkJobPayload(kind, 'output', outcome.output);
  if (!problem) return outcome;
  return { ok: false, error: { code: 'GG_ERR_OUTPUT_INVALID', message: `worker ${workerId} sent an invalid result: ${problem}`, retryable: true } };
}

