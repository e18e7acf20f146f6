import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SilenceWatch, silenceDeadlineMs } from '../../src/worker/silence-watch.js';

describe('SilenceWatch', () => {
  let clock = 0;
  let silent = 0;
  let watch: SilenceWatch;
  beforeEach(() => {
    vi.useFakeTimers();
    clock = 0;
    silent = 0;
    watch = new SilenceWatch(3000, () => silent++, () => clock);
  });
  afterEach(() => {
    watch.stop();
    vi.useRealTimers();
  });
  const pass = (ms: number, stalledMs = 0) => {
    clock += ms + stalledMs;
    vi.advanceTimersByTime(ms);
  };

  it('hangs up once when nothing answers a heartbeat within the deadline', () => {
    watch.sent();
    pass(2999);
    expect(silent).toBe(0);
    pass(1);
    expect(silent).toBe(1);
    pass(10_000);
    expect(silent).toBe(1);
  });

  it('keeps the first deadline while heartbeats go unanswered, and any frame clears it', () => {
    watch.sent();
    pass(2000);
    watch.sent(); // a later heartbeat does not push the deadline back
    pass(1000);
    expect(silent).toBe(1);
    watch.sent();
    pass(2000);
    watch.heard();
    pass(5000);
    expect(silent).toBe(1);
  });

  it('gives a fresh deadline when its own timer fired late: this process was stalled, not the coordinator silent', () => {
    watch.sent();
    pass(3000, 4000); // the timer fires 4 s late
    expect(silent).toBe(0);
    watch.heard(); // the answer that waited behind the stall
    pass(10_000);
    expect(silent).toBe(0);
    watch.sent();
    pass(3000, 500); // half a second late is on time
    expect(silent).toBe(1);
  });

  it.each([
    [90, 15_000],
    [30, 10_000],
    [9, 3000],
    [1.5, 3000],
    [3600, 15_000],
  ])('waits a third of a %d s heartbeat timeout, 3 to 15 s: %d ms', (timeoutSecs, ms) => {
    expect(silenceDeadlineMs(timeoutSecs)).toBe(ms);
  });
});
