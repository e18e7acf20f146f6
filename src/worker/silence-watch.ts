/**
 * Notices a coordinator that stopped answering. A coordinator killed (or a
 * machine that lost power) closes nothing: QUIC would notice only at its idle
 * timeout, 90 s, and the worker sat that long before dialling again. The
 * coordinator answers each heartbeat at once (`heartbeat.ack`), so a worker
 * that hears nothing for `deadlineMs` after one takes the coordinator for gone.
 *
 *   const watch = new SilenceWatch(deadlineMs, () => conn.close());
 *   watch.sent();   // after each heartbeat
 *   watch.heard();  // on every frame from the coordinator
 *   watch.stop();
 */
export class SilenceWatch {
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param deadlineMs how long an answer may take
   * @param onSilent called once the deadline passed without a frame
   * @param now a monotonic clock in ms (injectable for tests) @default performance.now
   */
  constructor(
    private readonly deadlineMs: number,
    private readonly onSilent: () => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A heartbeat went out: an answer is due within the deadline, unless one is already awaited. */
  sent(): void {
    if (this.timer === undefined) this.arm();
  }

  /** Something came from the coordinator: it is alive. */
  heard(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  stop(): void {
    this.heard();
  }

  private arm(): void {
    const due = this.now() + this.deadlineMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      // A timer that fires seconds late means this process was stalled (a
      // busy machine, a laptop waking up), and the answer may be waiting,
      // unread, behind it: give it a fresh deadline instead of hanging up.
      if (this.now() - due > STALL_MS) this.arm();
      else this.onSilent();
    }, this.deadlineMs);
  }
}

const STALL_MS = 1000;

/**
 * A third of the heartbeat timeout, between 3 s and 15 s: the seed's 90 s
 * gives 15 s, so a worker dials again within a heartbeat interval plus 15 s of
 * its coordinator's death, where a slow answer from a live one is still rare.
 */
export function silenceDeadlineMs(heartbeatTimeoutSecs: number): number {
  return Math.min(15_000, Math.max(3_000, (heartbeatTimeoutSecs * 1000) / 3));
}
