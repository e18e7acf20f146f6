/**
 * Who holds which job's lease, as this instance knows it: the one owner of
 * lease state in memory. The store (`jobs.lease_id`) stays the truth; this
 * table only decides, without a query, whether a message from a worker is
 * about a lease it holds here, and gathers what heartbeats renew.
 *
 *   leases.grant(workerId, { jobId, leaseId, kind, vramMiB });  // before job.assign is sent
 *   const lease = leases.current(workerId, jobId, leaseId); // a message's lease, if it is current
 *   leases.end(workerId, jobId);                        // result taken, handed back, canceled, expired
 *   leases.forgetWorker(workerId);                      // its session ended or was replaced
 *
 * A lease goes in one way (grant) and out one way (end, or forgetWorker for
 * all of a worker's at once); the dispatcher is the only caller.
 *
 * Reporting a start. A job moves leased → running when its worker says it
 * started. A job that finishes within a moment (most inference jobs) never
 * says so on its own: the worker sends its first `job.progress` only after
 * START_REPORT_MS (worker/job-runner.ts), and a result that comes first
 * carries `runMs` instead. So:
 *   - the first `job.progress` of a lease is a `running` mark (`markStarted`
 *     says whether it is the first); later ones only ride with the next renewal;
 *   - a result whose start was never marked says when it was (`startedAt`),
 *     and JobWrites writes that start together with the result, in the same
 *     statement (store/jobs.ts `completeJobs`, `started_at = COALESCE(…)`).
 * Two writes per short job become one.
 */

import { MAX_RESUME_CHARS, type ResumeFrom } from '../protocol/index.js';

export interface Lease {
  readonly workerId: string;
  readonly jobId: string;
  /** The fencing token: every message and write about the job names it. */
  readonly leaseId: string;
  /** The job's kind, which says what its output must be. */
  readonly kind: string;
  /** The VRAM the job declared (`requirements.gpu.minVramMiB`), counted against its worker's GPU while the lease lasts. */
  readonly vramMiB: number;
  /** Whether the job's start was reported (and marked running) under this lease. */
  started: boolean;
  /**
   * The output the attempt streamed so far (`job.partial`: text, and tokens
   * while every piece had them), for the next attempt to continue from if
   * this one is lost; null once it outgrew MAX_RESUME_CHARS or came with a
   * gap, when the next one starts again.
   */
  streamed: { text: string; tokens: number[] | null } | null;
}

/** What a heartbeat or a later `job.progress` says of a running job; written in one statement per flush. */
export interface Renewal {
  jobId: string;
  leaseId: string;
  progress: number | null;
}

export class LeaseTable {
  private readonly byJob = new Map<string, Lease>();
  private readonly byWorker = new Map<string, Set<string>>();
  private readonly renewals = new Map<string, Renewal>();

  grant(workerId: string, job: { jobId: string; leaseId: string; kind: string; vramMiB?: number }): void {
    this.end(this.byJob.get(job.jobId)?.workerId ?? workerId, job.jobId);
    this.byJob.set(job.jobId, { workerId, ...job, vramMiB: job.vramMiB ?? 0, started: false, streamed: { text: '', tokens: [] } });
    let jobs = this.byWorker.get(workerId);
    if (!jobs) this.byWorker.set(workerId, (jobs = new Set()));
    jobs.add(job.jobId);
  }

  /** The lease, if `leaseId` is the one the worker holds for the job here. */
  current(workerId: string, jobId: string, leaseId: string): Lease | undefined {
    const lease = this.byJob.get(jobId);
    return lease?.workerId === workerId && lease.leaseId === leaseId ? lease : undefined;
  }

  /** Forgets the worker's lease on the job and what was waiting to renew it; the lease it was, if it held one. */
  end(workerId: string, jobId: string): Lease | undefined {
    const lease = this.byJob.get(jobId);
    if (lease?.workerId !== workerId) return undefined;
    this.byJob.delete(jobId);
    this.renewals.delete(jobId);
    const jobs = this.byWorker.get(workerId);
    jobs?.delete(jobId);
    if (jobs?.size === 0) this.byWorker.delete(workerId);
    return lease;
  }

  /** Forgets every lease of the worker: they belonged to a session that is gone. Returns them. */
  forgetWorker(workerId: string): Lease[] {
    return [...(this.byWorker.get(workerId) ?? [])].flatMap((jobId) => this.end(workerId, jobId) ?? []);
  }

  /** The lease ids the worker holds here. */
  leaseIdsOf(workerId: string): string[] {
    return [...(this.byWorker.get(workerId) ?? [])].map((jobId) => this.byJob.get(jobId)!.leaseId);
  }

  countOf(workerId: string): number {
    return this.byWorker.get(workerId)?.size ?? 0;
  }

  /** The VRAM the worker's leased jobs declared, together. */
  vramOf(workerId: string): number {
    let sum = 0;
    for (const jobId of this.byWorker.get(workerId) ?? []) sum += this.byJob.get(jobId)!.vramMiB;
    return sum;
  }

  /** Records a reported start; true the first time for this lease (the job is to be marked running). */
  markStarted(lease: Lease): boolean {
    if (lease.started) return false;
    lease.started = true;
    return true;
  }

  /** When a job whose result just came started, if its start was never reported on its own. */
  startedAt(lease: Lease, resultAt: Date, runMs: number | undefined): Date | undefined {
    return lease.started || runMs === undefined ? undefined : new Date(resultAt.getTime() - runMs);
  }

  /** Adds a `job.partial` to what the lease streamed; `offset` is where its text starts in the attempt's output. */
  addStreamed(lease: Lease, piece: { offset: number; text: string; tokens?: number[] | undefined }): void {
    const s = lease.streamed;
    if (s === null) return;
    // Pieces come in order over one stream, each after the last: anything else means some never came.
    if (piece.offset !== s.text.length || s.text.length + piece.text.length > MAX_RESUME_CHARS) {
      lease.streamed = null;
      return;
    }
    s.text += piece.text;
    if (s.tokens && piece.tokens && s.tokens.length + piece.tokens.length <= MAX_RESUME_CHARS) s.tokens.push(...piece.tokens);
    else s.tokens = null;
  }

  /** What the next attempt continues from if this lease ends without a result; null for nothing (or nothing usable). */
  resumeFrom(lease: Lease): ResumeFrom | null {
    const s = lease.streamed;
    if (!s || s.text === '') return null;
    return { text: s.text, ...(s.tokens && { tokens: s.tokens }) };
  }

  /** Keeps the latest word on a running job for the next renewal, if its lease is current. */
  renew(workerId: string, r: Renewal): void {
    if (this.current(workerId, r.jobId, r.leaseId)) this.renewals.set(r.jobId, r);
  }

  /** The renewals gathered since the last call. */
  takeRenewals(): Renewal[] {
    const batch = [...this.renewals.values()];
    this.renewals.clear();
    return batch;
  }
}
