/**
 * Request/reply over the fork() IPC channel between a suite and its helper
 * processes (simulators, baseline servers, the hook inside a coordinator).
 * Each side parses what it receives: the child its commands with the suite's
 * schema, the parent each reply with the schema the call names.
 *
 *   const sim = procs.fork<SimCommand>(join(import.meta.dirname, 'sim-worker.ts'), 'sim 1');
 *   await sim.call({ type: 'enroll', … }, Enrolled);
 *
 *   serveRpc(SimCommand, async (cmd) => …); // inside the child
 */
import type { ChildProcess } from 'node:child_process';
import { z } from 'zod';

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

/** A full, synchronous GC, then stats: memory without the garbage of whatever ran before (needs --expose-gc). */
export const GcCommand = z.object({ type: z.literal('gc') });
/** The reply of a command that answers nothing but its completion. */
export const Done = z.object({});

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

  get pid(): number {
    return this.child.pid!;
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
