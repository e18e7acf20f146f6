/**
 * The fleet suite's coordinator: `gogrid coordinator` from src/ under tsx,
 * with bench/fleet/coordinator-hook.ts preloaded (stats, forced GC, profiles
 * over IPC), and the times of its "worker online" and "worker offline" log
 * lines.
 *
 *   const c = await fleetCoordinator(procs, { dataDir, label: 'N=100' });
 *   const token = await createToken(dataDir, 100);
 *   await c.onlineAt(100); // epoch ms of the 100th "worker online"
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { startCoordinator } from '../lib/coordinator.js';
import { ROOT } from '../lib/machine.js';
import { rssKiB } from '../lib/procfs.js';
import type { Procs } from '../lib/procs.js';
import { RpcChild, type Stats } from '../lib/rpc.js';
import type { HookCommand } from './commands.js';

const CLI = join(ROOT, 'src/cli/main.ts');
const HOOK = join(import.meta.dirname, 'coordinator-hook.ts');
const execFileP = promisify(execFile);

/** The fields of the coordinator's JSON log lines (pino) that the suite reads. */
const LogLine = z.looseObject({ time: z.number(), msg: z.string().optional(), workerId: z.string().optional() });

export interface FleetCoordinatorOptions {
  dataDir: string;
  label: string;
  heartbeatIntervalSecs: number;
  heartbeatTimeoutSecs: number;
}

export interface FleetCoordinator {
  readonly pid: number;
  readonly port: number;
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

export async function fleetCoordinator(procs: Procs, opts: FleetCoordinatorOptions): Promise<FleetCoordinator> {
  const events = new CoordinatorLog();
  const c = await startCoordinator(procs, {
    label: opts.label,
    node: ['--expose-gc', '--import', 'tsx', '--import', HOOK, CLI],
    dataDir: opts.dataDir,
    database: 'memory://',
    heartbeat: { intervalSecs: opts.heartbeatIntervalSecs, timeoutSecs: opts.heartbeatTimeoutSecs },
    ipc: true,
    onLog: (line) => events.take(line),
    // Every simulated worker dials from 127.0.0.1; a real fleet spreads over many addresses, each within the default 100 a second.
    toml: '[server]\nconnections_per_ip_per_sec = 100000\n',
  });
  const rpc = new RpcChild<HookCommand>(c.child, `coordinator ${opts.label}`);
  return {
    pid: c.pid,
    port: c.port,
    onlineAt: (n) => events.nth('online', n),
    offlineAt: (n) => events.nth('offline', n),
    offlineOf: (ids) => events.offlineOf(ids),
    warnings: c.warnings,
    stats: () => rpc.stats(),
    gc: () => rpc.gc(),
    call: (cmd) => rpc.call(cmd, z.unknown()),
    rssKiB: () => rssKiB(c.pid),
    stop: () => c.stop(),
  };
}

/** `gogrid token create`, as an operator would run it, on the coordinator's data dir. */
export async function createToken(dataDir: string, uses: number): Promise<string> {
  const { stdout } = await execFileP(process.execPath, ['--import', 'tsx', CLI, 'token', 'create', '--data', dataDir, '--uses', String(uses), '--ttl', '2h'], {
    cwd: ROOT,
  });
  return stdout.trim();
}

class CoordinatorLog {
  private readonly times = { online: [] as number[], offline: [] as number[] };
  private readonly waiters: { kind: 'online' | 'offline'; n: number; resolve: (t: number) => void }[] = [];
  private readonly offlineById = new Map<string, number>();
  private readonly offlineWaiters: (() => void)[] = [];

  take(line: string): void {
    let parsed: z.infer<typeof LogLine>;
    try {
      parsed = LogLine.parse(JSON.parse(line));
    } catch {
      return;
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
