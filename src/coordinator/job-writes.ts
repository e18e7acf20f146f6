/**
 * The dispatcher's per-job writes, gathered: new jobs, `running` marks and
 * results asked for while one flush runs go out together in the next, as one
 * statement per kind (group commit). A lone write still goes out on the next
 * turn of the event loop, so nothing waits for a timer.
 *
 *   const writes = new JobWrites(db);
 *   await writes.insert(jobs);                                   // durable once it resolves
 *   const started = await writes.markRunning(jobId, leaseId, new Date());
 *   const row = await writes.complete({ jobId, leaseId, outcome, at: new Date() }); // null: stale lease
 *   await writes.complete({ jobId, leaseId, outcome, at, startedAt });           // a start never reported on its own
 *   await writes.flush();                                        // everything asked for so far is durable
 *
 * Each write is still the store's conditional statement, so fencing is per
 * job as before: a result for a lease that is not current answers null. A
 * promise resolves only after its statement has committed, so nothing is
 * acknowledged before it is durable. Flushes run one at a time and, within
 * one, marks go before results: a job's `running` is written before its
 * result whenever the worker sent them in that order. A start that comes
 * with its result (`startedAt`: a short job reports its start only with its
 * result, see job-runner.ts), or in the same flush, rides along in a success's
 * statement and is written just before a failure. One write the database
 * refuses fails only its own caller.
 *
 * On PGlite, which has no autovacuum, it also tidies the jobs table (see
 * tidyJobs) once enough rows changed: its own writes, and the leases the
 * dispatcher reports with `counted`.
 */
import { randomBytes } from 'node:crypto';
import type { Db } from './store/db.js';
import { completeJobs, insertJobs, markRunningMany, tidyJobs, type JobResultRecord, type JobRow, type NewJob } from './store/index.js';

/** PGlite's statistics are refreshed after this many job rows changed (a few ms)… */
const TIDY_AFTER_ROWS = 2000;
/** …and the jobs table vacuumed at most this often (tens of ms). */
const VACUUM_EVERY_MS = 60_000;

interface Pending<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}
type MarkPending = Pending<{ jobId: string; leaseId: string; at: Date }, boolean>;
type ResultPending = Pending<JobResultRecord, JobRow | null>;

export class JobWrites {
  private inserts: Pending<readonly NewJob[], void>[] = [];
  private marks: MarkPending[] = [];
  private results: ResultPending[] = [];
  /** The flush running now, and any queued behind it. */
  private tail: Promise<void> = Promise.resolve();
  /** A flush is queued and has not taken its writes yet: later writes join it. */
  private queued = false;
  /** Job rows changed since the last tidy. */
  private changedRows = 0;
  private lastVacuumAt = Date.now();

  constructor(private readonly db: Db) {}

  /** New jobs; one call's jobs are inserted together, all or none. */
  insert(jobs: readonly NewJob[]): Promise<void> {
    return this.add(this.inserts, jobs);
  }

  markRunning(jobId: string, leaseId: string, at: Date): Promise<boolean> {
    return this.add(this.marks, { jobId, leaseId, at });
  }

  complete(result: JobResultRecord): Promise<JobRow | null> {
    return this.add(this.results, result);
  }

  /** Job rows the caller changed itself (leases), for the tidy count. */
  counted(rows: number): void {
    this.changedRows += rows;
  }

  /** Resolves once every write asked for before the call is durable (or has failed). */
  flush(): Promise<void> {
    this.queued = true;
    return this.enqueue();
  }

  private add<I, O>(list: Pending<I, O>[], item: I): Promise<O> {
    const done = new Promise<O>((resolve, reject) => list.push({ item, resolve, reject }));
    if (!this.queued) {
      this.queued = true;
      setImmediate(() => void this.enqueue());
    }
    return done;
  }

  private enqueue(): Promise<void> {
    const next = this.tail.then(() => this.write());
    this.tail = next;
    return next;
  }

  /** Never rejects: each write's own promise carries its failure. */
  private async write(): Promise<void> {
    this.queued = false;
    const inserts = this.inserts;
    const marks = this.marks;
    const results = this.results;
    this.inserts = [];
    this.marks = [];
    this.results = [];
    await this.writeInserts(inserts);
    const { alone, beforeFailure, riding } = attachMarks(marks, results);
    const due = [...beforeFailure, ...alone];
    await settle(due, (items) => markRunningMany(this.db, items));
    const answers = await settle(results, (items) => completeJobs(this.db, items));
    // A mark that rode along was taken exactly when its result was (same lease, same statement).
    for (const [mark, i] of riding) {
      const answer = answers[i];
      if (answer instanceof Failed) mark.reject(answer.error);
      else mark.resolve(answer !== null);
    }
    this.changedRows += inserts.reduce((n, p) => n + p.item.length, 0) + due.length + results.length;
    if (this.db.kind === 'pglite' && this.changedRows >= TIDY_AFTER_ROWS) await this.tidy();
  }

  private async tidy(): Promise<void> {
    this.changedRows = 0;
    const vacuum = Date.now() - this.lastVacuumAt >= VACUUM_EVERY_MS;
    if (vacuum) this.lastVacuumAt = Date.now();
    // Statistics are an optimisation: a failure here must not fail the writes that were just made.
    await tidyJobs(this.db, { vacuum }).catch(() => undefined);
  }

  /**
   * All the calls' jobs in one statement; if that fails and it held several
   * calls, each call again on its own, so one bad submit (a value the
   * database refuses) fails only its own caller.
   */
  private async writeInserts(inserts: Pending<readonly NewJob[], void>[]): Promise<void> {
    if (inserts.length === 0) return;
    try {
      await insertJobs(this.db, inserts.flatMap((p) => p.item));
      for (const p of inserts) p.resolve();
    } catch (e) {
      if (inserts.length === 1) return inserts[0]!.reject(e);
      for (const p of inserts) await insertJobs(this.db, p.item).then(() => p.resolve(), p.reject);
    }
  }
}

/**
 * Sorts the marks by the results pending with them: a mark whose lease has a
 * successful result moves into that result (its `startedAt`) and rides with
 * it (`riding`: the mark, and its result's index); one whose lease failed is
 * written before the failure; the rest (`alone`) have no result yet.
 */
function attachMarks(marks: MarkPending[], results: ResultPending[]): { alone: MarkPending[]; beforeFailure: MarkPending[]; riding: [MarkPending, number][] } {
  const key = (x: { jobId: string; leaseId: string }) => `${x.jobId}\n${x.leaseId}`;
  const waiting = new Map(marks.map((m) => [key(m.item), m]));
  const beforeFailure: MarkPending[] = [];
  const riding: [MarkPending, number][] = [];
  for (const [i, r] of results.entries()) {
    const mark = waiting.get(key(r.item));
    if (!mark) {
      // A failure that says when it started: its start is a mark of its own, before it.
      if (!r.item.outcome.ok && r.item.startedAt) beforeFailure.push({ item: { ...r.item, at: r.item.startedAt }, resolve: () => undefined, reject: () => undefined });
      continue;
    }
    waiting.delete(key(r.item));
    if (!r.item.outcome.ok) {
      beforeFailure.push(mark);
      continue;
    }
    r.item = { ...r.item, startedAt: mark.item.at };
    riding.push([mark, i]);
  }
  return { alone: [...waiting.values()], beforeFailure, riding };
}

/**
 * Runs one statement for the pending writes and hands each its answer. If it
 * fails and held several writes, each runs again on its own, so a row the
 * database refuses fails only its own caller (one poisoned result once failed
 * every other worker's result in its batch). Returns one answer per write, or
 * its failure.
 */
async function settle<I, O>(pending: Pending<I, O>[], run: (items: I[]) => Promise<O[]>): Promise<(O | Failed)[]> {
  if (pending.length === 0) return [];
  const hand = (p: Pending<I, O>, answer: O | Failed) => {
    if (answer instanceof Failed) p.reject(answer.error);
    else p.resolve(answer);
    return answer;
  };
  try {
    const answers = await run(pending.map((p) => p.item));
    return pending.map((p, i) => hand(p, answers[i]!));
  } catch (error) {
    if (pending.length === 1) return [hand(pending[0]!, new Failed(error))];
    const answers: (O | Failed)[] = [];
    for (const p of pending) answers.push(hand(p, await run([p.item]).then((a) => a[0]!, (e: unknown) => new Failed(e))));
    return answers;
  }
}

/** A write whose statement failed, with why. */
class Failed {
  constructor(readonly error: unknown) {}
}

/**
 * Job ids that sort in the order they were made: the millisecond, a counter
 * within it, then 32 random bits, so ids of two instances do not clash. The queue is
 * served by (priority, submitted_at, id), so a batch submitted in one
 * millisecond runs in the order given.
 */
export function jobIds(): (nowMs: number) => string {
  let lastMs = 0;
  let counter = 0;
  return (nowMs) => {
    if (nowMs > lastMs) {
      lastMs = nowMs;
      counter = 0;
    } else if (++counter > 0xffff) {
      // More than 65,536 ids in one millisecond (or the clock went back): borrow the next one.
      lastMs++;
      counter = 0;
    }
    return `j-${lastMs.toString(16).padStart(12, '0')}${counter.toString(16).padStart(4, '0')}${randomBytes(4).toString('hex')}`;
  };
}
