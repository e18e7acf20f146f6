/**
 * The two small pieces a suspended job stands on: the timeout clock that can
 * stop (PausableTimer) and the on/off switch every running job listens to
 * (Suspension). PausableTimer runs on fake timers (its clock included), so
 * the times it keeps are exact.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PausableTimer } from '../../../src/worker/executors/pausable-timer.js';
import { Suspension } from '../../../src/worker/executors/suspension.js';

describe('PausableTimer', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('keeps the time left while paused and fires that much after resume', () => {
    let fired = 0;
    const timer = new PausableTimer(400, () => fired++);
    vi.advanceTimersByTime(50);
    timer.pause();
    expect(timer.remainingMs).toBe(350);
    vi.advanceTimersByTime(10_000); // far past the whole 400 ms: paused, it must not fire
    expect(fired).toBe(0);
    expect(timer.remainingMs).toBe(350);
    timer.resume();
    vi.advanceTimersByTime(349);
    expect(fired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(fired).toBe(1);
    expect(timer.remainingMs).toBe(0);
  });

  it('never fires once cleared, paused or not', () => {
    let fired = 0;
    const a = new PausableTimer(20, () => fired++);
    a.clear();
    const b = new PausableTimer(20, () => fired++);
    b.pause();
    b.clear();
    b.resume();
    vi.advanceTimersByTime(1000);
    expect(fired).toBe(0);
  });
});

describe('Suspension', () => {
  it('tells listeners of real changes only', () => {
    const s = new Suspension();
    const heard: boolean[] = [];
    s.on('change', (on) => heard.push(on));
    s.set(true);
    s.set(true);
    s.set(false);
    s.set(false);
    expect(heard).toEqual([true, false]);
    expect(s.suspended).toBe(false);
  });

  it('whenResumed resolves at once when off, on resume, or on abort', async () => {
    const s = new Suspension();
    await s.whenResumed(new AbortController().signal);
    s.set(true);
    let resumed = false;
    const waiting = s.whenResumed(new AbortController().signal).then(() => (resumed = true));
    await Promise.resolve();
    expect(resumed).toBe(false);
    s.set(false);
    await waiting;
    expect(resumed).toBe(true);

    s.set(true);
    const controller = new AbortController();
    const aborted = s.whenResumed(controller.signal);
    controller.abort();
    await aborted;
    expect(s.suspended).toBe(true);
    expect(s.listenerCount('change')).toBe(0);
  });
});
