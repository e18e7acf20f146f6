/**
 * The owner's policy settings (a preset, or custom knobs), the administrator's
 * override pushed from the coordinator, and `compilePolicy`, which turns both
 * into the one fully-required `Policy` that `decide` reads. Every default
 * lives in `PRESETS`; a custom setting left out takes the desktop preset's.
 *
 *   const policy = compilePolicy({ preset: 'custom', runOnBattery: true, minBatteryPercent: 30 });
 *   const policy = compilePolicy({ preset: 'desktop' }, { limits: { maxCores: 2 } }); // from the coordinator
 */
import type { z } from 'zod';
import { GridError } from '../../protocol/errors.js';
import { zodProblems } from '../../protocol/zod-problems.js';
import {
  AdminOverride,
  CustomSettings,
  DedicatedSettings,
  DesktopSettings,
  GpuUse,
  PolicySettings,
  type PresetName,
} from '../../protocol/policy.js';
import { compileSchedule, type CompiledWindow, type ScheduleWindow } from './schedule.js';

export { AdminOverride, CustomSettings, DedicatedSettings, DesktopSettings, GpuUse, PolicySettings, type PresetName };

interface Rules {
  idleMinutes: number;
  runWhileInUse: boolean;
  runOnBattery: boolean;
  minBatteryPercent: number;
  cpuThresholdPercent: number | null;
  schedule: ScheduleWindow[];
  gpu: GpuUse;
  /** Other programs' GPU use, whole percent, above which jobs leave the GPU; null: rule off. */
  gpuBusyPercent: number | null;
  /** Temperature above which jobs leave the GPU until it has cooled by GPU_COOL_DOWN_C; null: rule off. */
  gpuMaxTempC: number | null;
  maxCores: number | null;
  slots: number;
}

/**
 * Every default. Desktop follows the peers (ANCHORS.md): HTCondor and BOINC
 * start after minutes without input and suspend on input; BOINC and the
 * original GoGrid never run on battery; BOINC's "not in use" CPU limit is 50 %.
 * The 50 % battery minimum (custom, on battery) leaves the owner at least half
 * a charge. Dedicated switches every rule off except the owner's and the
 * administrator's pause.
 */
export const PRESETS: Readonly<Record<'desktop' | 'dedicated', Readonly<Rules>>> = {
  desktop: {
    idleMinutes: 5,
    runWhileInUse: false,
    runOnBattery: false,
    minBatteryPercent: 50,
    cpuThresholdPercent: 50,
    schedule: [],
    gpu: 'away',
    gpuBusyPercent: 30,
    gpuMaxTempC: 85,
    maxCores: null,
    slots: 1,
  },
  dedicated: {
    idleMinutes: 5,
    runWhileInUse: true,
    runOnBattery: true,
    minBatteryPercent: 0,
    cpuThresholdPercent: null,
    schedule: [],
    gpu: 'always',
    gpuBusyPercent: null,
    gpuMaxTempC: null,
    maxCores: null,
    slots: 1,
  },
};

/** How far below its ceiling a GPU must cool before jobs use it again, so a GPU at the limit does not flap. */
export const GPU_COOL_DOWN_C = 5;

/**
 * Timings of the anti-flap rules; fixed, not knobs, but here so every number
 * the decision uses is in one place.
 */
export const TIMINGS = {
  /**
   * After other programs' CPU use went over the threshold, resume only once
   * it has stayed at or under it this long. A hold time rather than a margin:
   * it bounds how often the worker can switch (at most one resume per 30 s)
   * whatever shape the load has, where a margin (pause > 50 %, resume < 40 %)
   * still flaps on every sample of a load swinging wider than the margin, and
   * it keeps the one threshold the owner set as the only number in the rule.
   */
  cpuCalmSeconds: 30,
  /**
   * A battery reading stays valid this long when the next one is unknown, so
   * a sensor hiccup on a laptop on battery does not start a job for one poll.
   */
  batteryHoldSeconds: 60,
} as const;

/** The compiled policy: every value present, in the units `decide` uses. */
export interface Policy {
  preset: PresetName;
  /** Input-free time after which the owner counts as away, ms. */
  idleMs: number;
  runWhileInUse: boolean;
  runOnBattery: boolean;
  minBatteryPercent: number;
  /** Other programs' CPU use, in whole percent, above which the worker pauses; null: rule off. */
  cpuThresholdPercent: number | null;
  cpuCalmMs: number;
  batteryHoldMs: number;
  schedule: readonly CompiledWindow[];
  gpu: GpuUse;
  /** Other programs' GPU use, whole percent, above which jobs leave the GPU; null: rule off. */
  gpuBusyPercent: number | null;
  /** The GPU temperature above which jobs leave it (until GPU_COOL_DOWN_C cooler); null: rule off. */
  gpuMaxTempC: number | null;
  /** Who turned the GPU off whatever the rules say (`useGpu: false`): the owner's switch, the administrator's limit, or nobody. */
  gpuSwitchedOff: 'owner' | 'admin' | null;
  maxCores: number | null;
  slots: number;
  admin: {
    paused: boolean;
    message: string | null;
    /** The rules are the administrator's, not the owner's. */
    setRules: boolean;
    /** An administrator's ceiling is below what the owner chose. */
    setLimits: boolean;
  };
}

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = zodProblems(result.error, [what]).map((p) => `${p.path}: ${p.message}`);
  throw new GridError('GG_ERR_CONFIG_INVALID', problems.join('\n'));
}

function rulesOf(settings: PolicySettings): Rules {
  const { preset, ...rest } = settings;
  const given: Partial<Rules> = rest;
  const base = PRESETS[preset === 'custom' ? 'desktop' : preset];
  // `!== undefined`, not `??`: null is a real choice ("no CPU rule", "all cores").
  const or = <K extends keyof Rules>(key: K): Rules[K] => {
    const value = given[key];
    return value === undefined ? base[key] : value;
  };
  return {
    idleMinutes: or('idleMinutes'),
    runWhileInUse: or('runWhileInUse'),
    runOnBattery: or('runOnBattery'),
    minBatteryPercent: or('minBatteryPercent'),
    cpuThresholdPercent: or('cpuThresholdPercent'),
    schedule: or('schedule'),
    gpu: or('gpu'),
    gpuBusyPercent: or('gpuBusyPercent'),
    gpuMaxTempC: or('gpuMaxTempC'),
    maxCores: or('maxCores'),
    slots: or('slots'),
  };
}

/** A ceiling only tightens: null (no limit) loses to any number. */
function lower(own: number | null, ceiling: number | null | undefined): number | null {
  if (ceiling === undefined || ceiling === null) return own;
  return own === null ? ceiling : Math.min(own, ceiling);
}

/**
 * Validates both layers and compiles them; once per change, not per decision.
 * Throws GridError GG_ERR_CONFIG_INVALID naming every bad key.
 */
export function compilePolicy(settings: PolicySettings, admin: AdminOverride = {}): Policy {
  const own = parse(PolicySettings, settings, 'policy');
  const override = parse(AdminOverride, admin, 'admin');
  const effective = override.settings ?? own;
  const rules = rulesOf(effective);
  const maxCores = lower(rules.maxCores, override.limits?.maxCores);
  const slots = lower(rules.slots, override.limits?.slots) ?? rules.slots;
  const gpuSwitchedOff = override.limits?.useGpu === false ? 'admin' : effective.useGpu === false ? (override.settings ? 'admin' : 'owner') : null;
  return {
    preset: effective.preset,
    idleMs: rules.idleMinutes * 60_000,
    runWhileInUse: rules.runWhileInUse,
    runOnBattery: rules.runOnBattery,
    minBatteryPercent: rules.minBatteryPercent,
    cpuThresholdPercent: rules.cpuThresholdPercent,
    cpuCalmMs: TIMINGS.cpuCalmSeconds * 1000,
    batteryHoldMs: TIMINGS.batteryHoldSeconds * 1000,
    schedule: compileSchedule(rules.schedule),
    gpu: gpuSwitchedOff === null ? rules.gpu : 'never',
    gpuSwitchedOff,
    gpuBusyPercent: rules.gpuBusyPercent,
    gpuMaxTempC: rules.gpuMaxTempC,
    maxCores,
    slots,
    admin: {
      paused: override.paused ?? false,
      message: override.message ?? null,
      setRules: override.settings !== undefined,
      setLimits: maxCores !== rules.maxCores || slots !== rules.slots || (override.limits?.useGpu === false && effective.useGpu !== false),
    },
  };
}
