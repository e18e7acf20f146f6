/**
 * What the tray shows for a WorkerView: one of five states, the icon file
 * for this platform, a tooltip in words, and the menu as data. Pure, so the
 * tray's behaviour is tested without Electron; tray.ts only draws it.
 *
 *   const model = trayModel(host.view(), process.platform);
 *   tray.setImage(join(ASSETS, 'tray', model.icon));
 *   tray.setToolTip(model.tooltip);
 */
import type { WorkerView } from '../protocol/control.js';

/** Every state has an icon of its own, rendered by scripts/make-icons.ts. */
export type TrayState = 'connecting' | 'idle' | 'working' | 'paused' | 'error';

export type TrayCommand = 'pause' | 'resume' | 'snooze' | 'open' | 'logs' | 'start-at-login' | 'use-gpu' | 'quit';

export type TrayMenuItem =
  | { kind: 'status'; label: string }
  | { kind: 'separator' }
  | { kind: 'command'; command: TrayCommand; label: string; enabled: boolean }
  | { kind: 'checkbox'; command: 'start-at-login' | 'use-gpu'; label: string; checked: boolean };

export interface TrayModel {
  state: TrayState;
  /** A file in assets/tray/; Electron picks its `@2x` twin on high-DPI screens. */
  icon: string;
  tooltip: string;
  menu: TrayMenuItem[];
}

/** Windows cuts tray tooltips at 127 characters. */
const TOOLTIP_MAX = 127;
const APP = 'GoGrid Worker';

/** `view` is null while the worker host is still opening. */
export function trayState(view: WorkerView | null): TrayState {
  if (!view) return 'connecting';
  switch (view.connection.state) {
    case 'not-enrolled':
    case 'enrolling':
    case 'connecting':
      return 'connecting';
    case 'waiting':
    case 'failed':
      return 'error';
    case 'stopping':
    case 'stopped':
      return 'paused';
    case 'online':
      if (view.jobs.running.some((j) => !j.suspended)) return 'working';
      return view.policy.run ? 'idle' : 'paused';
  }
}

/** The state in words: the menu's first line, and the tooltip after the app's name. */
export function statusWords(view: WorkerView | null): string {
  if (!view) return 'Starting…';
  const { connection, jobs, policy } = view;
  const detail = connection.detail ? `: ${connection.detail}` : '';
  switch (connection.state) {
    case 'not-enrolled':
      return 'Not set up yet: open the status window to join a grid';
    case 'enrolling':
      return `Enrolling with ${connection.coordinator ?? 'the coordinator'}…`;
    case 'connecting':
      return `Connecting to ${connection.coordinator ?? 'the coordinator'}…`;
    case 'waiting':
      return `Offline, retrying${detail}`;
    case 'failed':
      return `Stopped by an error${detail}`;
    case 'stopping':
      return 'Quitting…';
    case 'stopped':
      return 'Stopped';
    case 'online': {
      const active = jobs.running.filter((j) => !j.suspended);
      if (active.length === 1 && active[0]!.progress !== null) return `Working on 1 job (${Math.round(active[0]!.progress * 100)}%)`;
      if (active.length > 0) return `Working on ${active.length} ${active.length === 1 ? 'job' : 'jobs'}`;
      // The policy's sentences either say "paused" themselves or only why ("On battery (38 %)").
      if (!policy.run) return /^(Paused|Snoozed|Finishing)\b/.test(policy.reason) ? policy.reason : `${policy.byAdmin ? 'Paused by your administrator' : 'Paused'}: ${policy.reason}`;
      return 'Online, waiting for jobs';
    }
  }
}

export function trayIcon(state: TrayState, platform: NodeJS.Platform): string {
  // macOS tints black-and-alpha template images for light and dark menu bars.
  if (platform === 'darwin') return `${state}Template.png`;
  // Windows' notification area is 16 px at 100 %; Linux status notifier hosts scale a larger image down.
  return platform === 'win32' ? `${state}-16.png` : `${state}-32.png`;
}

export function trayModel(view: WorkerView | null, platform: NodeJS.Platform): TrayModel {
  const state = trayState(view);
  const words = statusWords(view);
  const tooltip = `${APP}: ${words}`;
  const enrolled = view !== null && view.worker !== null && view.connection.state !== 'not-enrolled';
  const canAct = enrolled && view.connection.state !== 'stopping' && view.connection.state !== 'stopped';
  const paused = view !== null && view.policy.control.state !== 'active';
  const menu: TrayMenuItem[] = [
    { kind: 'status', label: words },
    { kind: 'separator' },
    paused ? { kind: 'command', command: 'resume', label: 'Resume', enabled: canAct } : { kind: 'command', command: 'pause', label: 'Pause', enabled: canAct },
    { kind: 'command', command: 'snooze', label: 'Snooze for 1 hour', enabled: canAct },
    // Only where there is a GPU to give: the switch BOINC's and Folding@home's owners ask for most.
    ...(canAct && (view.hardware?.gpus.length ?? 0) > 0 ? [{ kind: 'checkbox' as const, command: 'use-gpu' as const, label: 'Use the GPU', checked: view.settings.policy.useGpu !== false }] : []),
    { kind: 'separator' },
    { kind: 'command', command: 'open', label: 'Open status window', enabled: true },
    { kind: 'command', command: 'logs', label: 'Open logs folder', enabled: true },
  ];
  const login = view?.settings.startAtLogin ?? null;
  if (login !== null) menu.push({ kind: 'checkbox', command: 'start-at-login', label: 'Start at login', checked: login });
  menu.push({ kind: 'separator' }, { kind: 'command', command: 'quit', label: `Quit ${APP}`, enabled: true });
  return { state, icon: trayIcon(state, platform), tooltip: tooltip.length > TOOLTIP_MAX ? `${tooltip.slice(0, TOOLTIP_MAX - 1)}…` : tooltip, menu };
}
