/**
 * Sequences: many decisions in a row with the memory threaded through, the way
 * the agent polls. Each asserts the run/pause sequence ('R' run, '.' pause),
 * so a flap shows up as a character out of place.
 */
import { describe, expect, it } from 'vitest';
import { decide, type Decision } from '../../../src/worker/policy/decide.js';
import { INITIAL_MEMORY, type PolicyMemory } from '../../../src/worker/policy/rules.js';
import { compilePolicy, type Policy } from '../../../src/worker/policy/settings.js';
import type { Signals } from '../../../src/worker/policy/signals.js';
import { FREE } from './fixtures.js';

const T0 = Date.parse('2025-03-10T12:00:00Z');

/** [seconds since T0, signals at that moment] */
type Step = readonly [number, Partial<Signals>];

function replay(policy: Policy, steps: readonly Step[], memory: PolicyMemory = INITIAL_MEMORY): Decision[] {
  const out: Decision[] = [];
  for (const [t, signals] of steps) {
    const d = decide(policy, { ...FREE, ...signals }, memory, { epochMs: T0 + t * 1000, timeZone: 'UTC' });
    memory = d.memory;
    out.push(d);
  }
  return out;
}
const pattern = (ds: Decision[]) => ds.map((d) => (d.run ? 'R' : '.')).join('');
const switches = (ds: Decision[]) => ds.slice(1).filter((d, i) => d.run !== ds[i]!.run).length;

/** Deterministic noise, so a failing sequence can be replayed. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const desktop = compilePolicy({ preset: 'desktop' });

describe('input', () => {
  it('starts after 5 min without input, stops at the first input, and waits 5 min again', () => {
    // Polls every 10 s for 20 min; the owner touches the machine at these seconds.
    const inputs = [0, 400, 410, 420, 900];
    const steps: Step[] = [];
    for (let t = 0; t <= 1200; t += 10) {
      const last = Math.max(...inputs.filter((i) => i <= t));
      steps.push([t, { idleSeconds: t - last }]);
    }
    const ds = replay(desktop, steps);
    const expected = steps.map(([t]) => (t - Math.max(...inputs.filter((i) => i <= t)) >= 300 ? 'R' : '.')).join('');
    expect(pattern(ds)).toBe(expected);
    // Runs 300–390, 720–890, 1200: three starts, two stops.
    expect(switches(ds)).toBe(5);
  });

  it('an idle time that jumps ahead of the clock cannot restart the worker', () => {
    const ds = replay(desktop, [
      [0, { idleSeconds: 400 }],
      [10, { idleSeconds: 0 }], // the owner is back
      [12, { idleSeconds: 5000 }], // glitch: a last input long ago, contradicting the one seen at 10 s
      [14, { idleSeconds: 86_400 }],
      [20, { idleSeconds: 10 }],
      [309, { idleSeconds: 299 }],
      [310, { idleSeconds: 300 }], // 5 min after the real input
      [320, { idleSeconds: 310 }],
    ]);
    expect(pattern(ds)).toBe('R.....RR');
    expect(ds[2]!.reason).toBe('You are using this computer');
  });

  it('an idle time of 0 for one poll is input: it stops the worker, safely, for the full idle time', () => {
    const ds = replay(desktop, [
      [0, { idleSeconds: 600 }],
      [2, { idleSeconds: 0 }],
      [4, { idleSeconds: 604 }], // back to the old count: the 0 still counts as input
      [301, { idleSeconds: 901 }], // 299 s after the 0
      [302, { idleSeconds: 902 }],
    ]);
    expect(pattern(ds)).toBe('R...R');
  });

  it('an unknown idle time pauses for as long as it lasts, and needs no fresh idle period after it', () => {
    const ds = replay(desktop, [
      [0, { idleSeconds: 600 }],
      [2, { idleSeconds: null }],
      [4, { idleSeconds: 604 }],
      [6, { idleSeconds: null }],
      [8, { idleSeconds: 3 }], // the owner came back while we could not tell
      [10, { idleSeconds: 5 }],
    ]);
    expect(pattern(ds)).toBe('R.R...');
    expect(ds[1]!.reason).toBe('Cannot tell whether you are using this computer (no input or screen-lock signal here): choose Dedicated, or Custom with "Run while I use this computer"');
  });

  it('locking and unlocking the screen', () => {
    const ds = replay(desktop, [
      [0, { idleSeconds: 5 }],
      [2, { idleSeconds: 0, screenLocked: true }], // locked: away at once
      [60, { idleSeconds: 0, screenLocked: true }], // someone at the lock screen
      [62, { idleSeconds: 1, screenLocked: false }], // unlocked: input
      [360, { idleSeconds: 299, screenLocked: false }],
      [361, { idleSeconds: 300, screenLocked: false }],
    ]);
    expect(pattern(ds)).toBe('.RR..R');
  });

  it('a wall clock set back does not hold the worker until it catches up', () => {
    const fromTheFuture: PolicyMemory = { lastInputMs: T0 + 3_600_000, cpuBusy: { atMs: T0 + 3_600_000, percent: 90 }, battery: null, batteryLow: false };
    const [d] = replay(desktop, [[0, { idleSeconds: 600 }]], fromTheFuture);
    expect(d).toMatchObject({ run: true, reason: 'Running: this computer has been idle for 10 min' });
    expect(d!.memory.lastInputMs).toBe(T0 - 600_000);
  });
});

describe('CPU: resume only after 30 s at or under the threshold', () => {
  it('pauses at once, resumes exactly 30 s after the last busy sample', () => {
    const ds = replay(desktop, [
      [0, { otherCpu: 0.1 }],
      [2, { otherCpu: 0.72 }],
      [4, { otherCpu: 0.2 }],
      [20, { otherCpu: 0.2 }],
      [31.999, { otherCpu: 0.2 }],
      [32, { otherCpu: 0.2 }],
      [34, { otherCpu: 0.5 }], // at the threshold is not above it
    ]);
    expect(pattern(ds)).toBe('R....RR');
    expect(ds.map((d) => d.reason).slice(1, 3)).toEqual(['Other programs are using 72 % of the CPU', 'Other programs were just using 72 % of the CPU']);
  });

  it.each([
    [0.49, 0.51],
    [0.3, 0.6], // a margin (pause > 50 %, resume < 40 %) would flap on every poll here
  ])('a load swinging %s ↔ %s every poll pauses once and stays paused instead of flapping', (low, high) => {
    const steps: Step[] = [];
    for (let i = 0; i <= 150; i++) steps.push([i * 2, { otherCpu: i % 2 === 0 ? low : high }]);
    expect(pattern(replay(desktop, steps))).toBe(`R${'.'.repeat(150)}`);
  });

  it('an unknown sample is no evidence: the hold of the last busy one still runs out', () => {
    const ds = replay(desktop, [
      [0, { otherCpu: 0.9 }],
      [2, { otherCpu: null }],
      [29, { otherCpu: null }],
      [30, { otherCpu: null }],
    ]);
    expect(pattern(ds)).toBe('...R');
  });

  it('keeps counting while another rule pauses the worker', () => {
    const ds = replay(desktop, [
      [0, { idleSeconds: 290, otherCpu: 0.9 }], // input shows; CPU remembered anyway
      [10, { idleSeconds: 300, otherCpu: 0.1 }], // away now, but the CPU was busy 10 s ago
      [30, { idleSeconds: 320, otherCpu: 0.1 }],
    ]);
    expect(ds.map((d) => d.cause)).toEqual(['input', 'cpu', 'running']);
  });

  it.each([1, 2, 3, 4, 5])('random spikes over a busy-ish load, seed %i: at most one resume per 30 s', (seed) => {
    const random = mulberry32(seed);
    const steps: Step[] = [];
    // 30–50 % most of the time, a spike to 55–95 % in one poll out of 25.
    for (let t = 0; t <= 1800; t += 2) steps.push([t, { otherCpu: random() < 0.04 ? 0.55 + 0.4 * random() : 0.3 + 0.2 * random() }]);
    const ds = replay(desktop, steps);
    // The rule, restated: paused exactly while a sample above 50 % is less than 30 s old.
    const busyAt = steps.filter(([, s]) => Math.round(s.otherCpu! * 100) > 50).map(([t]) => t);
    expect(pattern(ds)).toBe(steps.map(([t]) => (busyAt.some((b) => b <= t && t - b < 30) ? '.' : 'R')).join(''));
    const resumes = steps.filter((_, i) => i > 0 && ds[i]!.run && !ds[i - 1]!.run).map(([t]) => t);
    for (let i = 1; i < resumes.length; i++) expect(resumes[i]! - resumes[i - 1]!).toBeGreaterThanOrEqual(32);
    expect(resumes.length).toBeGreaterThan(3);
  });
});

describe('battery', () => {
  const onBatteryAbove20 = compilePolicy({ preset: 'custom', runOnBattery: true, minBatteryPercent: 20 });

  it('once below the minimum, waits for the charger, however the charge reads meanwhile', () => {
    const ds = replay(onBatteryAbove20, [
      [0, { onBattery: true, batteryPercent: 25 }],
      [60, { onBattery: true, batteryPercent: 21 }],
      [120, { onBattery: true, batteryPercent: 20 }],
      [180, { onBattery: true, batteryPercent: 19 }],
      [240, { onBattery: true, batteryPercent: 20 }], // the voltage recovers once the job stops
      [300, { onBattery: true, batteryPercent: 21 }],
      [360, { onBattery: true, batteryPercent: null }],
      [420, { onBattery: false, batteryPercent: 21 }], // charger
      [480, { onBattery: true, batteryPercent: 22 }], // unplugged again, above the minimum
    ]);
    expect(pattern(ds)).toBe('RRR....RR');
    expect(ds.map((d) => d.reason).slice(3, 7)).toEqual([
      'Battery low (19 %): waiting for the charger',
      'Battery low (20 %): waiting for the charger',
      'Battery low (21 %): waiting for the charger',
      'Battery low: waiting for the charger',
    ]);
  });

  it('a battery reading that turns unknown holds for 60 s, then counts as "not on battery"', () => {
    const ds = replay(desktop, [
      [0, { onBattery: true, batteryPercent: 80 }],
      [2, { onBattery: null, batteryPercent: null }],
      [59.999, { onBattery: null, batteryPercent: null }],
      [60, { onBattery: null, batteryPercent: null }],
      [62, { onBattery: true, batteryPercent: 79 }],
      [64, { onBattery: false, batteryPercent: 79 }], // plugged in: at once
    ]);
    expect(pattern(ds)).toBe('...R.R');
    expect(ds[2]!.reason).toBe('On battery (80 %)');
  });
});

describe("the owner's controls", () => {
  it('finish: the running job goes on, no new one is taken, then paused until resumed', () => {
    const finishing = { state: 'finishing' } as const;
    const ds = replay(desktop, [
      [0, { jobRunning: true }],
      [2, { jobRunning: true, control: finishing }],
      [30, { jobRunning: true, control: finishing }],
      [32, { jobRunning: false, control: finishing }],
      [600, { jobRunning: false, control: finishing }],
      [602, { jobRunning: false, control: { state: 'active' } }],
    ]);
    expect(ds.map((d) => [d.run, d.acceptJobs, d.cause])).toEqual([
      [true, true, 'running'],
      [true, false, 'finishing'],
      [true, false, 'finishing'],
      [false, false, 'user'],
      [false, false, 'user'],
      [true, true, 'running'],
    ]);
  });

  it('snooze ends by itself at its time', () => {
    const snoozed = { state: 'snoozed', untilMs: T0 + 3_600_000 } as const;
    const ds = replay(desktop, [
      [0, { control: snoozed }],
      [3599, { idleSeconds: 4199, control: snoozed }],
      [3600, { idleSeconds: 4200, control: snoozed }],
    ]);
    expect(pattern(ds)).toBe('..R');
    expect(ds[0]!.reason).toBe('Snoozed until 13:00');
  });
});

describe('schedule', () => {
  it('opens and closes at its edges across midnight, once each', () => {
    const nights = compilePolicy({ preset: 'custom', schedule: [{ days: ['mon'], from: '19:00', to: '07:00' }] });
    const steps: Step[] = [];
    // Monday 12:00 to Tuesday 12:00, a poll a minute; the owner is away all along.
    for (let t = 0; t <= 24 * 3600; t += 60) steps.push([t, { idleSeconds: 600 + t }]);
    const ds = replay(nights, steps);
    const firstRun = ds.findIndex((d) => d.run);
    const lastRun = ds.length - 1 - [...ds].reverse().findIndex((d) => d.run);
    expect(steps[firstRun]![0]).toBe(7 * 3600); // 19:00 Monday
    expect(steps[lastRun]![0]).toBe(19 * 3600 - 60); // 06:59 Tuesday
    expect(switches(ds)).toBe(2);
  });
});
