/**
 * Electron's powerMonitor as a source of the policy's signals. Idle time and
 * the lock state are cheap synchronous reads, taken each time the worker host
 * reads its signals (`powerPoll`); battery and lock changes are pushed the
 * moment powerMonitor reports them, and the battery is read again on resume
 * (it may have been unplugged while the machine slept, with no event).
 *
 *   const signals = pushedSignals({ base: headlessSignals({ ownPids }), poll: powerPoll(powerMonitor) });
 *   const stop = watchPower(powerMonitor, signals);
 */
import type { WorkerView } from '../protocol/control.js';
import type { SignalReadings } from '../worker/signals/index.js';

type PowerEvent = 'on-battery' | 'on-ac' | 'lock-screen' | 'unlock-screen' | 'resume';

/** The part of Electron's powerMonitor read here. */
export interface PowerSource {
  getSystemIdleTime(): number;
  getSystemIdleState(idleThreshold: number): 'active' | 'idle' | 'locked' | 'unknown';
  isOnBatteryPower(): boolean;
  on(event: PowerEvent, listener: () => void): unknown;
  off(event: PowerEvent, listener: () => void): unknown;
}

export interface ReadingsSink {
  update(readings: Partial<SignalReadings>): void;
}

export function powerPoll(power: PowerSource): () => Partial<SignalReadings> {
  return () => {
    // The threshold only splits 'active' from 'idle', which idleSeconds already tells; 'locked' is what is wanted.
    const state = power.getSystemIdleState(60);
    return { idleSeconds: power.getSystemIdleTime(), screenLocked: state === 'unknown' ? null : state === 'locked' };
  };
}

/** Reports the battery at once and every change after; returns what stops listening. */
export function watchPower(power: PowerSource, sink: ReadingsSink): () => void {
  const handlers: Array<[PowerEvent, () => void]> = [
    ['on-battery', () => sink.update({ onBattery: true })],
    ['on-ac', () => sink.update({ onBattery: false })],
    ['lock-screen', () => sink.update({ screenLocked: true })],
    ['unlock-screen', () => sink.update({ screenLocked: false })],
    ['resume', () => sink.update({ onBattery: power.isOnBatteryPower() })],
  ];
  for (const [event, handler] of handlers) power.on(event, handler);
  sink.update({ onBattery: power.isOnBatteryPower() });
  return () => {
    for (const [event, handler] of handlers) power.off(event, handler);
  };
}

/**
 * macOS only: whether to hold off App Nap now, that is, while a job runs.
 * App Nap throttles a hidden app's timers (a menu-bar app is always hidden),
 * and the job's heartbeats and progress go through them. Electron's only
 * handle on it, powerSaveBlocker's 'prevent-app-suspension', also keeps the
 * Mac from idle sleep, so it is held for running jobs and nothing else.
 * Elsewhere there is no App Nap, and the same blocker would only keep the
 * machine awake.
 */
export function holdOffAppNap(view: Pick<WorkerView, 'jobs'> | null, platform: NodeJS.Platform): boolean {
  return platform === 'darwin' && (view?.jobs.running.some((j) => !j.suspended) ?? false);
}
