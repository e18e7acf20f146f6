/**
 * A `gogrid coordinator` child as the suites run it: loopback, a free port,
 * JSON logs on stderr; started through a suite's Procs so it goes when the
 * run does. The fleet suite runs src/ under tsx with its hook preloaded and
 * an IPC channel; the jobs suite runs dist/.
 *
 *   const c = await startCoordinator(procs, { label: 'N=100', node: ['--import', 'tsx', CLI], dataDir, database: 'memory://' });
 *   c.port; c.warnings.count; await c.stop();
 */
import { writeFile } from 'node:fs/promises';
import type { ChildProcess } from 'node:child_process';
import { ROOT } from './machine.js';
import { lines, type Procs } from './procs.js';

export interface CoordinatorOptions {
  label: string;
  /** Node's arguments before the CLI's: flags, preloads, the entry point. */
  node: readonly string[];
  dataDir: string;
  /** `memory://` or a postgres:// URL. */
  database: string;
  heartbeat?: { intervalSecs: number; timeoutSecs: number };
  /** @default the coordinator's (info) */
  logLevel?: 'warn';
  env?: Record<string, string>;
  /** Opens the fork() IPC channel (fd 3), for a preloaded hook that answers RPCs. */
  ipc?: boolean;
  /** Each line the coordinator writes on stderr (its JSON log). */
  onLog?: (line: string) => void;
  /** coordinator.toml text, written beside the data dir and passed with --config. */
  toml?: string;
}

export interface CoordinatorChild {
  child: ChildProcess;
  pid: number;
  port: number;
  /** Log lines at warn level or above, and lines that are not JSON (a crash): a healthy run has none. The last few kept. */
  warnings: { count: number; last: string[] };
  /** Resolves when the coordinator prints a line containing `text` on stdout (a hook's messages). */
  printed(text: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startCoordinator(procs: Procs, opts: CoordinatorOptions): Promise<CoordinatorChild> {
  const args = ['coordinator', '--data', opts.dataDir, '--bind', '127.0.0.1', '--port', '0', '--database', opts.database, '--log-format', 'json'];
  if (opts.logLevel) args.push('--log-level', opts.logLevel);
  if (opts.heartbeat) args.push('--heartbeat-interval', String(opts.heartbeat.intervalSecs), '--heartbeat-timeout', String(opts.heartbeat.timeoutSecs));
  if (opts.toml !== undefined) {
    const file = `${opts.dataDir.replace(/\/+$/, '')}.toml`;
    await writeFile(file, opts.toml);
    args.push('--config', file);
  }
  const child = procs.spawn(process.execPath, [...opts.node, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe', ...(opts.ipc ? ['ipc' as const] : [])],
  });
  const warnings = { count: 0, last: [] as string[] };
  let stderrTail = '';
  lines(child.stderr!, (line) => {
    stderrTail = (stderrTail + line + '\n').slice(-4000);
    const level = /"level":(\d+)/.exec(line);
    if (!level || Number(level[1]) >= 40) {
      warnings.count++;
      warnings.last = [...warnings.last.slice(-4), line.slice(0, 500)];
    }
    opts.onLog?.(line);
  });
  const waiters: { text: string; resolve: () => void }[] = [];
  let onListening: ((port: number) => void) | undefined;
  lines(child.stdout!, (line) => {
    const m = /listening on \S+:(\d+)/.exec(line);
    if (m) onListening?.(Number(m[1]));
    for (const w of [...waiters]) {
      if (!line.includes(w.text)) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  const port = await new Promise<number>((resolve, reject) => {
    onListening = resolve;
    child.once('exit', (code, signal) => reject(new Error(`coordinator ${opts.label} exited (${code ?? signal}) before listening:\n${stderrTail}`)));
  });
  // A coordinator that dies mid-run shows up to its clients as a reset connection; say why.
  let stopping = false;
  child.once('exit', (code, signal) => {
    if (!stopping && !procs.closing) process.stderr.write(`coordinator ${opts.label} exited (${code ?? signal}) during the run; its last lines:\n${stderrTail}`);
  });
  return {
    child,
    pid: child.pid!,
    port,
    warnings,
    printed: (text) => new Promise((resolve) => waiters.push({ text, resolve })),
    stop: () => {
      stopping = true;
      return procs.stop(child, 'SIGTERM', 15_000);
    },
  };
}
