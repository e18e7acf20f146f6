/**
 * A token bucket: up to `burst` at once, then `perSecond` on average. Used to
 * read a peer's messages no faster than a well-behaved peer sends them, so one
 * flooding worker slows itself (QUIC flow control pushes back) rather than
 * everyone else.
 *
 *   const bucket = new TokenBucket({ burst: 1000, perSecond: 1000 });
 *   await bucket.take();   // at once while tokens are left, else when one is
 *
 * Hand-written: a dozen lines, and the rate-limit packages on npm count HTTP
 * requests per key rather than pacing one stream.
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(private readonly opts: { burst: number; perSecond: number }) {
    this.tokens = opts.burst;
  }

  /** Resolves when a token is taken: at once when one is left, else once one has accrued. */
  async take(): Promise<void> {
    const now = performance.now();
    this.tokens = Math.min(this.opts.burst, this.tokens + ((now - this.last) / 1000) * this.opts.perSecond);
    this.last = now;
    this.tokens -= 1;
    if (this.tokens >= 0) return;
    // In debt: wait until the debt is paid back.
    await new Promise((resolve) => setTimeout(resolve, (-this.tokens / this.opts.perSecond) * 1000));
  }
}
