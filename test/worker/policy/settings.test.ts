import { describe, expect, it } from 'vitest';
import { GridError } from '../../../src/protocol/errors.js';
import { compilePolicy, type AdminOverride, type Policy, type PolicySettings } from '../../../src/worker/policy/settings.js';

const NO_ADMIN = { paused: false, message: null, setRules: false, setLimits: false };

describe('presets', () => {
  it('desktop: 5 min idle, no battery, 50 % CPU, GPU only while away, all cores, one slot', () => {
    expect(compilePolicy({ preset: 'desktop' })).toEqual<Policy>({
      preset: 'desktop',
      idleMs: 300_000,
      runWhileInUse: false,
      runOnBattery: false,
      minBatteryPercent: 50,
      cpuThresholdPercent: 50,
      cpuCalmMs: 30_000,
      batteryHoldMs: 60_000,
      schedule: [],
      gpu: 'away',
      gpuSwitchedOff: null,
      gpuBusyPercent: 30,
      gpuMaxTempC: 85,
      maxCores: null,
      slots: 1,
      admin: NO_ADMIN,
    });
  });

  it("turns the GPU off whatever the preset on the owner's switch, or the administrator's limit the owner cannot lift", () => {
    expect(compilePolicy({ preset: 'dedicated', useGpu: false })).toMatchObject({ gpu: 'never', gpuSwitchedOff: 'owner' });
    expect(compilePolicy({ preset: 'custom', gpu: 'always', useGpu: false })).toMatchObject({ gpu: 'never', gpuSwitchedOff: 'owner' });
    expect(compilePolicy({ preset: 'desktop', useGpu: true })).toMatchObject({ gpu: 'away', gpuSwitchedOff: null });
    expect(compilePolicy({ preset: 'dedicated', useGpu: true }, { limits: { useGpu: false } })).toMatchObject({ gpu: 'never', gpuSwitchedOff: 'admin' });
    expect(compilePolicy({ preset: 'dedicated', useGpu: false }, { settings: { preset: 'dedicated' } })).toMatchObject({ gpu: 'always', gpuSwitchedOff: null });
    expect(compilePolicy({ preset: 'dedicated' }, { settings: { preset: 'dedicated', useGpu: false } })).toMatchObject({ gpu: 'never', gpuSwitchedOff: 'admin' });
  });

  it('dedicated: every rule off', () => {
    const p = compilePolicy({ preset: 'dedicated' });
    expect(p).toMatchObject({ preset: 'dedicated', runWhileInUse: true, runOnBattery: true, minBatteryPercent: 0, cpuThresholdPercent: null, schedule: [], gpu: 'always' });
  });

  it('custom with nothing set is the desktop preset', () => {
    expect({ ...compilePolicy({ preset: 'custom' }), preset: 'desktop' }).toEqual(compilePolicy({ preset: 'desktop' }));
  });

  it('custom with every knob set', () => {
    const p = compilePolicy({
      preset: 'custom',
      idleMinutes: 15,
      runWhileInUse: true,
      runOnBattery: true,
      minBatteryPercent: 30,
      cpuThresholdPercent: 25,
      schedule: [{ days: ['sat', 'sun'], from: '08:00', to: '20:00' }],
      gpu: 'never',
      maxCores: 2,
      slots: 3,
    });
    expect(p).toMatchObject({ idleMs: 900_000, runWhileInUse: true, runOnBattery: true, minBatteryPercent: 30, cpuThresholdPercent: 25, gpu: 'never', maxCores: 2, slots: 3 });
    expect(p.schedule).toEqual([{ days: [false, false, false, false, false, true, true], from: 480, to: 1200, label: '08:00\u201320:00' }]);
  });

  it('null is a choice, not "unset": no CPU rule, all cores', () => {
    const p = compilePolicy({ preset: 'custom', cpuThresholdPercent: null, maxCores: null });
    expect(p.cpuThresholdPercent).toBeNull();
    expect(p.maxCores).toBeNull();
  });

  it('an explicit undefined takes the default', () => {
    expect(compilePolicy({ preset: 'custom', cpuThresholdPercent: undefined, idleMinutes: undefined })).toMatchObject({ cpuThresholdPercent: 50, idleMs: 300_000 });
  });

  it.each([
    [{ preset: 'desktop', maxCores: 4, slots: 2 }],
    [{ preset: 'dedicated', maxCores: 4, slots: 2 }],
  ] as const)('limits apply to every preset: %j', (settings) => {
    expect(compilePolicy(settings)).toMatchObject({ maxCores: 4, slots: 2 });
  });
});

describe('administrator override', () => {
  it('pause, with the message shown to the owner', () => {
    expect(compilePolicy({ preset: 'desktop' }, { paused: true, message: ' maintenance tonight ' }).admin).toEqual({ ...NO_ADMIN, paused: true, message: 'maintenance tonight' });
  });

  it("replaces the owner's settings entirely, limits included", () => {
    const p = compilePolicy({ preset: 'custom', cpuThresholdPercent: 90, maxCores: 8 }, { settings: { preset: 'desktop' } });
    expect(p).toMatchObject({ preset: 'desktop', cpuThresholdPercent: 50, maxCores: null, admin: { ...NO_ADMIN, setRules: true } });
  });

  // [owner's maxCores, administrator's maxCores, effective, setLimits]
  it.each([
    [null, 2, 2, true],
    [4, 2, 2, true],
    [2, 4, 2, false], // the owner may choose less than the ceiling
    [2, 2, 2, false],
    [4, undefined, 4, false],
    [null, null, null, false],
    [4, null, 4, false],
  ])('maxCores: own %s, ceiling %s → %s', (own, ceiling, effective, setLimits) => {
    const p = compilePolicy({ preset: 'desktop', maxCores: own }, { limits: { maxCores: ceiling } });
    expect(p.maxCores).toBe(effective);
    expect(p.admin.setLimits).toBe(setLimits);
  });

  it.each([
    [3, 1, 1, true],
    [1, 2, 1, false],
    [undefined, 4, 1, false],
  ])('slots: own %s, ceiling %s → %s', (own, ceiling, effective, setLimits) => {
    const p = compilePolicy({ preset: 'dedicated', slots: own }, { limits: { slots: ceiling } });
    expect(p.slots).toBe(effective);
    expect(p.admin.setLimits).toBe(setLimits);
  });

  it("ceilings apply on top of the administrator's own settings", () => {
    const p = compilePolicy({ preset: 'desktop' }, { settings: { preset: 'dedicated', slots: 4 }, limits: { slots: 2 } });
    expect(p).toMatchObject({ preset: 'dedicated', slots: 2, admin: { setRules: true, setLimits: true } });
  });
});

describe('invalid settings', () => {
  const rejects = (settings: unknown, admin: unknown = {}) => {
    try {
      compilePolicy(settings as PolicySettings, admin as AdminOverride);
    } catch (e) {
      expect(e).toBeInstanceOf(GridError);
      expect((e as GridError).code).toBe('GG_ERR_CONFIG_INVALID');
      return (e as GridError).message;
    }
    throw new Error('accepted invalid settings');
  };

  it.each([
    [{ preset: 'laptop' }, 'policy.preset'],
    [{}, 'policy.preset'],
    [{ preset: 'desktop', idleMinutes: 3 }, 'idleMinutes'], // knobs are custom's; desktop stays simple
    [{ preset: 'custom', idleMinutes: 0 }, 'policy.idleMinutes'],
    [{ preset: 'custom', idleMinutes: 1.5 }, 'policy.idleMinutes'],
    [{ preset: 'custom', cpuThresholdPercent: 0 }, 'policy.cpuThresholdPercent'],
    [{ preset: 'custom', cpuThresholdPercent: 101 }, 'policy.cpuThresholdPercent'],
    [{ preset: 'custom', minBatteryPercent: -1 }, 'policy.minBatteryPercent'],
    [{ preset: 'custom', runOnBattery: 'yes' }, 'policy.runOnBattery'],
    [{ preset: 'custom', gpu: 'sometimes' }, 'policy.gpu'],
    [{ preset: 'custom', schedule: [{ days: ['mon'], from: '9:00', to: '17:00' }] }, 'policy.schedule.0.from'],
    [{ preset: 'custom', schedule: [{ days: ['mon'], from: '09:00', to: '09:00' }] }, 'policy.schedule.0.to'],
    [{ preset: 'dedicated', slots: 0 }, 'policy.slots'],
    [{ preset: 'dedicated', maxCores: 2.5 }, 'policy.maxCores'],
  ])('%j names %s', (settings, path) => {
    expect(rejects(settings)).toContain(path);
  });

  it.each([
    [{ paused: 'yes' }, 'admin.paused'],
    [{ limits: { cpu: 1 } }, 'cpu'],
    [{ message: '   ' }, 'admin.message'],
    [{ settings: { preset: 'custom', slots: -1 } }, 'admin.settings.slots'],
  ])('administrator override %j names %s', (admin, path) => {
    expect(rejects({ preset: 'desktop' }, admin)).toContain(path);
  });

  it('names every problem, one per line', () => {
    const message = rejects({ preset: 'custom', idleMinutes: 0, slots: 0 });
    expect(message.split('\n')).toHaveLength(2);
  });
});
