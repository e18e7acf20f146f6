/**
 * The worker's local control API: what the status window reads and the
 * owner's commands. One contract, two carriers: in the desktop app the
 * preload bridge sends these over Electron IPC (main parses them); headless,
 * the worker's loopback HTTP endpoint takes the same bodies (bearer token
 * from a 0600 file, Host and Origin checked). The renderer only ever sees
 * `WorkerView`.
 *
 *   GET  /v1/status                       → WorkerView
 *   POST /v1/control   ControlAction      → WorkerView
 *   POST /v1/enroll    EnrollForm         → WorkerView   (first run)
 *   PUT  /v1/settings  SettingsUpdate     → WorkerView
 *   errors                                → ApiErrorBody with the code's HTTP status
 *
 *   const view = WorkerView.parse(await (await fetch(`${base}/v1/status`, { headers })).json());
 */
import { z } from 'zod';
import { PolicySettings, UserControl } from './policy.js';
import { line } from './text.js';

const isoDate = z.iso.datetime();

/** The path of every route, so server, browser bridge and tests name them once. */
export const CONTROL_ROUTES = {
  status: '/v1/status',
  control: '/v1/control',
  enroll: '/v1/enroll',
  settings: '/v1/settings',
} as const;

/** The longest snooze: past it, the owner means pause. */
export const MAX_SNOOZE_MS = 7 * 24 * 3600 * 1000;

/** The owner's commands: tray, status window, `gogrid worker pause|resume|snooze|finish`. */
export const ControlAction = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('pause') }),
  z.strictObject({ action: z.literal('resume') }),
  /** Paused until `untilMs` (epoch ms), or for `minutes`; one of them. */
  z
    .strictObject({
      action: z.literal('snooze'),
      untilMs: z.number().int().positive().optional(),
      minutes: z.number().int().min(1).max(MAX_SNOOZE_MS / 60_000).optional(),
    })
    .refine((a) => (a.untilMs === undefined) !== (a.minutes === undefined), { message: 'give either untilMs or minutes' }),
  /** Finish the running job, take no new one, then stay paused. */
  z.strictObject({ action: z.literal('finish') }),
]);
export type ControlAction = z.infer<typeof ControlAction>;

/** First run: the coordinator's address and an enrollment token, as typed into the window. */
export const EnrollForm = z.strictObject({
  coordinator: line(300, { trim: true }).min(1),
  token: line(500, { trim: true }).min(1),
  name: line(256, { trim: true }).min(1).optional(),
});
export type EnrollForm = z.infer<typeof EnrollForm>;

export const SettingsUpdate = z
  .strictObject({
    policy: PolicySettings.optional(),
    /** Only where the host can start at login (the desktop app). */
    startAtLogin: z.boolean().optional(),
    /** A new address for the same coordinator (its CA stays pinned). */
    coordinator: line(300, { trim: true }).min(1).optional(),
  })
  .refine((u) => Object.keys(u).length > 0, { message: 'nothing to change' });
export type SettingsUpdate = z.infer<typeof SettingsUpdate>;

export const ConnectionState = z.enum(['not-enrolled', 'enrolling', 'connecting', 'online', 'waiting', 'stopping', 'stopped', 'failed']);
export type ConnectionState = z.infer<typeof ConnectionState>;

export const RunningJobView = z.object({
  jobId: z.string(),
  kind: z.string(),
  modelName: z.string(),
  /** 0..1, when the executor reports it. */
  progress: z.number().min(0).max(1).nullable(),
  /** The executor's latest word on it, e.g. "412 tokens · 38 tokens/s" for an LLM request; null before it said any. */
  detail: z.string().max(1000).nullable(),
  startedAt: isoDate,
  /** Stopped for a moment while its owner uses the machine (SIGSTOP), not lost. */
  suspended: z.boolean(),
});
export type RunningJobView = z.infer<typeof RunningJobView>;

export const WorkerView = z.object({
  appVersion: z.string(),
  connection: z.object({
    state: ConnectionState,
    /** One line: why it is waiting, what failed. */
    detail: z.string().nullable(),
    /** HOST:PORT, once known. */
    coordinator: z.string().nullable(),
  }),
  worker: z.object({ id: z.string(), name: z.string() }).nullable(),
  hardware: z
    .object({
      /** One line: "Intel Core i7 · 8 threads · 16 GiB · NVIDIA RTX 3060". */
      summary: z.string(),
      cpu: z.string().nullable(),
      threads: z.number().int().nullable(),
      memoryBytes: z.number().int().nullable(),
      gpus: z.array(z.string()),
      os: z.string(),
    })
    .nullable(),
  jobs: z.object({
    running: z.array(RunningJobView),
    /** Since local midnight. */
    completedToday: z.number().int().nonnegative(),
    failedToday: z.number().int().nonnegative(),
    lastError: z.object({ message: z.string(), at: isoDate }).nullable(),
  }),
  policy: z.object({
    /** Jobs may run now. */
    run: z.boolean(),
    /** The rule that decided (`running`, `finishing`, `user`, `input`, `battery`…). */
    cause: z.string(),
    /** One sentence for the owner. */
    reason: z.string(),
    control: UserControl,
    /** The administrator set a pause, rules or limits the owner cannot lift. */
    byAdmin: z.boolean(),
    /** Why jobs may not use the GPU while the worker runs ("GPU jobs wait until you are away"); null when they may, or while paused. */
    gpuReason: z.string().nullable().default(null),
  }),
  settings: z.object({
    policy: PolicySettings,
    /** Null where the host cannot start at login (headless). */
    startAtLogin: z.boolean().nullable(),
  }),
});
export type WorkerView = z.infer<typeof WorkerView>;
