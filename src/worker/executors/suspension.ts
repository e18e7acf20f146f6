/**
 * Whether jobs may use the CPU now: an AbortSignal that can be undone. The
 * job runner owns one and passes it with every job (RunJobOptions.suspension);
 * each running job's attempt stops its process (SIGSTOP) and its timeout
 * clock while it is on, and a job that has no process yet waits for it to go
 * off before it takes one.
 *
 *   const suspension = new Suspension();
 *   pool.run(kind, job, { …opts, suspension });
 *   suspension.set(true);                            // the owner needs the machine
 *   suspension.set(false);                           // they left again
 *   await suspension.whenResumed(signal);            // resolves on resume or abort
 */
import { EventEmitter } from 'node:events';

export class Suspension extends EventEmitter<{ change: [suspended: boolean] }> {
  private active = false;

  constructor() {
    super();
    // One listener per running job, and a worker may have up to 256 slots.
    this.setMaxListeners(0);
  }

  get suspended(): boolean {
    return this.active;
  }

  /** Turns it on or off; listeners hear only real changes, synchronously. */
  set(on: boolean): void {
    if (on === this.active) return;
    this.active = on;
    this.emit('change', on);
  }

  /** Resolves once it is off (at once if it is) or `signal` aborts, whichever comes first; never rejects. */
  whenResumed(signal: AbortSignal): Promise<void> {
    if (!this.active || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.off('change', onChange);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const onChange = (on: boolean) => {
        if (!on) done();
      };
      this.on('change', onChange);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
