/**
 * The processes of a fleet benchmark run: the `gogrid coordinator` child
 * (with bench/coordinator-hook.ts preloaded), forked helpers, and a registry
 * that kills every one of them when the run ends, fails or is interrupted.
 *
 *   const procs = new Procs();
 *   try {
 *     const c = await procs.coordinator({ dataDir, label: 'N=100' });
 *     const sim = procs.fork('sim-worker.ts', 'sim 1');
 *     await c.onlineAt(100); // epoch ms of the 100th "worker online"
 *   } finally {
 *     await procs.killAll();
 *   }
 */
import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { RpcChild, type HookCommand, type Stats } from './ipc.js';
import { rssKiB } from './measure.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'src/cli/main.ts');
const HOOK = join(import.meta.dirname, 'coordinator-hook.ts');
const execFileP = promisify(execFile);

/** The fields of the coordinator's JSON log lines (pino) that the benchmark reads. */
const LogLine = z.looseObject({ level: z.number(), time: z.number(), msg: z.string().optional(), workerId: z.string().optional() });

export interface CoordinatorOptions {
  dataDir: string;
  label: string;
  heartbeatIntervalSecs?: number;
  heartbeatTimeoutSecs?: number;
}

export interface CoordinatorProc {
  readonly pid: number;
  readonly port: number;
  readonly rpc: RpcChild<HookCommand>;
  /** Epoch ms (the log line's own time) of the `count`-th "worker online" since start. */
  onlineAt(count: number): Promise<number>;
  /** Epoch ms of the `count`-th "worker offline" since start. */
  offlineAt(count: number): Promise<number>;
  /** Epoch ms of the first "worker offline" for each id. */
  offlineOf(workerIds: readonly string[]): Promise<Map<string, number>>;
  /** Log lines at warn level or above, for the report: a healthy idle fleet has none. */
  readonly warnings: { count: number; last: string[] };
  stats(): Promise<Stats>;
  gc(): Promise<Stats>;
  call(cmd: HookCommand): Promise<unknown>;
  /** Resident set size from /proc, in KiB, without a round trip into the process. */
  rssKiB(): number;
  stop(): Promise<void>;
}

export class Procs {
  private readonly children = new Set<ChildProcess>();

  /** A forked TypeScript helper in bench/, answering RPCs (bench/ipc.ts). */
  fork<Cmd extends { type: string }>(file: string, label: string, execArgv: string[] = []): RpcChild<Cmd> {
    const child = fork(join(import.meta.dirname, file), [], { execArgv: [...execArgv, '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.track(child);
    return new RpcChild<Cmd>(child, label);
  }

  async coordinator(opts: CoordinatorOptions): Promise<CoordinatorProc> {
    const args = ['coordinator', '--data', opts.dataDir, '--bind', '127.0.0.1', '--port', '0', '--database', 'memory://', '--log-format', 'json'];
    if (opts.heartbeatIntervalSecs !== undefined) args.push('--heartbeat-interval', String(opts.heartbeatIntervalSecs));
    if (opts.heartbeatTimeoutSecs !== undefined) args.push('--heartbeat-timeout', String(opts.heartbeatTimeoutSecs));
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', '--import', HOOK, CLI, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.track(child);
    const rpc = new RpcChild<HookCommand>(child, `coordinator ${opts.label}`);
    const events = new CoordinatorLog();
    let stderrTail = '';
    lines(child.stderr!, (line) => {
      stderrTail = (stderrTail + line + '\n').slice(-4000);
      events.take(line);
    });
    let stdout = '';
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = /listening on \S+:(\d+)/.exec(stdout);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`coordinator ${opts.label} exited (${code}) before listening:\n${stderrTail}`)));
    });
    const pid = child.pid!;
    return {
      pid,
      port,
      rpc,
      onlineAt: (n) => events.nth('online', n),
      offlineAt: (n) => events.nth('offline', n),
      offlineOf: (ids) => events.offlineOf(ids),
      warnings: events.warnings,
      stats: () => rpc.stats(),
      gc: () => rpc.gc(),
      call: (cmd) => rpc.call(cmd, z.unknown()),
      rssKiB: () => rssKiB(pid),
      stop: () => this.stop(child, 'SIGTERM', 15_000),
    };
  }

  /** `gogrid token create`, as an operator would run it, on the coordinator's data dir. */
  async token(dataDir: string, uses: number): Promise<string> {
    const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', CLI, 'token', 'create', '--data', dataDir, '--uses', String(uses), '--ttl', '2h'], {
      cwd: ROOT,
    });
    return stdout.trim();
  }

  /** Signals the child and waits for it to go; SIGKILL after `graceMs`. */
  stop(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
    return stopChild(child, signal, graceMs);
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.children].map((c) => this.stop(c, 'SIGTERM', 5000)));
  }

  /** For a synchronous exit handler: no waiting possible there. */
  killAllNow(): void {
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }

  private track(child: ChildProcess): void {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
  }
}

class CoordinatorLog {
  private readonly times = { online: [] as number[], offline: [] as number[] };
  private readonly waiters: { kind: 'online' | 'offline'; n: number; resolve: (t: number) => void }[] = [];
  private readonly offlineById = new Map<string, number>();
  private readonly offlineWaiters: (() => void)[] = [];
  readonly warnings = { count: 0, last: [] as string[] };

  take(line: string): void {
    let parsed: z.infer<typeof LogLine>;
    try {
      parsed = LogLine.parse(JSON.parse(line));
    } catch {
      return;
    }
    if (parsed.level >= 40) {
      this.warnings.count++;
      this.warnings.last = [...this.warnings.last.slice(-4), line.slice(0, 500)];
    }
    const kind = parsed.msg === 'worker online' ? 'online' : parsed.msg === 'worker offline' ? 'offline' : null;
    if (!kind) return;
    this.times[kind].push(parsed.time);
    if (kind === 'offline' && parsed.workerId && !this.offlineById.has(parsed.workerId)) {
      this.offlineById.set(parsed.workerId, parsed.time);
      for (const w of this.offlineWaiters.splice(0)) w();
    }
    for (const w of [...this.waiters]) {
      const t = this.times[w.kind][w.n - 1];
      if (t === undefined) continue;
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve(t);
    }
  }

  nth(kind: 'online' | 'offline', n: number): Promise<number> {
    const t = this.times[kind][n - 1];
    if (t !== undefined) return Promise.resolve(t);
    return new Promise((resolve) => this.waiters.push({ kind, n, resolve }));
  }

  async offlineOf(ids: readonly string[]): Promise<Map<string, number>> {
    while (!ids.every((id) => this.offlineById.has(id))) {
      await new Promise<void>((resolve) => this.offlineWaiters.push(resolve));
    }
    return new Map(ids.map((id) => [id, this.offlineById.get(id)!]));
  }
}

/** Calls `onLine` for each complete line the stream writes. */
/** Signals a child process and waits for it to go; SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buf = '';
  stream.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}
