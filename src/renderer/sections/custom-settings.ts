/**
 * The knobs of the Custom preset, shown while it is the one chosen: idle time,
 * running while in use, battery, other programs' CPU use, the GPU, cores and
 * slots. Saved together with one button; the host checks them (the schema in
 * protocol/policy.ts) and a refusal shows beneath. Weekly windows are kept as
 * they are and listed; they are set through the control API.
 *
 *   const custom = customSettings((policy) => send({ policy }));
 *   custom.show(view.settings.policy);   // hidden unless the preset is custom
 */
import type { GpuUse, PolicySettings } from '../../protocol/policy.js';
import { h } from '../dom.js';

type CustomSettings = Extract<PolicySettings, { preset: 'custom' }>;

export interface CustomSettingsBlock {
  readonly el: HTMLFieldSetElement;
  show(policy: PolicySettings): void;
}

/** What each knob is when the settings leave it out: the defaults documented in protocol/policy.ts. */
const DEFAULTS = { idleMinutes: 5, minBatteryPercent: 50, cpuThresholdPercent: 50, slots: 1 } as const;

export function customSettings(save: (policy: CustomSettings) => Promise<string | null>): CustomSettingsBlock {
  const number = (id: string, label: string, attrs: Record<string, string>) => {
    const input = h('input', { id, type: 'number', inputmode: 'numeric', step: '1', ...attrs });
    return { input, el: h('div', { class: 'field' }, h('label', { for: id }, label), input) };
  };
  const check = (id: string, label: string) => {
    const input = h('input', { id, type: 'checkbox' });
    return { input, el: h('div', { class: 'field check' }, h('label', { for: id }, input, ` ${label}`)) };
  };
  const idle = number('custom-idle', 'Minutes away before it runs', { min: '1', max: '1440' });
  const inUse = check('custom-in-use', 'Run while I use this computer');
  const battery = check('custom-battery', 'Run on battery');
  const minBattery = number('custom-min-battery', 'On battery, pause below this charge (%)', { min: '0', max: '100' });
  const cpu = number('custom-cpu', 'Pause while other programs use more CPU than (%; empty: never)', { min: '1', max: '100' });
  const gpu = h('select', { id: 'custom-gpu' });
  for (const [value, label] of [
    ['away', 'Only while I am away'],
    ['always', 'Also while I use this computer'],
    ['never', 'Never'],
  ] as const) {
    gpu.append(h('option', { value }, label));
  }
  const cores = number('custom-cores', 'Most CPU cores a job may use (empty: all)', { min: '1', max: '1024' });
  const slots = number('custom-slots', 'Jobs at once', { min: '1', max: '256' });
  const windows = h('p', { id: 'custom-schedule', class: 'muted hint' });
  const saveButton = h('button', { type: 'submit', id: 'custom-save' }, 'Save rules');
  const error = h('p', { id: 'custom-error', class: 'form-error', role: 'alert' });
  const form = h(
    'form',
    { id: 'custom-form', novalidate: true },
    idle.el,
    inUse.el,
    battery.el,
    minBattery.el,
    cpu.el,
    h('div', { class: 'field' }, h('label', { for: 'custom-gpu' }, 'Use the GPU'), gpu),
    cores.el,
    slots.el,
    windows,
    saveButton,
    error,
  );
  const el = h('fieldset', { id: 'custom-settings', class: 'custom', hidden: true }, h('legend', {}, 'Custom rules'), form);

  let shown: CustomSettings | null = null;
  let editing = false;
  form.addEventListener('input', () => {
    editing = true;
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const read = (input: HTMLInputElement, what: string, empty: 'default' | 'null'): number | null | undefined | string => {
      const text = input.value.trim();
      if (text === '') return empty === 'null' ? null : undefined;
      const n = Number(text);
      return Number.isInteger(n) ? n : `${what}: "${text}" is not a whole number`;
    };
    const values = {
      idleMinutes: read(idle.input, 'Minutes away', 'default'),
      minBatteryPercent: read(minBattery.input, 'Battery charge', 'default'),
      cpuThresholdPercent: read(cpu.input, 'CPU use', 'null'),
      maxCores: read(cores.input, 'CPU cores', 'null'),
      slots: read(slots.input, 'Jobs at once', 'default'),
    };
    const wrong = Object.values(values).find((v): v is string => typeof v === 'string');
    if (wrong !== undefined) {
      error.textContent = wrong;
      return;
    }
    const numbers = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<Record<keyof typeof values, number | null>>;
    const policy = {
      preset: 'custom',
      ...numbers,
      runWhileInUse: inUse.input.checked,
      runOnBattery: battery.input.checked,
      gpu: gpu.value as GpuUse,
      ...(shown?.schedule && { schedule: shown.schedule }),
    } as CustomSettings;
    saveButton.disabled = true;
    const refused = await save(policy);
    saveButton.disabled = false;
    error.textContent = refused ?? '';
    if (refused === null) editing = false;
  });

  return {
    el,
    show(policy) {
      el.hidden = policy.preset !== 'custom';
      if (policy.preset !== 'custom' || editing) return;
      shown = policy;
      idle.input.value = String(policy.idleMinutes ?? DEFAULTS.idleMinutes);
      inUse.input.checked = policy.runWhileInUse ?? false;
      battery.input.checked = policy.runOnBattery ?? false;
      minBattery.input.value = String(policy.minBatteryPercent ?? DEFAULTS.minBatteryPercent);
      const threshold = policy.cpuThresholdPercent === undefined ? DEFAULTS.cpuThresholdPercent : policy.cpuThresholdPercent;
      cpu.input.value = threshold === null ? '' : String(threshold);
      gpu.value = policy.gpu ?? 'away';
      cores.input.value = policy.maxCores === undefined || policy.maxCores === null ? '' : String(policy.maxCores);
      slots.input.value = String(policy.slots ?? DEFAULTS.slots);
      const n = policy.schedule?.length ?? 0;
      windows.textContent = n === 0 ? 'Any time of the week.' : `Only within ${n} weekly ${n === 1 ? 'window' : 'windows'} (kept as set).`;
    },
  };
}
