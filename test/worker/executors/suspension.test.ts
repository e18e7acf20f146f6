/**
 * The two small pieces a suspended job stands on: the timeout clock that can
 * stop (PausableTimer) and the on/off switch every running job listens to
 * (Suspension). Real timers, about a second in all.
 */
import { describe, expect, it } from 'vitest';
import { PausableTimer } from '../../../src/worker/executors/pausable-timer.js';
import { Suspension } from '../../../src/worker/executors/suspension.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PausableTimer', () => {
  it('keeps the time left while paused and fires that much after resume', async () => {
    let firedAt = 0;
    let fired!: () => void;
    const firing = new Promise<void>((r) => (fired = r));
    const timer = new PausableTimer(400, () => {
      firedAt = performance.now();
      fired();
    });
    await sleep(50);
    timer.pause();
    const left = timer.remainingMs;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(350 + 5);
    await sleep(450); // past the whole 400 ms: paused, it must not fire
    expect(firedAt).toBe(0);
    expect(timer.remainingMs).toBe(left);
    const resumedAt = performance.now();
    timer.resume();
    await firing;
    expect(firedAt - resumedAt).toBeGreaterThanOrEqual(left - 2);
  });

  it('never fires once cleared, paused or not', async () => {
    let fired = 0;
    const a = new PausableTimer(20, () => fired++);
    a.clear();
    const b = new PausableTimer(20, () => fired++);
    b.pause();
    b.clear();
    b.resume();
    await sleep(60);
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
