import { describe, expect, it } from 'vitest';
import { pushedSignals, UNKNOWN_READINGS, type SignalReadings } from '../../../src/worker/signals/index.js';
import { scriptedSignals } from '../../helpers/scripted-signals.js';

describe('pushed signals (what Electron main feeds from powerMonitor)', () => {
  it("lets pushed and polled readings win, and keeps the base's where they are unknown", async () => {
    const base = scriptedSignals({ otherCpu: 0.2, batteryPercent: 80, onBattery: false });
    let idle = 7;
    const signals = pushedSignals({ base, poll: () => ({ idleSeconds: idle }) });
    expect(await signals.read()).toEqual({ ...UNKNOWN_READINGS, otherCpu: 0.2, batteryPercent: 80, onBattery: false, idleSeconds: 7 });

    signals.update({ onBattery: true, screenLocked: true });
    idle = 300;
    base.set({ otherCpu: 0.6 });
    expect(await signals.read()).toEqual({ idleSeconds: 300, screenLocked: true, onBattery: true, batteryPercent: 80, otherCpu: 0.6 });

    // powerMonitor has no charge reading: an unknown pushed value leaves the base's.
    signals.update({ batteryPercent: null, screenLocked: false });
    expect(await signals.read()).toMatchObject({ batteryPercent: 80, screenLocked: false });
  });

  it('refuses a misspelt or out-of-range reading instead of reading it as unknown', () => {
    const signals = pushedSignals({ base: scriptedSignals() });
    expect(() => signals.update({ idleSecs: 5 } as Partial<SignalReadings>)).toThrow(/idleSecs/);
    expect(() => signals.update({ otherCpu: 1.5 })).toThrow();
  });

  it('closes its base', () => {
    const base = scriptedSignals();
    pushedSignals({ base }).close();
    expect(base.closed).toBe(true);
  });
});

describe('scripted signals (for tests of the worker host)', () => {
  it('returns what the test set and lets it await the next read', async () => {
    const signals = scriptedSignals({ idleSeconds: 3600 });
    expect(await signals.read()).toEqual({ ...UNKNOWN_READINGS, idleSeconds: 3600 });
    signals.set({ idleSeconds: 0 });
    const seen = signals.nextRead();
    void signals.read();
    expect(await seen).toMatchObject({ idleSeconds: 0 });
    expect(signals.reads).toBe(2);
  });

  it('refuses readings the policy could not take', () => {
    expect(() => scriptedSignals({ batteryPercent: 140 })).toThrow();
    expect(() => scriptedSignals().set({ idleSeconds: -1 })).toThrow();
  });
});
