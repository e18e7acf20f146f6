/**
 * A one-shot timer whose clock can be stopped: a suspended job's timeout
 * must not run out while its process is not allowed to run.
 *
 *   const timer = new PausableTimer(30_000, () => child.kill('timeout'));
 *   timer.pause();    // keeps the time left
 *   timer.resume();   // counts down the rest
 *   timer.clear();
 */

/** setTimeout fires at once past 2^31 - 1 ms; no job needs longer than those 24.8 days. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class PausableTimer {
  private timer: NodeJS.Timeout | undefined;
  /** performance.now() when the running stretch started; undefined while paused or done. */
  private since: number | undefined;
  private left: number;
  private done = false;

  constructor(
    ms: number,
    private readonly fire: () => void,
  ) {
    this.left = ms;
    this.resume();
  }

  /** Milliseconds still to run, counting the running stretch. */
  get remainingMs(): number {
    return this.since === undefined ? this.left : Math.max(0, this.left - (performance.now() - this.since));
  }

  pause(): void {
    if (this.since === undefined) return;
    this.left = this.remainingMs;
    this.since = undefined;
    clearTimeout(this.timer);
  }

  resume(): void {
    if (this.done || this.since !== undefined) return;
    this.since = performance.now();
    this.timer = setTimeout(() => {
      this.done = true;
      this.since = undefined;
      this.left = 0;
      this.fire();
    }, Math.min(this.left, MAX_TIMER_MS));
  }

  clear(): void {
    this.done = true;
    this.since = undefined;
    this.left = 0;
    clearTimeout(this.timer);
  }
}
