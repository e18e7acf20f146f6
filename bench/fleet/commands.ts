/**
 * The commands the fleet suite sends its helper processes over bench/lib/rpc.ts
 * (the simulators, the TLS baseline server, the hook inside the coordinator),
 * and their replies.
 */
import { z } from 'zod';
import { GcCommand, StatsCommand } from '../lib/rpc.js';

const Address = z.object({ host: z.string(), port: z.number().int() });

export const SimCommand = z.discriminatedUnion('type', [
  StatsCommand,
  /** Enroll one worker per dir (a dir keeps its worker id across enrollments); identities stay in memory. */
  z.object({ type: z.literal('enroll'), coordinator: Address, token: z.string(), dirs: z.array(z.string()), concurrency: z.number().int().positive() }),
  /**
   * A WorkerAgent per identity: over QUIC all on one UDP socket, or over the
   * TLS-on-TCP transport (a socket each); `concurrency` bounds how many are connecting at once.
   */
  z.object({
    type: z.literal('quic'),
    keepAliveMs: z.number().positive().nullable(),
    concurrency: z.number().int().positive(),
    transport: z.enum(['quic', 'tcp']).default('quic'),
  }),
  /** The baseline: a node:tls connection per identity carrying the agent's hello and heartbeat frames. */
  z.object({ type: z.literal('tls'), server: Address, concurrency: z.number().int().positive() }),
  /** Closes every connection (agents stopped, sockets destroyed), at most `concurrency` at once. */
  z.object({ type: z.literal('stop'), concurrency: z.number().int().positive() }),
]);
export type SimCommand = z.infer<typeof SimCommand>;
export const Enrolled = z.object({ count: z.number().int(), ms: z.number() });
/** `welcomeAt` (epoch ms, per identity) fixes the phase of each worker's heartbeat timer. */
export const Online = z.object({ count: z.number().int(), welcomeAt: z.array(z.number()) });

export const TlsServerCommand = z.discriminatedUnion('type', [
  StatsCommand,
  GcCommand,
  z.object({
    type: z.literal('listen'),
    tls: z.object({ certPem: z.string(), keyPem: z.string(), caPem: z.string() }),
    heartbeatIntervalSecs: z.number().positive(),
  }),
  /** Resolves when `count` hellos have arrived in all, with the epoch ms of the last one. */
  z.object({ type: z.literal('hellos'), count: z.number().int().positive() }),
]);
export type TlsServerCommand = z.infer<typeof TlsServerCommand>;
export const Listening = z.object({ port: z.number().int() });
export const HellosAt = z.object({ at: z.number() });

export const HookCommand = z.discriminatedUnion('type', [
  StatsCommand,
  GcCommand,
  /**
   * Sets Error.stackTraceLimit, which is all `--stack-trace-limit` does. It
   * cannot be a flag here: under tsx's loader a limit of 0 at start-up breaks
   * the import of CommonJS named exports (ip-num, under @matrixai/quic).
   */
  z.object({ type: z.literal('stack-trace-limit'), value: z.number().int().min(0) }),
  z.object({ type: z.literal('profile-start'), intervalUs: z.number().int().positive() }),
  /** Writes the V8 CPU profile (.cpuprofile JSON) to `path`. */
  z.object({ type: z.literal('profile-stop'), path: z.string() }),
  /** Sampling heap profiler: after a full GC, what is still alive, by the stack that allocated it. */
  z.object({ type: z.literal('heap-start'), intervalBytes: z.number().int().positive() }),
  /** Full GC, then writes the sampling heap profile (.heapprofile JSON) to `path`. */
  z.object({ type: z.literal('heap-stop'), path: z.string() }),
]);
export type HookCommand = z.infer<typeof HookCommand>;
