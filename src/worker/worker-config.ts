/**
 * The worker side's configuration in one place: every default, and which
 * source wins where several give a value. The host resolves it from its
 * options (the CLI's flags or the app), settings.json and the administrator's
 * override each time one of them changes; `startWorker` fills in what a
 * caller without a host (tests, benchmarks) left out.
 *
 *   const limits = jobLimits(flags, settings, policy);   // { slots, threads } jobs run within now
 *   const address = dialAddress({ typed: parseCoordinatorAddress(typedAddress({ form, saved, flag })), enrolled: stored.coordinator });
 *
 * Precedence, highest first:
 * - Coordinator address: the status window's enrollment form; `coordinator`
 *   in settings.json (the owner re-pointed the worker); --coordinator; to
 *   enroll only, the provisioning file's; the address enrolled in
 *   worker.json. None of them moves the pinned CA.
 * - Slots: the smallest of --slots (default 1), the administrator's
 *   `settings.slots` (else the owner's), and the administrator's
 *   `limits.slots`. A preset's own slot count (1) is no limit, so `--slots 4`
 *   on a dedicated server stays 4.
 * - Threads per job: the smaller of --threads (default: every logical
 *   processor) and the policy's `maxCores` (the administrator's over the owner's).
 * - Preset: the owner's (settings.json; the provisioning file's is saved there
 *   at enrollment); else the host's default (desktop in the app, --preset
 *   headless, default dedicated). The administrator's override applies on top
 *   (policy/settings.ts).
 * - Reconnect and enrollment retries: backoff.ts's defaults, unless a caller
 *   passes `agent.backoff` (tests, benchmarks).
 * - Environment: GOGRID_DATA_DIR picks the data dir when --data is not given
 *   (paths.ts); GOGRID_PROVISIONING_FILE replaces the provisioning file's
 *   search path (provisioning.ts).
 */
import { availableParallelism } from 'node:os';
import type { HostSettings } from './host-settings.js';
import type { Policy } from './policy/index.js';
import { parseCoordinatorAddress } from './address.js';

export const WORKER_DEFAULTS = {
  /** Jobs run at once. */
  slots: 1,
  /** Runtime threads per job. */
  threads: availableParallelism(),
  /** Labels jobs may require. */
  labels: [] as readonly string[],
  /** Size cap of the model cache. */
  modelCacheBytes: 10 * 2 ** 30,
  /** How long a QUIC handshake with the coordinator may take (a TLS one over TCP too). */
  connectTimeoutMs: 10_000,
  /**
   * How long QUIC has to connect before TCP is raced in (dial.ts): a QUIC
   * handshake takes 1–2 round trips plus a stateless retry, well under a
   * second on any working network; past this, UDP is most likely dropped.
   */
  quicHeadStartMs: 1500,
  /** While on TCP, how often a QUIC handshake is tried to move back. */
  quicRetryMs: 5 * 60_000,
  /** Upper bound on how long a silent coordinator goes unnoticed: the seed's heartbeat_timeout_secs. */
  maxIdleTimeoutMs: 90_000,
  /** QUIC pings on top of heartbeats; none: the heartbeats alone keep the connection alive. */
  keepAliveIntervalMs: null,
  /** How often the host's policy looks at the signals while a job runs (goal ≤ 1 s to step aside, with the stop itself: BENCHMARKS.md). */
  policyIntervalMs: 500,
  /** The same while no job runs: about 1 ms of CPU per look keeps an idle worker near its heartbeat's cost. */
  idlePolicyIntervalMs: 5000,
  /** How long a suspended job waits for its owner to leave before it is handed back. */
  suspendGraceMs: 5 * 60_000,
} as const;

export interface JobLimits {
  slots: number;
  threads: number;
}

/** The slots and threads per job that jobs run within now (the precedence above). */
export function jobLimits(flags: { slots?: number; threads?: number } | undefined, settings: HostSettings, policy: Policy): JobLimits {
  const threads = flags?.threads ?? WORKER_DEFAULTS.threads;
  const admin = settings.adminPolicy;
  const chosen = (admin.settings ?? settings.policy)?.slots;
  return {
    threads: Math.min(threads, policy.maxCores ?? threads),
    slots: Math.min(flags?.slots ?? WORKER_DEFAULTS.slots, chosen ?? Infinity, admin.limits?.slots ?? Infinity),
  };
}

/** The address a person typed that overrides the enrolled one: the form's, settings.json's, then --coordinator. */
export function typedAddress(sources: { form?: string; saved?: string; flag?: string }): string | undefined {
  return sources.form ?? sources.saved ?? sources.flag;
}

type Address = { host: string; port: number };

/**
 * The address to dial: the typed one (parsed), else the enrolled one when
 * connecting, else the provisioning file's when enrolling; null when
 * enrolling has none.
 */
export function dialAddress(sources: { typed: Address | null; enrolled?: Address; provisioned?: string }): Address | null {
  if (sources.typed) return sources.typed;
  if (sources.enrolled) return sources.enrolled;
  return sources.provisioned === undefined ? null : parseCoordinatorAddress(sources.provisioned);
}
