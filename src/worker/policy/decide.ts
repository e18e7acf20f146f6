/**
 * The decision: may this worker run jobs now, and why, in one sentence.
 * Pure: the same policy, signals, memory and moment give the same answer; the
 * caller keeps `memory` between calls and passes the returned one back.
 *
 *   let memory: PolicyMemory = INITIAL_MEMORY;
 *   const d = decide(policy, signals, memory, policyNow());
 *   memory = d.memory;
 *   if (!d.run) suspendJobs(d.reason);
 */
import type { PolicyNow } from './clock.js';
import { reasons, withNote } from './reasons.js';
import {
  batteryRule,
  controlRule,
  cpuRule,
  gpuRule,
  inputRule,
  scheduleRule,
  type Pause,
  type PolicyMemory,
  type Presence,
  type Rule,
} from './rules.js';
import type { Policy } from './settings.js';
import type { Signals } from './signals.js';

/**
 * When several rules pause at once, the reason shown is the first of these.
 * People's explicit choices come before automatic rules, and the
 * administrator's first, since the owner cannot lift it (showing "Paused by
 * you" would promise that Resume helps). Among the automatic rules the one
 * that will hold longest comes first, so the sentence answers "when will it
 * run?" honestly: at 10:00 with a 19:00 schedule, "You are using this
 * computer" would suggest stepping away helps; it would not. A schedule holds
 * for hours, battery until the charger is plugged in, input until you leave
 * for some minutes, other programs' load for seconds.
 */
export const PRECEDENCE: readonly Rule[] = ['admin', 'user', 'snooze', 'schedule', 'battery', 'input', 'cpu'];

export interface Decision {
  /** Jobs may run; false: suspend or hand back the running ones. */
  run: boolean;
  /** New jobs may be taken; false while finishing the current one, and whenever `run` is false. */
  acceptJobs: boolean;
  /** Jobs may use the GPU. */
  gpu: boolean;
  /** Why not, while the worker runs (null when `gpu`, or when paused: `reason` says it all). */
  gpuReason: string | null;
  /** The rule that paused the worker, `running`, or `finishing` (running the current job, taking no new one). */
  cause: Rule | 'running' | 'finishing';
  /** One sentence for the owner: tray tooltip, status window, heartbeat, `gogrid workers`. */
  reason: string;
  /** Pass it to the next call. */
  memory: PolicyMemory;
}

function runningReason(policy: Policy, presence: Presence, gpuWaits: boolean): string {
  if (policy.preset === 'dedicated') return reasons.runningDedicated;
  switch (presence.kind) {
    case 'locked':
      return reasons.runningLocked;
    case 'idle':
      return reasons.runningIdle(presence.idleMs);
    case 'present':
      return reasons.runningInUse(gpuWaits);
    case 'unknown':
      return reasons.runningUnknownUse(gpuWaits);
  }
}

export function decide(policy: Policy, signals: Signals, memory: PolicyMemory, now: PolicyNow): Decision {
  const nowMs = now.epochMs;
  // Every rule runs, so each one's memory stays current while another pauses the worker.
  const input = inputRule(policy, signals, memory, nowMs);
  const battery = batteryRule(policy, signals, memory, nowMs);
  const cpu = cpuRule(policy, signals, memory, nowMs);
  const gpuRules = gpuRule(policy, signals, memory, nowMs);
  const next: PolicyMemory = {
    lastInputMs: input.lastInputMs,
    cpuBusy: cpu.cpuBusy,
    battery: battery.battery,
    batteryLow: battery.batteryLow,
    ...(gpuRules.gpuBusy !== null && { gpuBusy: gpuRules.gpuBusy }),
    ...(gpuRules.gpuHot && { gpuHot: true }),
  };

  const control = controlRule(policy, signals, now);
  const byRule: Record<Rule, Pause | null> = {
    admin: control?.rule === 'admin' ? control : null,
    user: control?.rule === 'user' ? control : null,
    snooze: control?.rule === 'snooze' ? control : null,
    schedule: scheduleRule(policy, now),
    battery: battery.pause,
    input: input.pause,
    cpu: cpu.pause,
  };
  const pause = PRECEDENCE.map((rule) => byRule[rule]).find((p) => p !== null);
  if (pause !== undefined) {
    const automatic = pause.rule !== 'admin' && pause.rule !== 'user' && pause.rule !== 'snooze';
    const reason = automatic && policy.admin.setRules ? withNote(pause.reason, reasons.adminRule) : pause.reason;
    return { run: false, acceptJobs: false, gpu: false, gpuReason: null, cause: pause.rule, reason, memory: next };
  }

  const away = input.presence.kind === 'locked' || input.presence.kind === 'idle';
  const allowed = policy.gpu === 'always' || (policy.gpu === 'away' && away);
  const gpu = allowed && gpuRules.off === null;
  const gpuReason = allowed ? gpuRules.off : whyNoGpu(policy, input.presence);
  if (signals.control.state === 'finishing') {
    return { run: true, acceptJobs: false, gpu, gpuReason, cause: 'finishing', reason: reasons.finishing, memory: next };
  }
  const reason = withNote(
    runningReason(policy, input.presence, policy.gpu === 'away' && !away),
    reasons.adminSettings(policy.admin.setRules, policy.admin.setLimits),
  );
  return { run: true, acceptJobs: true, gpu, gpuReason, cause: 'running', reason, memory: next };
}

function whyNoGpu(policy: Policy, presence: Presence): string {
  if (policy.gpuSwitchedOff === 'owner') return reasons.gpuOffByYou;
  if (policy.gpuSwitchedOff === 'admin') return reasons.gpuOffByAdmin;
  if (policy.gpu === 'never') return reasons.gpuOffInRules(policy.admin.setRules);
  return presence.kind === 'unknown' ? reasons.gpuWaitsUnknownUse : reasons.gpuWaitsUntilAway;
}
