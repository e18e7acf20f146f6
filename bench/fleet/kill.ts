/**
 * How long a coordinator takes to notice a worker that died without a word:
 * a small coordinator of its own, a few workers in one simulator process,
 * SIGKILL, and the time until the coordinator logs each "worker offline".
 *
 *   const { noticed } = await armKill({ procs, root, label: 'default', intervalSecs: 30, timeoutSecs: 90, workers: 4, log });
 *   // … other work; an idle coordinator holding dead connections costs it nothing …
 *   const result = await noticed; // detectSecs ≈ timeoutSecs
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Procs } from '../lib/procs.js';
import { Enrolled, Online, type SimCommand } from './commands.js';
import { createToken, fleetCoordinator } from './coordinator.js';

export interface KillOptions {
  procs: Procs;
  /** A scratch dir; the coordinator and the workers keep their files under it. */
  root: string;
  label: string;
  intervalSecs: number;
  timeoutSecs: number;
  workers: number;
  log: (line: string) => void;
}

export interface KillResult {
  label: string;
  heartbeatIntervalSecs: number;
  heartbeatTimeoutSecs: number;
  workers: number;
  /** Per killed worker: from SIGKILL to the coordinator's "worker offline". */
  detectSecs: number[];
  /** Per killed worker: from its welcome (the last the coordinator heard of it) to "worker offline". */
  sinceLastHeardSecs: number[];
}

/**
 * Starts the coordinator and the workers, and SIGKILLs them right after they
 * are welcomed; `noticed` resolves once the coordinator has logged every one
 * of them offline, and stops that coordinator.
 */
export async function armKill(opts: KillOptions): Promise<{ noticed: Promise<KillResult> }> {
  const { procs, label, intervalSecs, timeoutSecs, log } = opts;
  const dataDir = join(opts.root, `kill-${label}`);
  const c = await fleetCoordinator(procs, { dataDir, label: `kill ${label}`, heartbeatIntervalSecs: intervalSecs, heartbeatTimeoutSecs: timeoutSecs });
  try {
    const probe = procs.fork<SimCommand>(join(import.meta.dirname, 'sim-worker.ts'), `probe ${label}`);
    const token = await createToken(dataDir, opts.workers);
    const dirs = Array.from({ length: opts.workers }, (_, i) => join(dataDir, 'workers', String(i)));
    await probe.call({ type: 'enroll', coordinator: { host: '127.0.0.1', port: c.port }, token, dirs, concurrency: opts.workers }, Enrolled);
    const { welcomeAt } = await probe.call({ type: 'quic', keepAliveMs: null, transport: 'quic', concurrency: opts.workers }, Online);
    const killedAt = Date.now();
    await procs.stop(probe.child, 'SIGKILL', 0);
    const ids = await Promise.all(dirs.map(async (d) => (JSON.parse(await readFile(join(d, 'worker.json'), 'utf8')) as { workerId: string }).workerId));
    log(`kill ${label}: killed ${opts.workers} workers (heartbeat ${intervalSecs} s, timeout ${timeoutSecs} s); waiting for the coordinator to notice`);
    const noticed = (async () => {
      try {
        const offline = await c.offlineOf(ids);
        const result: KillResult = {
          label,
          heartbeatIntervalSecs: intervalSecs,
          heartbeatTimeoutSecs: timeoutSecs,
          workers: ids.length,
          detectSecs: ids.map((id) => (offline.get(id)! - killedAt) / 1000),
          sinceLastHeardSecs: ids.map((id, i) => (offline.get(id)! - welcomeAt[i]!) / 1000),
        };
        log(`kill ${label}: noticed after ${result.detectSecs.map((s) => s.toFixed(1)).join(', ')} s`);
        return result;
      } finally {
        await c.stop();
      }
    })();
    return { noticed };
  } catch (e) {
    await c.stop();
    throw e;
  }
}
