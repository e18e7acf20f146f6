/**
 * The administrator's say over this worker: an override (pause, preset,
 * limits) the coordinator sends in `welcome` and each `worker.policy`, on top
 * of the owner's settings. The host saves it with the settings, so an
 * administrator's pause holds while the coordinator is unreachable.
 *
 *   const policy = policyInForce(settings, 'desktop');
 *   if (overrideChanged(settings.adminPolicy, received)) await save({ ...settings, adminPolicy: received });
 *   view.policy.byAdmin = setByAdmin(policy);
 */
import type { AdminOverride } from '../protocol/index.js';
import type { HostSettings } from './host-settings.js';
import { compilePolicy, type Policy, type PresetName } from './policy/index.js';

/** The owner's policy (or the host's default preset) under the administrator's override. */
export function policyInForce(settings: HostSettings, defaultPreset: Exclude<PresetName, 'custom'>): Policy {
  return compilePolicy(settings.policy ?? { preset: defaultPreset }, settings.adminPolicy);
}

/** Whether the administrator paused this worker, chose its rules, or lowered its limits. */
export function setByAdmin(policy: Policy): boolean {
  return policy.admin.paused || policy.admin.setRules || policy.admin.setLimits;
}

/** The coordinator repeats the override at each connection; only a change is news. */
export function overrideChanged(saved: AdminOverride, received: AdminOverride): boolean {
  return JSON.stringify(saved) !== JSON.stringify(received);
}
