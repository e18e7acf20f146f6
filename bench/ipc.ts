/**
 * Request/reply over the fork() IPC channel between the fleet benchmark and
 * its helper processes (simulators, the TLS baseline server, the hook inside
 * the coordinator). Each side parses what it receives with these schemas.
 *
 *   const sim = new RpcChild(fork('bench/sim-worker.ts', …), 'sim 1');
 *   await sim.call({ type: 'enroll', … }, Enrolled);
 *
 *   serveRpc(SimCommand, async (cmd) => …); // inside the child
 */
import type { ChildProcess } from 'node:child_process';
import { z } from 'zod';

const Address = z.object({ host: z.string(), port: z.number().int() });

/** Every helper answers this: its own CPU time (all threads) and memory, from process.cpuUsage() and memoryUsage(). */
export const StatsCommand = z.object({ type: z.literal('stats') });
export const Stats = z.object({
  cpuUs: z.number(),
  rssKiB: z.number(),
  heapUsedKiB: z.number(),
  externalKiB: z.number(),
  arrayBuffersKiB: z.number(),
  /** Messages received so far, where the process counts them (countMessageIn): the server's evidence of the load it got. */
  messagesIn: z.number(),
});
export type Stats = z.infer<typeof Stats>;

export const SimCommand = z.discriminatedUnion('type', [
  StatsCommand,
  /** Enroll one worker per dir (a dir keeps its worker id across enrollments); identities stay in memory. */
  z.object({ type: z.literal('enroll'), coordinator: Address, token: z.string(), dirs: z.array(z.string()), concurrency: z.number().int().positive() }),
  /** A WorkerAgent per identity, all on one UDP socket; `concurrency` bounds how many are connecting at once. */
  z.object({ type: z.literal('quic'), keepAliveMs: z.number().positive().nullable(), concurrency: z.number().int().positive() }),
  /** The baseline: a node:tls connection per identity carrying the agent's hello and heartbeat frames. */
  z.object({ type: z.literal('tls'), server: Address, concurrency: z.number().int().positive() }),
  /** Closes every connection (agents stopped, sockets destroyed), at most `concurrency` at once. */
  z.object({ type: z.literal('stop'), concurrency: z.number().int().positive() }),
]);
export type SimCommand = z.infer<typeof SimCommand>;
export const Enrolled = z.object({ count: z.number().int(), ms: z.number() });
/** `welcomeAt` (epoch ms, per identity) fixes the phase of each worker's heartbeat timer. */
export const Online = z.object({ count: z.number().int(), welcomeAt: z.array(z.number()) });
export const Done = z.object({});

/** A full, synchronous GC, then stats: memory without the garbage of whatever ran before (needs --expose-gc). */
export const GcCommand = z.object({ type: z.literal('gc') });

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

const Request = z.object({ rpc: z.number().int(), body: z.unknown() });
const Response = z.union([
  z.object({ rpc: z.number().int(), ok: z.literal(true), value: z.unknown() }),
  z.object({ rpc: z.number().int(), ok: z.literal(false), message: z.string() }),
]);

/** The parent's end: numbered calls, each answered once. */
export class RpcChild<Cmd extends { type: string } = { type: 'stats' | 'gc' }> {
  private next = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(
    readonly child: ChildProcess,
    readonly label: string,
  ) {
    child.on('message', (raw) => {
      const res = Response.safeParse(raw);
      if (!res.success) return;
      const waiter = this.pending.get(res.data.rpc);
      if (!waiter) return;
      this.pending.delete(res.data.rpc);
      if (res.data.ok) waiter.resolve(res.data.value);
      else waiter.reject(new Error(`${label}: ${res.data.message}`));
    });
    child.once('exit', (code, signal) => {
      for (const w of this.pending.values()) w.reject(new Error(`${label} exited (${signal ?? code}) before answering`));
      this.pending.clear();
    });
  }

  call<T extends z.ZodType>(body: Cmd | { type: 'stats' | 'gc' }, reply: T): Promise<z.infer<T>> {
    const rpc = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(rpc, { resolve: (v) => resolve(reply.parse(v)), reject });
      this.child.send({ rpc, body }, (e) => {
        if (!e) return;
        this.pending.delete(rpc);
        reject(e);
      });
    });
  }

  stats(): Promise<Stats> {
    return this.call({ type: 'stats' }, Stats);
  }

  gc(): Promise<Stats> {
    return this.call({ type: 'gc' }, Stats);
  }
}

/** The child's end; by default exits when the parent goes away, so no helper outlives a benchmark. */
export function serveRpc<C extends z.ZodType>(
  commands: C,
  handle: (cmd: z.infer<C>) => Promise<unknown>,
  onParentGone: () => void = () => process.exit(0),
): void {
  process.on('message', (raw) => {
    const req = Request.safeParse(raw);
    if (!req.success) return;
    const { rpc } = req.data;
    Promise.resolve()
      .then(() => handle(commands.parse(req.data.body)))
      .then(
        (value) => process.send?.({ rpc, ok: true, value: value ?? {} }),
        (e: unknown) => process.send?.({ rpc, ok: false, message: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
      );
  });
  process.on('disconnect', onParentGone);
}

export function fullGcStats(): Stats {
  const gc: unknown = Reflect.get(globalThis, 'gc');
  if (typeof gc !== 'function') throw new Error('this process needs --expose-gc');
  gc({ type: 'major', execution: 'sync' });
  return ownStats();
}

let messagesIn = 0;

/** A server calls this per message it receives: UDP datagrams for the coordinator, frames for the TLS baseline. */
export function countMessageIn(): void {
  messagesIn++;
}

export function ownStats(): Stats {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  return {
    cpuUs: cpu.user + cpu.system,
    rssKiB: mem.rss / 1024,
    heapUsedKiB: mem.heapUsed / 1024,
    externalKiB: mem.external / 1024,
    arrayBuffersKiB: mem.arrayBuffers / 1024,
    messagesIn,
  };
}
