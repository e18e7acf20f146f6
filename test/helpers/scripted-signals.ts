/**
 * A signal source whose readings a test sets: the boundary behind which an
 * idle-input source cannot exist on a VM (no keyboard, no display). Tests
 * await `nextRead()` after `set()` instead of sleeping.
 *
 *   const signals = scriptedSignals({ idleSeconds: 3600 });
 *   signals.set({ idleSeconds: 0 });   // the owner touched the mouse
 *   await signals.nextRead();          // the worker host has seen it
 */
import { SignalReadings, UNKNOWN_READINGS, type SignalSource } from '../../src/worker/signals/source.js';

export interface ScriptedSignals extends SignalSource {
  set(partial: Partial<SignalReadings>): void;
  /** Resolves when `read()` is next called, with what it returned. */
  nextRead(): Promise<SignalReadings>;
  readonly reads: number;
  readonly closed: boolean;
}

export function scriptedSignals(initial: Partial<SignalReadings> = {}): ScriptedSignals {
  let current = SignalReadings.parse({ ...UNKNOWN_READINGS, ...initial });
  let waiters: Array<(r: SignalReadings) => void> = [];
  let reads = 0;
  let closed = false;
  return {
    async read() {
      reads += 1;
      const snapshot = { ...current };
      const due = waiters;
      waiters = [];
      for (const resolve of due) resolve(snapshot);
      return snapshot;
    },
    set(partial) {
      current = SignalReadings.parse({ ...current, ...partial });
    },
    nextRead: () => new Promise((resolve) => waiters.push(resolve)),
    get reads() {
      return reads;
    },
    get closed() {
      return closed;
    },
    close() {
      closed = true;
    },
  };
}
