// powerMonitor's readings reach the worker core's signals. powerMonitor is
// Electron's (no runtime here), so it is faked here, at the boundary, by an
// EventEmitter with its read methods; the sink is the real pushedSignals.
import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { holdOffAppNap, powerPoll, watchPower, type PowerSource } from '../../src/main/power.js';
import { VIEWS } from '../renderer/views.js';
import { pushedSignals } from '../../src/worker/signals/index.js';
import { scriptedSignals } from '../helpers/scripted-signals.js';

class FakePowerMonitor extends EventEmitter implements PowerSource {
  idle = 0;
  idleState: 'active' | 'idle' | 'locked' | 'unknown' = 'active';
  battery = false;
  getSystemIdleTime = () => this.idle;
  getSystemIdleState = () => this.idleState;
  isOnBatteryPower = () => this.battery;
}

describe('power signals', () => {
  it('reads idle time and the lock state at each read, and battery changes as they happen', async () => {
    const power = new FakePowerMonitor();
    const signals = pushedSignals({ base: scriptedSignals(), poll: powerPoll(power) });
    power.battery = true;
    const stop = watchPower(power, signals);
    power.idle = 42;
    expect(await signals.read()).toMatchObject({ idleSeconds: 42, screenLocked: false, onBattery: true });

    power.emit('on-ac');
    power.idleState = 'locked';
    expect(await signals.read()).toMatchObject({ onBattery: false, screenLocked: true });
    power.emit('on-battery');
    expect(await signals.read()).toMatchObject({ onBattery: true });

    // Unplugged while asleep: no event, so resume reads it again.
    power.battery = false;
    power.emit('resume');
    expect(await signals.read()).toMatchObject({ onBattery: false });

    stop();
    expect(power.eventNames()).toEqual([]);
    power.emit('on-battery');
    expect(await signals.read()).toMatchObject({ onBattery: false });
    signals.close();
  });

  it('falls back to the lock events where the idle state is unknown', async () => {
    const power = new FakePowerMonitor();
    power.idleState = 'unknown';
    const signals = pushedSignals({ base: scriptedSignals(), poll: powerPoll(power) });
    const stop = watchPower(power, signals);
    expect((await signals.read()).screenLocked).toBe(null);
    power.emit('lock-screen');
    expect((await signals.read()).screenLocked).toBe(true);
    power.emit('unlock-screen');
    expect((await signals.read()).screenLocked).toBe(false);
    stop();
    signals.close();
  });
});

describe('holdOffAppNap', () => {
  const suspended = { ...VIEWS.working, jobs: { ...VIEWS.working.jobs, running: VIEWS.working.jobs.running.map((j) => ({ ...j, suspended: true })) } };
  it.each([
    ['darwin', VIEWS.working, true],
    ['darwin', VIEWS.idle, false],
    ['darwin', suspended, false],
    ['darwin', null, false],
    ['win32', VIEWS.working, false],
    ['linux', VIEWS.working, false],
  ] as const)('on %s: holds it only while a job runs (%#)', (platform, view, expected) => {
    expect(holdOffAppNap(view, platform)).toBe(expected);
  });
});
