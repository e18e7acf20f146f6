/**
 * What each results file records about the machine and the code it ran on:
 * on a shared, noisy VM a figure means little without the load beside it.
 *
 *   const record = { machine: { ...machine(), loadAvgAtEnd: loadAvg() }, … };
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');

export type Machine = Record<string, string | number | boolean>;

/** The machine, this checkout's commit, and the load average at the call; `extra` adds a suite's own facts. */
export function machine(extra: Machine = {}): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    nproc: availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: release(),
    node: process.version,
    quic: `@matrixai/quic ${packageVersion('@matrixai/quic')} (native ${packageVersion('@matrixai/quic-linux-x64')})`,
    commit: git(['rev-parse', '--short', 'HEAD']) + (git(['status', '--porcelain', '--', 'src']) ? ' + uncommitted changes in src/' : ''),
    loadAvgAtStart: loadAvg(),
    ...extra,
  };
}

/** Other work on a shared machine shows here: a suite's own processes add about one. */
export function loadAvg(): string {
  return loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'not installed';
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}
