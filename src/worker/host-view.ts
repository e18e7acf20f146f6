/**
 * The status window's `WorkerView`, a plain function of what the host knows:
 * its connection, the worker, the policy's last decision, the settings, the
 * hardware line and the day's job counts.
 *
 *   const view = workerView({ appVersion, connection, worker, decision, holdBack, ... });
 *   hardwareView(report).summary  // "Intel Core i7-8700 · 12 threads · 31.2 GiB · NVIDIA RTX 3060"
 */
import { z } from 'zod';
import type { ConnectionState, HardwareReport, PolicySettings, UserControl, WorkerView } from '../protocol/index.js';
import type { Decision } from './policy/index.js';
import type { RunningWorker } from './worker.js';

export interface ViewParts {
  appVersion: string;
  connection: { state: ConnectionState; detail: string | null };
  /** HOST:PORT the owner saved, shown until the worker is enrolled. */
  savedCoordinator: string | null;
  worker: RunningWorker | null;
  decision: Decision | null;
  /** Why the host takes no new jobs whatever the policy says (draining, quitting), or null. */
  holdBack: string | null;
  control: UserControl;
  byAdmin: boolean;
  policySettings: PolicySettings;
  startAtLogin: boolean | null;
  counts: DayCounts;
}

export function workerView(p: ViewParts): WorkerView {
  const identity = p.worker?.agent.currentIdentity ?? null;
  return {
    appVersion: p.appVersion,
    connection: {
      ...p.connection,
      coordinator: identity ? `${identity.coordinator.host}:${identity.coordinator.port}` : p.savedCoordinator,
    },
    worker: identity ? { id: identity.workerId, name: identity.name } : null,
    hardware: p.worker ? hardwareView(p.worker.hardware) : null,
    jobs: { running: p.worker?.runner.views() ?? [], ...p.counts.view(new Date()) },
    policy: {
      run: p.decision?.run ?? false,
      cause: p.decision?.cause ?? 'starting',
      reason: p.holdBack ?? p.decision?.reason ?? 'Starting',
      control: p.control,
      byAdmin: p.byAdmin,
      gpuReason: p.holdBack === null && p.decision?.run ? p.decision.gpuReason : null,
    },
    settings: { policy: p.policySettings, startAtLogin: p.startAtLogin },
  };
}

export function hardwareView(h: HardwareReport): NonNullable<WorkerView['hardware']> {
  const cpu = [h.cpu.manufacturer, h.cpu.brand].filter((s): s is string => !!s).join(' ') || null;
  const gpus = h.gpus.map((g) => [g.vendor, g.model].filter((s): s is string => !!s).join(' ') || 'GPU');
  const memory = h.memory.totalBytes;
  const os = [h.os.distro ?? h.os.platform, h.os.release, h.os.arch].filter((s): s is string => !!s).join(' ');
  const summary = [
    cpu ?? 'Unknown CPU',
    h.cpu.threads === null ? null : `${h.cpu.threads} threads`,
    memory === null ? null : `${(memory / 2 ** 30).toFixed(1)} GiB`,
    ...gpus,
  ]
    .filter((s): s is string => s !== null)
    .join(' · ');
  return { summary, cpu, threads: h.cpu.threads, memoryBytes: memory, gpus, os };
}

/** What DayCounts keeps across restarts (`today.json` in the data dir). */
const SavedCounts = z.object({
  day: z.string().max(64),
  completed: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  lastError: z.object({ message: z.string().max(8192), at: z.string().max(64) }).nullable(),
});
export type SavedCounts = z.infer<typeof SavedCounts>;

/** Jobs finished since local midnight, and the last failure; kept across restarts by the host. */
export class DayCounts {
  private day = '';
  private completed = 0;
  private failed = 0;
  private lastError: { message: string; at: string } | null = null;

  /** From what `saved()` returned before a restart; anything unreadable starts the day at zero. */
  static restore(saved: unknown): DayCounts {
    const counts = new DayCounts();
    const parsed = SavedCounts.safeParse(saved);
    if (parsed.success) Object.assign(counts, parsed.data);
    return counts;
  }

  saved(): SavedCounts {
    return { day: this.day, completed: this.completed, failed: this.failed, lastError: this.lastError };
  }

  record(e: { ok: boolean; error: string | null; at: Date }): void {
    this.roll(e.at);
    if (e.ok) this.completed++;
    else {
      this.failed++;
      this.lastError = { message: e.error ?? 'failed', at: e.at.toISOString() };
    }
  }

  view(now: Date): { completedToday: number; failedToday: number; lastError: { message: string; at: string } | null } {
    this.roll(now);
    return { completedToday: this.completed, failedToday: this.failed, lastError: this.lastError };
  }

  private roll(at: Date): void {
    const day = at.toDateString();
    if (day === this.day) return;
    this.day = day;
    this.completed = 0;
    this.failed = 0;
  }
}
