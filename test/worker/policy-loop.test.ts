/**
 * The polite worker's loop on fake timers, with a runner that only records:
 * how often it looks, when it suspends and hands back, and which of the
 * owner's controls it settles. The real suspension (SIGSTOP) is host.test.ts's.
 */
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { UserControl } from '../../src/protocol/index.js';
import type { JobRunner } from '../../src/worker/job-runner.js';
import { PolicyLoop } from '../../src/worker/policy-loop.js';
import { compilePolicy, type Policy } from '../../src/worker/policy/index.js';
import { scriptedSignals } from '../helpers/scripted-signals.js';

class FakeRunner extends EventEmitter {
  busy = 1;
  suspended = false;
  readonly handedBack: string[] = [];
  readonly memoryGivenBack: string[] = [];
  giveBackMemory(why: string): void {
    this.memoryGivenBack.push(why);
  }
  suspend(): boolean {
    this.suspended = true;
    return true;
  }
  resume(): void {
    this.suspended = false;
  }
  /** Each change of whether jobs may use the GPU, as the loop told it (null: they may). */
  readonly gpuOff: (string | null)[] = [];
  async setGpuOff(reason: string | null): Promise<void> {
    if (this.gpuOff.at(-1) !== reason) this.gpuOff.push(reason);
  }
  async handBack(reason: string): Promise<void> {
    this.handedBack.push(reason);
    this.suspended = false;
    this.busy = 0;
  }
}

const loops: PolicyLoop[] = [];
beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(async () => {
  await Promise.all(loops.splice(0).map((l) => l.stop()));
  vi.useRealTimers();
});

function loopFor(runner: FakeRunner | null, opts: { control?: () => UserControl; settle?: (c: UserControl) => Promise<void>; policy?: Policy } = {}) {
  const signals = scriptedSignals({ idleSeconds: 3600, onBattery: false, otherCpu: 0 });
  const loop = new PolicyLoop({
    signals,
    logger: pino({ level: 'silent' }),
    runner: () => runner as unknown as JobRunner | null,
    policy: () => opts.policy ?? compilePolicy({ preset: 'desktop' }),
    control: opts.control ?? (() => ({ state: 'active' })),
    settle: opts.settle ?? (async () => {}),
    onDecision: () => {},
    onStep: () => {},
    intervalMs: 500,
    idleIntervalMs: 5000,
    suspendGraceMs: 60_000,
  });
  loops.push(loop);
  return { loop, signals };
}

describe('the policy loop', () => {
  it('suspends the jobs at the next look once the owner is back, and hands them back once the pause outlasts the grace period', async () => {
    const runner = new FakeRunner();
    const { loop, signals } = loopFor(runner);
    await loop.step();
    expect(loop.decision?.run).toBe(true);
    loop.start();

    signals.set({ idleSeconds: 0 });
    await vi.advanceTimersByTimeAsync(500);
    expect(runner.suspended).toBe(true);
    expect(loop.decision?.reason).toBe('You are using this computer');

    await vi.advanceTimersByTimeAsync(59_000);
    expect(runner.handedBack).toEqual([]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(runner.handedBack).toEqual(['You are using this computer']);
  });

  it('takes the GPU from jobs while the owner uses the computer under "run while in use", and gives it back when they leave', async () => {
    const runner = new FakeRunner();
    const decisions: (string | null)[] = [];
    const { loop, signals } = loopFor(runner, { policy: compilePolicy({ preset: 'custom', runWhileInUse: true }) });
    await loop.step();
    loop.start();
    signals.set({ idleSeconds: 0 });
    await vi.advanceTimersByTimeAsync(500);
    decisions.push(loop.decision!.gpuReason);
    expect(loop.decision?.run).toBe(true);
    // Away once the input has stopped for the preset's 5 minutes.
    signals.set({ idleSeconds: 3600 });
    await vi.advanceTimersByTimeAsync(301_000);
    expect(runner.gpuOff).toEqual([null, 'GPU jobs wait until you are away', null]);
    expect(decisions).toEqual(['GPU jobs wait until you are away']);
    expect(runner.suspended).toBe(false);
  });

  it('gives the memory of idle job processes back at every look while the owner needs the machine, never while jobs may run', async () => {
    const runner = new FakeRunner();
    runner.busy = 0;
    const { loop, signals } = loopFor(runner);
    await loop.step();
    expect(runner.memoryGivenBack).toEqual([]);
    loop.start();
    signals.set({ idleSeconds: 0 });
    await vi.advanceTimersByTimeAsync(5000);
    expect(runner.memoryGivenBack).toEqual(['You are using this computer']);
    // A job that ended while the owner was busy leaves a warm process: the next look ends it too.
    await vi.advanceTimersByTimeAsync(5000);
    expect(runner.memoryGivenBack).toHaveLength(2);
    signals.set({ idleSeconds: 3600 });
    while (!loop.decision?.run) await vi.advanceTimersByTimeAsync(5000);
    const given = runner.memoryGivenBack.length;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(runner.memoryGivenBack).toHaveLength(given);
  });

  it('looks seldom while no job runs, at once when one starts, then often', async () => {
    const runner = new FakeRunner();
    runner.busy = 0;
    const { loop, signals } = loopFor(runner);
    loop.start();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(signals.reads).toBe(2);

    runner.busy = 1;
    loop.jobStarted();
    await vi.advanceTimersByTimeAsync(0);
    expect(signals.reads).toBe(3);
    await vi.advanceTimersByTimeAsync(1000);
    expect(signals.reads).toBe(5);

    await loop.stop();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(signals.reads).toBe(5);
    await loop.step();
    expect(signals.reads).toBe(5);
  });

  it("settles a snooze that ran out and a finish with nothing left to finish, so a restart does not repeat them", async () => {
    const settled: UserControl[] = [];
    let control: UserControl = { state: 'snoozed', untilMs: Date.now() + 1000 };
    const runner = new FakeRunner();
    runner.busy = 0;
    const { loop } = loopFor(runner, { control: () => control, settle: async (c) => void settled.push((control = c)) });
    await loop.step();
    expect(settled).toEqual([]);
    await vi.advanceTimersByTimeAsync(1000);
    await loop.step();
    expect(settled).toEqual([{ state: 'active' }]);

    control = { state: 'finishing' };
    await loop.step();
    expect(settled).toEqual([{ state: 'active' }, { state: 'paused' }]);
  });
});
