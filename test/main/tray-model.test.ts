import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerView } from '../../src/protocol/control.js';
import { trayIcon, trayModel, trayState, type TrayState } from '../../src/main/tray-model.js';
import { VIEWS } from '../renderer/views.js';

const TRAY_ICONS = fileURLToPath(new URL('../../assets/tray/', import.meta.url));
const STATES: TrayState[] = ['connecting', 'idle', 'working', 'paused', 'error'];

const withConnection = (state: WorkerView['connection']['state'], detail: string | null = null): WorkerView => ({
  ...VIEWS.idle,
  connection: { state, detail, coordinator: 'grid.example.com:8443' },
});

describe('tray state', () => {
  it.each([
    ['starting (no view yet)', null, 'connecting'],
    ['not enrolled', VIEWS['not-enrolled'], 'connecting'],
    ['connecting', VIEWS.connecting, 'connecting'],
    ['enrolling', withConnection('enrolling'), 'connecting'],
    ['online and idle', VIEWS.idle, 'idle'],
    ['working', VIEWS.working, 'working'],
    ['paused by the owner', VIEWS['paused-by-you'], 'paused'],
    ['paused by the administrator', VIEWS['paused-by-admin'], 'paused'],
    ['offline, retrying', withConnection('waiting', 'connection lost'), 'error'],
    ['failed', VIEWS.error, 'error'],
    ['quitting', withConnection('stopping'), 'paused'],
  ] as const)('%s → %s', (_name, view, want) => {
    expect(trayState(view)).toBe(want);
  });

  it('a job on hold while the owner works shows paused, not working', () => {
    const job = VIEWS.working.jobs.running[0]!;
    const held: WorkerView = { ...VIEWS.working, jobs: { ...VIEWS.working.jobs, running: [{ ...job, suspended: true }] }, policy: { ...VIEWS.working.policy, run: false } };
    expect(trayState(held)).toBe('paused');
    // …and a job still finishing after "Finish, then pause" is work.
    const finishing: WorkerView = { ...VIEWS.working, policy: { ...VIEWS.working.policy, run: false, control: { state: 'finishing' } } };
    expect(trayState(finishing)).toBe('working');
  });
});

describe('tray icon', () => {
  it('names a template image on macOS, 16 px on Windows, 32 px on Linux, and every file exists with its @2x', () => {
    expect(trayIcon('paused', 'darwin')).toBe('pausedTemplate.png');
    expect(trayIcon('paused', 'win32')).toBe('paused-16.png');
    expect(trayIcon('paused', 'linux')).toBe('paused-32.png');
    for (const state of STATES) {
      for (const platform of ['darwin', 'win32', 'linux'] as const) {
        const file = join(TRAY_ICONS, trayIcon(state, platform));
        expect(existsSync(file), file).toBe(true);
        expect(existsSync(file.replace(/\.png$/, '@2x.png')), file).toBe(true);
      }
    }
  });
});

describe('tooltip', () => {
  it.each([
    [null, 'GoGrid Worker: Starting…'],
    [VIEWS['not-enrolled'], 'GoGrid Worker: Not set up yet: open the status window to join a grid'],
    [VIEWS.connecting, 'GoGrid Worker: Connecting to grid.example.com:8443…'],
    [VIEWS.idle, 'GoGrid Worker: Online, waiting for jobs'],
    [VIEWS.working, 'GoGrid Worker: Working on 1 job (40%)'],
    [VIEWS['paused-by-you'], 'GoGrid Worker: Paused by you'],
    [VIEWS['paused-by-admin'], 'GoGrid Worker: Paused by the administrator: maintenance until 18:00'],
    [{ ...VIEWS.idle, policy: { ...VIEWS.idle.policy, run: false, reason: 'On battery (38 %)' } }, 'GoGrid Worker: Paused: On battery (38 %)'],
    [
      { ...VIEWS.idle, policy: { ...VIEWS.idle.policy, run: false, byAdmin: true, reason: 'Outside the schedule (runs Mon 18:00)' } },
      'GoGrid Worker: Paused by your administrator: Outside the schedule (runs Mon 18:00)',
    ],
    [withConnection('waiting', 'connection lost'), 'GoGrid Worker: Offline, retrying: connection lost'],
    [VIEWS.error, 'GoGrid Worker: Stopped by an error: GG_ERR_WORKER_REVOKED: this worker was revoked by an administrator'],
  ] as const)('%#: %s', (view, want) => {
    expect(trayModel(view, 'linux').tooltip).toBe(want);
  });

  it('stays within the 127 characters Windows shows', () => {
    const long = withConnection('failed', 'x'.repeat(300));
    const { tooltip } = trayModel(long, 'win32');
    expect(tooltip).toHaveLength(127);
    expect(tooltip.endsWith('…')).toBe(true);
  });
});

describe('tray menu', () => {
  const labels = (view: WorkerView | null) =>
    trayModel(view, 'linux').menu.map((i) => (i.kind === 'separator' ? '---' : i.kind === 'checkbox' ? `[${i.checked ? 'x' : ' '}] ${i.label}` : i.label));

  it('has the status line, Pause, Snooze, the GPU switch, Open, the logs, Start at login and Quit', () => {
    expect(labels(VIEWS.idle)).toEqual([
      'Online, waiting for jobs',
      '---',
      'Pause',
      'Snooze for 1 hour',
      '[x] Use the GPU',
      '---',
      'Open status window',
      'Open logs folder',
      '[x] Start at login',
      '---',
      'Quit GoGrid Worker',
    ]);
  });

  it('offers Resume while the owner paused, snoozed or asked to finish', () => {
    expect(labels(VIEWS['paused-by-you'])[2]).toBe('Resume');
    expect(labels({ ...VIEWS.idle, policy: { ...VIEWS.idle.policy, control: { state: 'snoozed', untilMs: 1 } } })[2]).toBe('Resume');
    expect(labels({ ...VIEWS.idle, policy: { ...VIEWS.idle.policy, control: { state: 'finishing' } } })[2]).toBe('Resume');
    // An administrator's pause is not the owner's to lift: the owner can still pause on top.
    expect(labels(VIEWS['paused-by-admin'])[2]).toBe('Pause');
  });

  it('runs the right command for each item, and disables pause controls before enrollment', () => {
    const commands = (view: WorkerView | null) =>
      trayModel(view, 'linux').menu.flatMap((i) => (i.kind === 'command' || i.kind === 'checkbox' ? [`${i.command}${i.kind === 'command' && !i.enabled ? ' (disabled)' : ''}`] : []));
    expect(commands(VIEWS.idle)).toEqual(['pause', 'snooze', 'use-gpu', 'open', 'logs', 'start-at-login', 'quit']);
    expect(commands(VIEWS['not-enrolled'])).toEqual(['pause (disabled)', 'snooze (disabled)', 'open', 'logs', 'start-at-login', 'quit']);
    expect(commands(null)).toEqual(['pause (disabled)', 'snooze (disabled)', 'open', 'logs', 'quit']);
  });

  it('offers the GPU switch only where there is a GPU, unchecked once the owner turned it off', () => {
    const noGpu: WorkerView = { ...VIEWS.idle, hardware: { ...VIEWS.idle.hardware!, gpus: [] } };
    expect(labels(noGpu)).not.toContainEqual(expect.stringContaining('Use the GPU'));
    const off: WorkerView = { ...VIEWS.idle, settings: { ...VIEWS.idle.settings, policy: { preset: 'desktop', useGpu: false } } };
    expect(labels(off)).toContain('[ ] Use the GPU');
  });

  it('leaves out Start at login where the host has none, and shows it unchecked when off', () => {
    const headless: WorkerView = { ...VIEWS.idle, settings: { ...VIEWS.idle.settings, startAtLogin: null } };
    expect(labels(headless)).not.toContainEqual(expect.stringContaining('Start at login'));
    const off: WorkerView = { ...VIEWS.idle, settings: { ...VIEWS.idle.settings, startAtLogin: false } };
    expect(labels(off)).toContain('[ ] Start at login');
  });
});
