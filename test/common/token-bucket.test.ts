/** The pace at which a session's messages are read (src/common/token-bucket.ts), on a fake clock. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TokenBucket } from '../../src/common/token-bucket.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] });
});
afterEach(() => {
  vi.useRealTimers();
});

/** How many of `n` takes, started together, have resolved after `ms` of fake time. */
async function takenAfter(bucket: TokenBucket, n: number, ms: number): Promise<number> {
  let done = 0;
  // One after another, as the session loop takes them.
  void (async () => {
    for (let i = 0; i < n; i++) {
      await bucket.take();
      done++;
    }
  })();
  await vi.advanceTimersByTimeAsync(ms);
  return done;
}

describe('TokenBucket', () => {
  it('gives a burst at once, then the rate: 100 at once, 10 a second after', async () => {
    expect(await takenAfter(new TokenBucket({ burst: 100, perSecond: 10 }), 200, 0)).toBe(100);
    expect(await takenAfter(new TokenBucket({ burst: 100, perSecond: 10 }), 200, 5000)).toBe(150);
  });

  it('refills while idle, but never past its burst', async () => {
    const bucket = new TokenBucket({ burst: 10, perSecond: 10 });
    expect(await takenAfter(bucket, 10, 0)).toBe(10);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(await takenAfter(bucket, 30, 0)).toBe(10);
  });
});
