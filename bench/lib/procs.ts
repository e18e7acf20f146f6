/**
 * The one registry of what a suite starts: child processes (forked helpers
 * answering RPCs, spawned coordinators and workers) and temp dirs. close()
 * stops and removes all of them when the run ends or fails; a signal runs
 * closeNow(), so no helper outlives an interrupted benchmark.
 *
 *   const procs = new Procs();
 *   const undo = procs.closeOnSignal();
 *   try {
 *     const sim = procs.fork<SimCommand>(join(import.meta.dirname, 'sim-worker.ts'), 'sim 1');
 *     const dir = await procs.tempDir('workers');
 *   } finally {
 *     undo();
 *     await procs.close();
 *   }
 */
import { fork, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcChild } from './rpc.js';

export class Procs {
  private readonly children = new Set<ChildProcess>();
  private readonly dirs: string[] = [];
  private isClosing = false;

  /** True once close() or closeNow() began: children exiting now are expected to. */
  get closing(): boolean {
    return this.isClosing;
  }

  /** A TypeScript helper (run with tsx) answering RPCs (bench/lib/rpc.ts). */
  fork<Cmd extends { type: string }>(file: string, label: string, opts: { args?: string[]; execArgv?: string[] } = {}): RpcChild<Cmd> {
    const child = fork(file, opts.args ?? [], { execArgv: [...(opts.execArgv ?? []), '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new RpcChild<Cmd>(this.track(child), label);
  }

  spawn(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
    return this.track(spawn(command, args, options));
  }

  async tempDir(prefix: string): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), `gogrid-bench-${prefix}-`));
    this.dirs.push(dir);
    return dir;
  }

  /** Signals the child and waits for it to go; SIGKILL after `graceMs`. */
  stop(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    return stopChild(child, signal, graceMs);
  }

  async close(): Promise<void> {
    this.isClosing = true;
    await Promise.all([...this.children].map((c) => stopChild(c, 'SIGTERM', 10_000)));
    await Promise.all(this.dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  }

  /** For a signal or exit handler, where nothing can be awaited. */
  closeNow(): void {
    this.isClosing = true;
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }

  /** On SIGINT or SIGTERM: closeNow() and exit 130. Returns the function that takes the handlers off again. */
  closeOnSignal(): () => void {
    const onSignal = () => {
      this.closeNow();
      process.exit(130);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    return () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
  }

  private track(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }
}

/** Signals a child process and waits for it to go; SIGKILL after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Calls `onLine` for each complete line the stream writes. */
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
