/**
 * Signals the Electron main process knows better than any headless reader:
 * powerMonitor's events (on battery, screen locked) pushed with `update`,
 * and its cheap synchronous reads (idle time) taken at each read with `poll`.
 * What neither gives (battery charge, CPU share) comes from the base source.
 *
 *   const signals = pushedSignals({ base: headlessSignals({ ownPids }), poll: () => ({ idleSeconds: powerMonitor.getSystemIdleTime() }) });
 *   powerMonitor.on('on-battery', () => signals.update({ onBattery: true }));
 *   powerMonitor.on('lock-screen', () => signals.update({ screenLocked: true }));
 */
import { SignalReadings, type SignalSource } from './source.js';

export interface PushedSignals extends SignalSource {
  /** Parsed strictly (a misspelt key throws): the caller is our own main process, and a typo would silently read as unknown. */
  update(partial: Partial<SignalReadings>): void;
}

const PartialReadings = SignalReadings.partial();

export function pushedSignals(opts: { base: SignalSource; poll?: () => Partial<SignalReadings> }): PushedSignals {
  let pushed: Partial<SignalReadings> = {};
  return {
    async read() {
      const base = await opts.base.read();
      const polled = opts.poll ? PartialReadings.parse(opts.poll()) : {};
      return mergeKnown(mergeKnown(base, pushed), polled);
    },
    update(partial) {
      pushed = { ...pushed, ...PartialReadings.parse(partial) };
    },
    close() {
      opts.base.close();
    },
  };
}

/** `over`'s known readings replace `under`'s; its unknown (null) ones leave `under`'s in place. */
function mergeKnown(under: SignalReadings, over: Partial<SignalReadings>): SignalReadings {
  const merged = { ...under };
  for (const key of Object.keys(over) as Array<keyof SignalReadings>) {
    const value = over[key];
    if (value !== null && value !== undefined) Object.assign(merged, { [key]: value });
  }
  return merged;
}
