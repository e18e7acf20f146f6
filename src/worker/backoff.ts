/**
 * Reconnect delays: exponential backoff with "full jitter", from the AWS
 * Architecture Blog post "Exponential Backoff And Jitter"
 * (https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/).
 * Full jitter spreads a fleet that lost the coordinator at the same moment
 * over the whole window, so a restarted coordinator is not hit by every
 * worker at once.
 *
 *   for (let attempt = 0; ; attempt++) {
 *     try { return await connect(); } catch { await sleep(backoffDelayMs(attempt)); }
 *   }
 */

export interface BackoffOptions {
  /** Ceiling of the first window (attempt 0), in ms. @default 1000 */
  baseMs?: number;
  /**
   * Largest window, in ms: a third of the seed's 90 s heartbeat timeout, so a
   * fleet is back within about half a minute of its coordinator. @default 30000
   */
  capMs?: number;
  /** Source of uniform numbers in [0, 1); injectable so tests are exact. @default Math.random */
  random?: () => number;
}

const DEFAULTS: Required<BackoffOptions> = { baseMs: 1000, capMs: 30_000, random: Math.random };

/**
 * 2^1023 is the largest finite power of two; past it `2 ** attempt` is
 * Infinity, and `0 * Infinity` (a zero base) would be NaN.
 */
const MAX_EXPONENT = 1023;

/** `random() * min(cap, base * 2^attempt)`; attempt counts from 0. */
export function backoffDelayMs(attempt: number, options: BackoffOptions = {}): number {
  const { baseMs, capMs, random } = { ...DEFAULTS, ...options };
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError(`attempt must be a non-negative integer, got ${attempt}`);
  if (!Number.isFinite(baseMs) || baseMs < 0) throw new RangeError(`baseMs must be a finite number >= 0, got ${baseMs}`);
  if (!Number.isFinite(capMs) || capMs < 0) throw new RangeError(`capMs must be a finite number >= 0, got ${capMs}`);
  const r = random();
  // A source straying outside [0, 1] (or NaN) would stretch the cap or poison the timer.
  if (!(r >= 0 && r <= 1)) throw new RangeError(`random() must return a number in [0, 1], got ${r}`);
  return r * Math.min(capMs, baseMs * 2 ** Math.min(attempt, MAX_EXPONENT));
}
