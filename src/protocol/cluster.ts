/**
 * What coordinator instances sharing one PostgreSQL tell one another, as
 * NOTIFY payloads on one channel (src/coordinator/cluster.ts): each instance
 * owns the sessions of the workers connected to it, so what happens on one
 * instance and concerns another's workers or waiting clients goes this way.
 *
 *   const msg = ClusterMessage.parse(JSON.parse(payload));
 *   // { from: 'c-1a2b', events: [{ type: 'jobs.queued' }, { type: 'jobs.finished', jobIds: ['j-…'] }] }
 */
import { z } from 'zod';

const id = z.string().min(1).max(128);

export const ClusterEvent = z.discriminatedUnion('type', [
  /**
   * The sender listens on this database: the others send it their news from
   * now on. Sent at start, every ALIVE_EVERY_MS, and in answer to an instance
   * not heard from before; an instance that hears none stays silent.
   */
  z.object({ type: z.literal('instance.alive') }),
  /** Jobs became queued (submitted, requeued, handed back): every instance runs a scheduling pass. */
  z.object({ type: z.literal('jobs.queued') }),
  /** An administrator ended a job's lease (a cancel): the instance holding that worker's session stops the job there. */
  z.object({ type: z.literal('lease.ended'), jobId: id, workerId: id, reason: z.string().max(500) }),
  /** Jobs reached a final state: clients waiting on them (`?wait=`) on any instance are answered. */
  z.object({ type: z.literal('jobs.finished'), jobIds: z.array(id).min(1) }),
  /** An administrator's policy changed, for one worker or (null) the fleet: pushed to the workers connected here. */
  z.object({ type: z.literal('policy.changed'), workerId: id.nullable() }),
  /** An administrator revoked a worker: the instance holding its session closes it with GG_ERR_WORKER_REVOKED. */
  z.object({ type: z.literal('worker.revoked'), workerId: id }),
]);
export type ClusterEvent = z.infer<typeof ClusterEvent>;
/** What instances act on; presence is the bus's own business. */
export type ClusterNews = Exclude<ClusterEvent, { type: 'instance.alive' }>;

export const ClusterMessage = z.object({
  /** The sending instance, which has acted on these events itself already. */
  from: id,
  events: z.array(ClusterEvent).min(1),
});
export type ClusterMessage = z.infer<typeof ClusterMessage>;
