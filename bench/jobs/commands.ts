/**
 * The commands the jobs suite sends its worker simulators (sim-worker.ts)
 * over bench/lib/rpc.ts, and their replies.
 *
 *   await sim.call({ type: 'start', distDir, coordinator: '127.0.0.1:8443', token, dirs, slots: 1, concurrency: 8 }, Started);
 */
import { z } from 'zod';

export const SimCommand = z.discriminatedUnion('type', [
  /**
   * Starts one real worker (startWorker from `distDir`) per data dir, enrolling
   * each with `token`, and resolves once all are online. Each worker has the
   * data dir's base name as a label.
   */
  z.object({
    type: z.literal('start'),
    distDir: z.string(),
    coordinator: z.string(),
    token: z.string(),
    dirs: z.array(z.string()),
    slots: z.number().int().positive(),
    concurrency: z.number().int().positive(),
  }),
  /** The control frames this process's workers received and sent since the last reset, by message type. */
  z.object({ type: z.literal('frames') }),
  z.object({ type: z.literal('reset-frames') }),
  /** Stops every worker (each closes its connection and its job processes). */
  z.object({ type: z.literal('stop') }),
]);
export type SimCommand = z.infer<typeof SimCommand>;

export const Started = z.object({ workerIds: z.array(z.string()) });
export const Frames = z.object({
  /** From the coordinator. */
  received: z.record(z.string(), z.number()),
  /** To the coordinator: job.progress and job.result (heartbeats are not counted). */
  sent: z.record(z.string(), z.number()),
});
export type Frames = z.infer<typeof Frames>;
