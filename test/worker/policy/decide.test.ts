import { describe, expect, it } from 'vitest';
import type { PolicyNow } from '../../../src/worker/policy/clock.js';
import { decide, PRECEDENCE, type Decision } from '../../../src/worker/policy/decide.js';
import { INITIAL_MEMORY, type PolicyMemory, type Rule } from '../../../src/worker/policy/rules.js';
import { compilePolicy, type AdminOverride, type Policy, type PolicySettings } from '../../../src/worker/policy/settings.js';
import type { Signals } from '../../../src/worker/policy/signals.js';
import { FREE } from './fixtures.js';

const MONDAY_NOON = Date.parse('2025-03-10T12:00:00Z');
const utc = (epochMs: number): PolicyNow => ({ epochMs, timeZone: 'UTC' });

const desktop = compilePolicy({ preset: 'desktop' });
const dedicated = compilePolicy({ preset: 'dedicated' });
const custom = (settings: Omit<Extract<PolicySettings, { preset: 'custom' }>, 'preset'>, admin?: AdminOverride) =>
  compilePolicy({ preset: 'custom', ...settings }, admin);

/** One decision from a fresh memory; what the table asserts on. */
function once(policy: Policy, signals: Partial<Signals>, nowMs = MONDAY_NOON, memory: PolicyMemory = INITIAL_MEMORY) {
  const d = decide(policy, { ...FREE, ...signals }, memory, utc(nowMs));
  return { run: d.run, cause: d.cause, reason: d.reason };
}
const running = (reason: string) => ({ run: true, cause: 'running', reason });
const paused = (cause: Rule, reason: string) => ({ run: false, cause, reason });

describe('input: start after N minutes without input, stop at once on input', () => {
  it.each([
    [0, false, paused('input', 'You are using this computer')],
    [1, false, paused('input', 'You are using this computer')],
    [299, false, paused('input', 'You are using this computer')],
    [299.999, false, paused('input', 'You are using this computer')],
    [300, false, running('Running: this computer has been idle for 5 min')], // exactly 5 min
    [359, false, running('Running: this computer has been idle for 5 min')],
    [360, false, running('Running: this computer has been idle for 6 min')],
    [3599, false, running('Running: this computer has been idle for 59 min')],
    [3600, false, running('Running: this computer has been idle for 1 h')],
    [3900, false, running('Running: this computer has been idle for 1 h 5 min')],
    [90_000, false, running('Running: this computer has been idle for 25 h')],
    [0, true, running('Running: the screen is locked')], // a nudge at the lock screen is not use
    [600, true, running('Running: the screen is locked')],
    [null, true, running('Running: the screen is locked')], // locking tells us what no idle source could
    [null, false, paused('input', 'Cannot tell whether you are using this computer (no input or screen-lock signal here): choose Dedicated, or Custom with "Run while I use this computer"')],
    [null, null, paused('input', 'Cannot tell whether you are using this computer (no input or screen-lock signal here): choose Dedicated, or Custom with "Run while I use this computer"')],
    [0, null, paused('input', 'You are using this computer')],
    [300, null, running('Running: this computer has been idle for 5 min')],
  ])('idle %s s, screen locked %s → %j', (idleSeconds, screenLocked, expected) => {
    expect(once(desktop, { idleSeconds, screenLocked })).toEqual(expected);
  });

  it.each([
    [1, 59, false],
    [1, 60, true],
    [15, 899, false],
    [15, 900, true],
  ])('custom idleMinutes %i: idle %i s → run %s', (idleMinutes, idleSeconds, run) => {
    expect(once(custom({ idleMinutes }), { idleSeconds }).run).toBe(run);
  });
});

describe('CPU use of other programs: pause above the threshold', () => {
  it.each([
    [0, running('Running: this computer has been idle for 10 min')],
    [0.5, running('Running: this computer has been idle for 10 min')], // exactly 50 %: not above
    [0.504, running('Running: this computer has been idle for 10 min')], // reads 50 %: not above what is shown
    [0.505, paused('cpu', 'Other programs are using 51 % of the CPU')],
    [0.51, paused('cpu', 'Other programs are using 51 % of the CPU')],
    [0.72, paused('cpu', 'Other programs are using 72 % of the CPU')],
    [1, paused('cpu', 'Other programs are using 100 % of the CPU')],
    [null, running('Running: this computer has been idle for 10 min')], // unknown: the rule is ignored
  ])('other programs at %s → %j', (otherCpu, expected) => {
    expect(once(desktop, { otherCpu })).toEqual(expected);
  });

  it.each([
    [25, 0.25, true],
    [25, 0.26, false],
    [100, 1, true],
    [null, 1, true],
  ])('custom threshold %s %%: load %s → run %s', (cpuThresholdPercent, otherCpu, run) => {
    expect(once(custom({ cpuThresholdPercent }), { otherCpu }).run).toBe(run);
  });
});

describe('battery', () => {
  it.each([
    [true, 38, paused('battery', 'On battery (38 %)')],
    [true, 38.4, paused('battery', 'On battery (38 %)')],
    [true, 100, paused('battery', 'On battery (100 %)')],
    [true, null, paused('battery', 'On battery')],
    [false, 10, running('Running: this computer has been idle for 10 min')],
    [false, null, running('Running: this computer has been idle for 10 min')],
    [null, 38, running('Running: this computer has been idle for 10 min')], // unknown: not on battery
    [null, null, running('Running: this computer has been idle for 10 min')], // a desktop without a battery
  ])('desktop: on battery %s at %s %% → %j', (onBattery, batteryPercent, expected) => {
    expect(once(desktop, { onBattery, batteryPercent })).toEqual(expected);
  });

  const idle = 'Running: this computer has been idle for 10 min';
  it.each([
    [20, true, 100, running(idle)],
    [20, true, 20, running(idle)], // exactly the minimum
    [20, true, 19.5, running(idle)], // reads 20 %
    [20, true, 19.4, paused('battery', 'Battery low (19 %): waiting for the charger')],
    [20, true, 0, paused('battery', 'Battery low (0 %): waiting for the charger')],
    [20, true, null, paused('battery', 'On battery (charge unknown)')], // a minimum that cannot be checked is not met
    [0, true, null, running(idle)], // no minimum: nothing to check
    [0, true, 0, running(idle)],
    [100, true, 99, paused('battery', 'Battery low (99 %): waiting for the charger')],
    [100, true, 100, running(idle)],
    [20, false, 5, running(idle)], // charging
  ])('custom on battery, minimum %i %%: on battery %s at %s %% → %j', (minBatteryPercent, onBattery, batteryPercent, expected) => {
    expect(once(custom({ runOnBattery: true, minBatteryPercent }), { onBattery, batteryPercent })).toEqual(expected);
  });

  it('the default minimum on battery is half a charge', () => {
    expect(once(custom({ runOnBattery: true }), { onBattery: true, batteryPercent: 50 }).run).toBe(true);
    expect(once(custom({ runOnBattery: true }), { onBattery: true, batteryPercent: 49 }).run).toBe(false);
  });
});

describe('schedule', () => {
  const nights = custom({ schedule: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '19:00', to: '07:00' }] });
  it.each([
    ['2025-03-10T12:00:00Z', paused('schedule', 'Outside your schedule (runs 19:00\u201307:00)')],
    ['2025-03-10T18:59:59Z', paused('schedule', 'Outside your schedule (runs 19:00\u201307:00)')],
    ['2025-03-10T19:00:00Z', running('Running: this computer has been idle for 10 min')],
    ['2025-03-11T06:59:59Z', running('Running: this computer has been idle for 10 min')], // across midnight
    ['2025-03-11T07:00:00Z', paused('schedule', 'Outside your schedule (runs 19:00\u201307:00)')],
    ['2025-03-15T06:59:00Z', running('Running: this computer has been idle for 10 min')], // Friday night into Saturday
    ['2025-03-15T07:00:00Z', paused('schedule', 'Outside your schedule (runs Mon 19:00\u201307:00)')],
    ['2025-03-16T20:00:00Z', paused('schedule', 'Outside your schedule (runs tomorrow 19:00\u201307:00)')],
    ['2025-03-17T03:00:00Z', paused('schedule', 'Outside your schedule (runs 19:00\u201307:00)')], // Sunday night is not in it
  ])('%s (UTC) → %j', (iso, expected) => {
    expect(once(nights, {}, Date.parse(iso))).toEqual(expected);
  });

  it("reads the schedule on the owner's wall clock, not UTC", () => {
    const sixPmUtc = utc(Date.parse('2025-03-10T18:00:00Z')); // 19:00 in Berlin
    expect(decide(nights, FREE, INITIAL_MEMORY, sixPmUtc).run).toBe(false);
    expect(decide(nights, FREE, INITIAL_MEMORY, { ...sixPmUtc, timeZone: 'Europe/Berlin' }).run).toBe(true);
  });
});

describe("the owner's controls", () => {
  const noon = MONDAY_NOON;
  it.each([
    [{ state: 'active' }, false, { run: true, acceptJobs: true, cause: 'running' }],
    [{ state: 'paused' }, false, { run: false, acceptJobs: false, cause: 'user', reason: 'Paused by you' }],
    [{ state: 'paused' }, true, { run: false, acceptJobs: false, cause: 'user', reason: 'Paused by you' }],
    [{ state: 'snoozed', untilMs: noon + 3_600_000 }, false, { run: false, cause: 'snooze', reason: 'Snoozed until 13:00' }],
    [{ state: 'snoozed', untilMs: noon + 12 * 3_600_000 }, false, { run: false, cause: 'snooze', reason: 'Snoozed until tomorrow 00:00' }],
    [{ state: 'snoozed', untilMs: noon + 1 }, false, { run: false, cause: 'snooze', reason: 'Snoozed until 12:00' }],
    [{ state: 'snoozed', untilMs: noon }, false, { run: true, cause: 'running' }], // ends exactly now
    [{ state: 'snoozed', untilMs: noon - 1 }, false, { run: true, cause: 'running' }], // nobody has to clear it
    [{ state: 'finishing' }, true, { run: true, acceptJobs: false, cause: 'finishing', reason: 'Finishing the current job, then pausing' }],
    [{ state: 'finishing' }, false, { run: false, acceptJobs: false, cause: 'user', reason: 'Paused by you' }],
  ] as const)('%j, job running %s → %j', (control, jobRunning, expected) => {
    expect(decide(desktop, { ...FREE, control, jobRunning }, INITIAL_MEMORY, utc(noon))).toMatchObject(expected);
  });

  it('finishing still steps aside for the rules while the job runs', () => {
    expect(once(desktop, { control: { state: 'finishing' }, jobRunning: true, idleSeconds: 3 })).toEqual(paused('input', 'You are using this computer'));
  });

  it.each([[desktop], [dedicated]])('pause and snooze hold on every preset (%#)', (policy) => {
    expect(once(policy, { control: { state: 'paused' } }).run).toBe(false);
    expect(once(policy, { control: { state: 'snoozed', untilMs: MONDAY_NOON + 1000 } }).run).toBe(false);
  });
});

describe('presets', () => {
  const hostile: Partial<Signals> = { idleSeconds: 0, onBattery: true, batteryPercent: 3, otherCpu: 1 };
  it('dedicated runs whatever the machine is doing', () => {
    expect(decide(dedicated, { ...FREE, ...hostile }, INITIAL_MEMORY, utc(MONDAY_NOON))).toMatchObject({ run: true, acceptJobs: true, gpu: true, reason: 'Always on: this computer is dedicated to the grid' });
    expect(once(dedicated, { idleSeconds: null, screenLocked: null, onBattery: null, otherCpu: null })).toEqual(running('Always on: this computer is dedicated to the grid'));
  });

  it('desktop steps aside for the same machine', () => {
    expect(once(desktop, hostile).run).toBe(false);
  });

  it.each([
    [{ idleSeconds: 0 }],
    [{ idleSeconds: null }],
    [{ onBattery: true }],
    [{ otherCpu: 0.9 }],
    [{ idleSeconds: 299, otherCpu: 0.51, onBattery: true, batteryPercent: 80 }],
    [{}],
  ])('custom without settings decides exactly like desktop: %j', (signals) => {
    expect(once(custom({}), signals)).toEqual(once(desktop, signals));
  });
});

describe('GPU', () => {
  const inUse = custom({ runWhileInUse: true });
  const away = 'GPU jobs wait until you are away';
  it.each([
    ['desktop, away', desktop, { idleSeconds: 600 }, true, 'Running: this computer has been idle for 10 min', null],
    ['desktop, locked', desktop, { idleSeconds: 2, screenLocked: true }, true, 'Running: the screen is locked', null],
    // Paused: the reason says it all.
    ['desktop, paused', desktop, { idleSeconds: 2 }, false, 'You are using this computer', null],
    ['dedicated', dedicated, { idleSeconds: 2 }, true, 'Always on: this computer is dedicated to the grid', null],
    ['run while in use, in use', inUse, { idleSeconds: 2 }, false, 'Running while you use this computer, without the GPU', away],
    ['run while in use, away', inUse, { idleSeconds: 600 }, true, 'Running: this computer has been idle for 10 min', null],
    ['run while in use, unknown', inUse, { idleSeconds: null }, false, 'Running without the GPU: cannot tell whether you are using this computer', 'GPU jobs wait: cannot tell whether you are using this computer'],
    ['gpu always, in use', custom({ runWhileInUse: true, gpu: 'always' }), { idleSeconds: 2 }, true, 'Running while you use this computer', null],
    ['gpu always, unknown', custom({ runWhileInUse: true, gpu: 'always' }), { idleSeconds: null }, true, 'Running, whether or not you are using this computer', null],
    ['gpu never, away', custom({ gpu: 'never' }), { idleSeconds: 600 }, false, 'Running: this computer has been idle for 10 min', 'GPU off in your settings'],
    ['gpu never, in use', custom({ runWhileInUse: true, gpu: 'never' }), { idleSeconds: 2 }, false, 'Running while you use this computer', 'GPU off in your settings'],
    ["owner's switch off, dedicated", compilePolicy({ preset: 'dedicated', useGpu: false }), { idleSeconds: 2 }, false, 'Always on: this computer is dedicated to the grid', 'GPU off: you turned it off'],
    ["administrator's limit", compilePolicy({ preset: 'dedicated' }, { limits: { useGpu: false } }), { idleSeconds: 2 }, false, 'Always on: this computer is dedicated to the grid (limits set by your administrator)', 'GPU off: turned off by your administrator'],
    ["administrator's rules", compilePolicy({ preset: 'dedicated' }, { settings: { preset: 'custom', gpu: 'never' } }), { idleSeconds: 600 }, false, 'Running: this computer has been idle for 10 min (rules set by your administrator)', 'GPU off in the rules set by your administrator'],
  ] as const)('%s', (_name, policy, signals, gpu, reason, gpuReason) => {
    const d = decide(policy, { ...FREE, ...signals }, INITIAL_MEMORY, utc(MONDAY_NOON));
    expect({ gpu: d.gpu, reason: d.reason, gpuReason: d.gpuReason }).toEqual({ gpu, reason, gpuReason });
  });
});

describe('GPU: other programs and heat (nvidia-smi)', () => {
  const inUse = custom({ runWhileInUse: true, gpu: 'always' });
  /** Runs decide at each step (seconds from MONDAY_NOON, readings), carrying memory; the GPU reason at each. */
  const walk = (policy: Policy, steps: [number, Partial<Signals>][]) => {
    let memory: PolicyMemory = INITIAL_MEMORY;
    return steps.map(([s, signals]) => {
      const d = decide(policy, { ...FREE, ...signals }, memory, utc(MONDAY_NOON + s * 1000));
      memory = d.memory;
      return [d.run, d.gpu, d.gpuReason];
    });
  };

  it('keeps jobs off the GPU while other programs use it over 30 %, and for the calm period after; the worker keeps running', () => {
    expect(walk(desktop, [[0, { gpuBusy: 0.3 }], [2, { gpuBusy: 0.64 }], [4, { gpuBusy: 0.05 }], [33, { gpuBusy: 0.05 }], [40, { gpuBusy: null }]])).toEqual([
      [true, true, null],
      [true, false, 'Other programs are using the GPU (64 %)'],
      [true, false, 'Other programs were just using the GPU (64 %)'],
      [true, true, null],
      [true, true, null],
    ]);
  });

  it('keeps jobs off a GPU over 85 °C until it is below 80 °C, through unknown readings', () => {
    expect(walk(inUse, [[0, { gpuTempC: 84 }], [2, { gpuTempC: 86.4 }], [4, { gpuTempC: null }], [6, { gpuTempC: 81 }], [8, { gpuTempC: 79 }]])).toEqual([
      [true, true, null],
      [true, false, 'GPU at 86 °C: GPU jobs wait until it cools below 80 °C'],
      [true, false, 'GPU at 85 °C: GPU jobs wait until it cools below 80 °C'],
      [true, false, 'GPU at 81 °C: GPU jobs wait until it cools below 80 °C'],
      [true, true, null],
    ]);
  });

  it('has neither rule on a dedicated machine, and says first why the policy keeps the GPU anyway', () => {
    expect(walk(dedicated, [[0, { gpuBusy: 0.9, gpuTempC: 95 }]])).toEqual([[true, true, null]]);
    expect(walk(custom({ runWhileInUse: true }), [[0, { idleSeconds: 2, gpuBusy: 0.9, gpuTempC: 95 }]])).toEqual([[true, false, 'GPU jobs wait until you are away']]);
  });
});

describe('administrator', () => {
  it.each([
    [{ paused: true }, 'Paused by the administrator'],
    [{ paused: true, message: 'maintenance until Friday' }, 'Paused by the administrator: maintenance until Friday'],
  ])('%j → %s', (admin, reason) => {
    expect(once(compilePolicy({ preset: 'dedicated' }, admin), {})).toEqual(paused('admin', reason));
  });

  it("the owner's resume cannot lift it, and no other reason hides it", () => {
    const policy = compilePolicy({ preset: 'desktop' }, { paused: true });
    expect(once(policy, { control: { state: 'paused' }, idleSeconds: 0, onBattery: true }).cause).toBe('admin');
    expect(once(policy, { control: { state: 'finishing' }, jobRunning: true }).cause).toBe('admin');
  });

  const byAdmin = (settings: PolicySettings) => compilePolicy({ preset: 'dedicated' }, { settings });
  it.each([
    ['input', byAdmin({ preset: 'desktop' }), { idleSeconds: 3 }, paused('input', 'You are using this computer (rule set by your administrator)')],
    ['unknown input', byAdmin({ preset: 'desktop' }), { idleSeconds: null }, paused('input', 'Cannot tell whether you are using this computer (no input or screen-lock signal here): choose Dedicated, or Custom with "Run while I use this computer" (rule set by your administrator)')],
    ['battery', byAdmin({ preset: 'desktop' }), { onBattery: true, batteryPercent: 38 }, paused('battery', 'On battery (38 %; rule set by your administrator)')],
    ['CPU', byAdmin({ preset: 'desktop' }), { otherCpu: 0.72 }, paused('cpu', 'Other programs are using 72 % of the CPU (rule set by your administrator)')],
    [
      'schedule',
      byAdmin({ preset: 'custom', schedule: [{ days: ['mon'], from: '19:00', to: '07:00' }] }),
      {},
      paused('schedule', 'Outside the schedule (runs 19:00\u201307:00; rule set by your administrator)'),
    ],
    ['running', byAdmin({ preset: 'desktop' }), {}, running('Running: this computer has been idle for 10 min (rules set by your administrator)')],
    ['dedicated', byAdmin({ preset: 'dedicated' }), { idleSeconds: 0 }, running('Always on: this computer is dedicated to the grid (rules set by your administrator)')],
    ['your pause', byAdmin({ preset: 'desktop' }), { control: { state: 'paused' } }, paused('user', 'Paused by you')],
    ['your snooze', byAdmin({ preset: 'desktop' }), { control: { state: 'snoozed', untilMs: MONDAY_NOON + 60_000 } }, paused('snooze', 'Snoozed until 12:01')],
  ] as const)("the administrator's rules say so: %s", (_name, policy, signals, expected) => {
    expect(once(policy, signals)).toEqual(expected);
  });

  it.each([
    [{ limits: { maxCores: 2 } }, 'Running: this computer has been idle for 10 min (limits set by your administrator)'],
    [{ limits: { maxCores: 64 } }, 'Running: this computer has been idle for 10 min (limits set by your administrator)'], // own: all cores
    [{ limits: { slots: 1 } }, 'Running: this computer has been idle for 10 min'], // not below the owner's choice: nothing to say
    [{ settings: { preset: 'desktop', slots: 4 }, limits: { slots: 2 } }, 'Running: this computer has been idle for 10 min (rules and limits set by your administrator)'],
  ] as const)('limits %j → %s', (admin, reason) => {
    expect(once(compilePolicy({ preset: 'desktop' }, admin), {}).reason).toBe(reason);
  });

  it('limits alone never pause, nor annotate a pause', () => {
    expect(once(compilePolicy({ preset: 'desktop' }, { limits: { maxCores: 1 } }), { idleSeconds: 0 })).toEqual(paused('input', 'You are using this computer'));
  });
});

describe('precedence: the most useful reason wins', () => {
  const SCHEDULE = [{ days: ['tue' as const], from: '19:00', to: '07:00' }];
  /** A situation in which exactly the given rules pause the worker. */
  function situation(active: ReadonlySet<Rule>): Decision {
    const policy = compilePolicy(
      { preset: 'custom', schedule: active.has('schedule') ? SCHEDULE : [] },
      active.has('admin') ? { paused: true } : {},
    );
    const signals: Signals = {
      ...FREE,
      control: active.has('user') ? { state: 'paused' } : active.has('snooze') ? { state: 'snoozed', untilMs: MONDAY_NOON + 60_000 } : { state: 'active' },
      onBattery: active.has('battery'),
      batteryPercent: 80,
      idleSeconds: active.has('input') ? 10 : 600,
      otherCpu: active.has('cpu') ? 0.9 : 0.1,
    };
    return decide(policy, signals, INITIAL_MEMORY, utc(MONDAY_NOON));
  }

  // Spelled out here, not taken from PRECEDENCE, so a reordering there fails the tables below too.
  const ORDER: readonly Rule[] = ['admin', 'user', 'snooze', 'schedule', 'battery', 'input', 'cpu'];

  it('is administrator > you > snooze > schedule > battery > input > CPU', () => {
    expect(PRECEDENCE).toEqual(ORDER);
  });

  it.each(ORDER.map((rule) => [rule]))('each rule alone pauses: %s', (rule) => {
    expect(situation(new Set([rule]))).toMatchObject({ run: false, cause: rule });
  });

  it('all at once, then lifting them from the top, one by one', () => {
    const causes = ORDER.map((_, i) => situation(new Set(ORDER.slice(i).filter((r) => !(r === 'snooze' && i <= 1)))).cause);
    expect(causes).toEqual(ORDER);
  });

  const pairs = ORDER.flatMap((a, i) => ORDER.slice(i + 1).map((b) => [a, b] as const))
    // Paused and snoozed are one control, never both.
    .filter(([a, b]) => !(a === 'user' && b === 'snooze'));
  it.each(pairs)('%s beats %s', (a, b) => {
    expect(situation(new Set([a, b])).cause).toBe(a);
  });

  it('no rule: runs', () => {
    expect(situation(new Set())).toMatchObject({ run: true, cause: 'running' });
  });
});

describe('purity', () => {
  it('same inputs, same decision; the inputs are not touched', () => {
    const memory: PolicyMemory = { lastInputMs: MONDAY_NOON - 10_000, cpuBusy: { atMs: MONDAY_NOON - 1000, percent: 80 }, battery: null, batteryLow: false };
    const signals = { ...FREE, otherCpu: 0.2 };
    const copies = structuredClone({ memory, signals });
    const a = decide(desktop, signals, memory, utc(MONDAY_NOON));
    const b = decide(desktop, signals, memory, utc(MONDAY_NOON));
    expect(a).toEqual(b);
    expect({ memory, signals }).toEqual(copies);
  });

  it('the memory is plain JSON', () => {
    const d = decide(custom({ runOnBattery: true, minBatteryPercent: 20 }), { ...FREE, onBattery: true, batteryPercent: 10, otherCpu: 0.9 }, INITIAL_MEMORY, utc(MONDAY_NOON));
    expect(JSON.parse(JSON.stringify(d.memory))).toEqual(d.memory);
    expect(d.memory).toEqual({
      lastInputMs: MONDAY_NOON - 600_000,
      cpuBusy: { atMs: MONDAY_NOON, percent: 90 },
      battery: { atMs: MONDAY_NOON, onBattery: true, percent: 10 },
      batteryLow: true,
    });
  });

  it('INITIAL_MEMORY cannot be changed by accident', () => {
    expect(Object.isFrozen(INITIAL_MEMORY)).toBe(true);
  });
});
