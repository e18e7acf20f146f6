/** The owner's settings: coordinator address, preset (and Custom's rules), the GPU switch, start at login. Nothing is saved when the host refuses. */
import type { SettingsUpdate, WorkerView } from '../../protocol/control.js';
import { withGpu, type PresetName } from '../../protocol/policy.js';
import { changeTracker, h } from '../dom.js';
import type { BridgeError } from '../bridge.js';
import { field } from './form.js';
import { customSettings } from './custom-settings.js';
import type { Section, Ui } from './section.js';

const PRESETS: Record<PresetName, { label: string; hint: string }> = {
  desktop: { label: 'Desktop', hint: 'Runs after 5 minutes away, never on battery, and steps aside the moment you are back.' },
  dedicated: { label: 'Dedicated', hint: 'Always runs: for servers and machines given to the grid.' },
  custom: { label: 'Custom', hint: 'Your own rules for idle time, battery, CPU load and schedule.' },
};

export function settingsSection(ui: Ui): Section {
  const save = h('button', { type: 'submit' }, 'Save');
  const coordinator = field('settings-coordinator', 'Coordinator address', { placeholder: 'grid.example.com:8443' }, save);
  const form = h('form', { id: 'settings-coordinator-form', novalidate: true }, coordinator.el);

  const preset = h('select', { id: 'settings-preset', 'aria-describedby': 'settings-preset-hint settings-preset-error' });
  for (const [value, { label }] of Object.entries(PRESETS)) preset.append(h('option', { value }, label));
  const presetHint = h('p', { id: 'settings-preset-hint', class: 'muted hint' });
  const presetError = h('p', { id: 'settings-preset-error', class: 'field-error', role: 'alert' });

  const gpu = h('input', { id: 'settings-gpu', type: 'checkbox', 'aria-describedby': 'settings-gpu-hint settings-gpu-error' });
  const gpuHint = h('p', { id: 'settings-gpu-hint', class: 'muted hint' });
  const gpuError = h('p', { id: 'settings-gpu-error', class: 'field-error', role: 'alert' });
  const gpuRow = h('div', { class: 'field check' }, h('label', { for: 'settings-gpu' }, gpu, ' Use the GPU'), gpuHint, gpuError);

  const login = h('input', { id: 'settings-login', type: 'checkbox' });
  const loginError = h('p', { id: 'settings-login-error', class: 'field-error', role: 'alert' });
  const loginRow = h('div', { class: 'field check' }, h('label', { for: 'settings-login' }, login, ' Start at login'), loginError);

  let current: WorkerView['settings'] | null = null;
  let dirty = false;
  const changed = changeTracker();
  const send = async (update: SettingsUpdate, show: (e: BridgeError | null) => void): Promise<BridgeError | null> => {
    const failed = await ui.perform((bridge) => bridge.updateSettings(update));
    show(failed);
    return failed;
  };
  const custom = customSettings(async (policy) => (await send({ policy }, () => {}))?.message ?? null);

  const el = h(
    'section',
    { class: 'settings', 'aria-labelledby': 'settings-title' },
    h('h2', { id: 'settings-title' }, 'Settings'),
    form,
    h('div', { class: 'field' }, h('label', { for: 'settings-preset' }, 'Mode'), preset, presetHint, presetError),
    custom.el,
    gpuRow,
    loginRow,
  );

  const showPreset = (name: PresetName) => {
    preset.value = name;
    presetHint.textContent = PRESETS[name].hint;
  };

  coordinator.input.addEventListener('input', () => {
    dirty = true;
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const address = coordinator.input.value.trim();
    if (address === '') return coordinator.showError("Enter the coordinator's address, e.g. grid.example.com:8443");
    save.disabled = true;
    const failed = await send({ coordinator: address }, (e) => coordinator.showError(e?.message ?? null));
    save.disabled = false;
    if (!failed) dirty = false;
  });
  preset.addEventListener('change', async () => {
    const chosen = preset.value as PresetName;
    // Choosing Custom again keeps the knobs already set; any other choice is the bare preset, with the GPU switch as it was.
    const policy = current?.policy.preset === chosen ? current.policy : withGpu({ preset: chosen }, current?.policy.useGpu !== false);
    presetHint.textContent = PRESETS[chosen].hint;
    const failed = await send({ policy }, (e) => {
      presetError.textContent = e?.message ?? '';
    });
    if (failed && current) showPreset(current.policy.preset);
  });
  gpu.addEventListener('change', async () => {
    if (!current) return;
    const failed = await send({ policy: withGpu(current.policy, gpu.checked) }, (e) => {
      gpuError.textContent = e?.message ?? '';
    });
    if (failed) gpu.checked = !gpu.checked;
  });
  login.addEventListener('change', async () => {
    const failed = await send({ startAtLogin: login.checked }, (e) => {
      loginError.textContent = e?.message ?? '';
    });
    if (failed) login.checked = !login.checked;
  });


  return {
    el,
    update(view) {
      const address = view.connection.coordinator;
      const gpus = view.hardware?.gpus.length ?? 0;
      if (!changed({ settings: view.settings, address, gpus, gpuReason: view.policy.gpuReason })) return;
      current = view.settings;
      // Never overwrite what the owner is typing.
      if (!dirty && document.activeElement !== coordinator.input) coordinator.input.value = address ?? '';
      showPreset(view.settings.policy.preset);
      custom.show(view.settings.policy);
      // A machine without a GPU has no switch to offer.
      gpuRow.hidden = gpus === 0;
      gpu.checked = view.settings.policy.useGpu !== false;
      gpuHint.textContent = view.policy.gpuReason ?? (gpu.checked ? 'Jobs may use the GPU when your mode allows it.' : 'Jobs run on the CPU only.');
      loginRow.hidden = view.settings.startAtLogin === null;
      login.checked = view.settings.startAtLogin === true;
    },
  };
}
