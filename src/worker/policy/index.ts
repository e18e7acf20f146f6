/**
 * The polite worker's policy (issue 5): whether this machine may run jobs
 * now, and why, in one sentence a person understands. Pure: the agent feeds
 * it signals from the adapters and keeps its small memory between calls.
 *
 *   const policy = compilePolicy(settings.policy, adminOverride);   // again whenever either changes
 *   let memory: PolicyMemory = INITIAL_MEMORY;
 *   every 2 s: {
 *     const d = decide(policy, await readSignals(), memory, policyNow());
 *     memory = d.memory;
 *     if (d.run) resumeJobs({ gpu: d.gpu, acceptNew: d.acceptJobs }); else suspendJobs(d.reason);
 *   }
 */
export { formatMoment, policyNow, wallClock, WEEKDAYS, type PolicyNow, type WallClock, type Weekday } from './clock.js';
export { decide, PRECEDENCE, type Decision } from './decide.js';
export { INITIAL_MEMORY, type PolicyMemory, type Rule } from './rules.js';
export { ScheduleWindow } from './schedule.js';
export {
  AdminOverride,
  compilePolicy,
  CustomSettings,
  DedicatedSettings,
  DesktopSettings,
  GpuUse,
  PolicySettings,
  PRESETS,
  TIMINGS,
  type Policy,
  type PresetName,
} from './settings.js';
export { Signals, UNKNOWN_SIGNALS, UserControl } from './signals.js';
