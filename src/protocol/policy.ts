/**
 * The polite-worker settings that cross a boundary: the owner's settings (a
 * preset or custom knobs, saved by the app and the local control endpoint),
 * the administrator's override the coordinator pushes, and the owner's own
 * pause controls. The policy that reads them lives in worker/policy/.
 *
 *   const override = AdminOverride.parse({ paused: true, message: 'Maintenance until 18:00' });
 *   const settings = PolicySettings.parse({ preset: 'custom', runOnBattery: true });
 */
import { z } from 'zod';
import { line } from './text.js';

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** The last instant a JavaScript Date can hold. */
const MAX_DATE_MS = 8.64e15;
const HH_MM = /^([01]\d|2[0-3]):[0-5]\d$/;
const HH_MM_OR_24 = /^(([01]\d|2[0-3]):[0-5]\d|24:00)$/;

export const ScheduleWindow = z
  .strictObject({
    /** The days the window opens on. */
    days: z.array(z.enum(WEEKDAYS)).min(1).max(7),
    /** Opening time, inclusive. */
    from: z.string().regex(HH_MM, 'expected a time "HH:MM" from 00:00 to 23:59'),
    /** Closing time, exclusive; earlier than `from` closes on the next day; "24:00" is midnight at the end of the day. */
    to: z.string().regex(HH_MM_OR_24, 'expected a time "HH:MM" from 00:00 to 24:00'),
  })
  // Equal times could mean "never" or "all day"; neither reading is obvious, so ask for 00:00–24:00.
  .refine((w) => w.from !== w.to, { message: 'from and to are equal; for a whole day write from "00:00" to "24:00"', path: ['to'] });
export type ScheduleWindow = z.infer<typeof ScheduleWindow>;

const limitFields = {
  /** Most CPU cores a job may use (its runtime's thread count); null: all of them. @default null */
  maxCores: z.int().min(1).max(1024).nullable().optional(),
  /** Most jobs at once. @default 1 */
  slots: z.int().min(1).max(256).optional(),
  /** false: jobs never use the GPU, whatever the rules say (the tray's *Use the GPU*); an administrator's false the owner cannot lift. @default true */
  useGpu: z.boolean().optional(),
};

/** `away`: only while you are away (idle or screen locked); `always`: also while you use the computer. */
export const GpuUse = z.enum(['away', 'always', 'never']);
export type GpuUse = z.infer<typeof GpuUse>;

/** Start after 5 min without input, stop at once on input, never on battery, pause above 50 % CPU from other programs, GPU only while away. The default on a desktop. */
export const DesktopSettings = z.strictObject({ preset: z.literal('desktop'), ...limitFields });

/** Always run: a server or a machine given to the grid. The default headless. */
export const DedicatedSettings = z.strictObject({ preset: z.literal('dedicated'), ...limitFields });

export const CustomSettings = z.strictObject({
  preset: z.literal('custom'),
  /** Minutes without input (or a locked screen) before you count as away. @default 5 */
  idleMinutes: z.int().min(1).max(1440).optional(),
  /** Run while you use the computer, too; the GPU still waits unless `gpu` is `always`. @default false */
  runWhileInUse: z.boolean().optional(),
  /** Run on battery power. @default false */
  runOnBattery: z.boolean().optional(),
  /** On battery: pause below this charge, and stay paused until the charger is connected. @default 50 */
  minBatteryPercent: z.int().min(0).max(100).optional(),
  /** Pause while other programs use more than this share of the CPU; null: ignore their load. @default 50 */
  cpuThresholdPercent: z.int().min(1).max(100).nullable().optional(),
  /** Weekly windows in which the worker may run; empty: any time. @default [] */
  schedule: z.array(ScheduleWindow).max(64).optional(),
  /** When jobs may use the GPU. @default 'away' */
  gpu: GpuUse.optional(),
  ...limitFields,
});

export const PolicySettings = z.discriminatedUnion('preset', [DesktopSettings, DedicatedSettings, CustomSettings]);
export type PolicySettings = z.infer<typeof PolicySettings>;
export type PresetName = PolicySettings['preset'];

/** The settings with the owner's GPU switch on (the key left out, as by default) or off; every other choice kept. */
export function withGpu(settings: PolicySettings, on: boolean): PolicySettings {
  const rest: Record<string, unknown> = { ...settings };
  delete rest['useGpu'];
  return (on ? rest : { ...rest, useGpu: false }) as PolicySettings;
}

/** What an administrator pushes from the coordinator, for one worker or all; shown to the owner as such. */
export const AdminOverride = z.strictObject({
  /** Paused by the administrator; the owner cannot resume. @default false */
  paused: z.boolean().optional(),
  /** Shown after "Paused by the administrator". */
  message: line(200, { trim: true }).min(1).optional(),
  /** Replaces the owner's settings entirely. */
  settings: PolicySettings.optional(),
  /** Ceilings on whichever settings apply; the owner may still choose less. */
  limits: z.strictObject(limitFields).optional(),
});
export type AdminOverride = z.infer<typeof AdminOverride>;

/** The owner's own pause controls (tray, status window, `gogrid worker pause|resume|snooze|finish`). */
export const UserControl = z.discriminatedUnion('state', [
  /** No pause requested: the rules decide. */
  z.strictObject({ state: z.literal('active') }),
  /** "Pause" until "Resume". */
  z.strictObject({ state: z.literal('paused') }),
  /** Paused until `untilMs` (epoch ms), then the rules decide again; nothing needs to clear it. */
  z.strictObject({ state: z.literal('snoozed'), untilMs: z.number().int().min(0).max(MAX_DATE_MS) }),
  /** Folding@home's "finish": let the running job end, take no new one, then stay paused. */
  z.strictObject({ state: z.literal('finishing') }),
]);
export type UserControl = z.infer<typeof UserControl>;
