// What the window sends when the owner clicks: each control as its
// ControlAction, the enrollment form as an EnrollForm, settings as a
// SettingsUpdate; a refusal from the host lands next to the field it is about.
import { describe, expect, it } from 'vitest';
import { GridError } from '../../src/protocol/errors.js';
import { VIEWS } from './views.js';
import { openWindow, useBrowser, screenshot, type Window } from './window.js';

const ui = useBrowser();

async function withWindow(view: keyof typeof VIEWS, fn: (win: Window) => Promise<void>): Promise<void> {
  const win = await openWindow(ui.browser, ui.dist, VIEWS[view]);
  try {
    await win.page.locator('main[aria-busy="false"]').waitFor();
    await fn(win);
  } finally {
    await win.close();
  }
}

describe('controls', () => {
  it('Pause sends { action: "pause" } and shows the view the host answers', () =>
    withWindow('idle', async ({ page, target, errors }) => {
      target.answer = VIEWS['paused-by-you'];
      await page.getByRole('button', { name: 'Pause' }).click();
      expect((await target.calledTimes(1))[0]).toEqual({ method: 'act', arg: { action: 'pause' } });
      await page.getByRole('button', { name: 'Resume' }).waitFor();
      expect(await page.locator('#activity-title').innerText()).toBe('Paused');
      expect(errors).toEqual([]);
    }));

  it('Resume sends { action: "resume" }', () =>
    withWindow('paused-by-you', async ({ page, target, errors }) => {
      await page.getByRole('button', { name: 'Resume' }).click();
      expect((await target.calledTimes(1))[0]).toEqual({ method: 'act', arg: { action: 'resume' } });
      expect(errors).toEqual([]);
    }));

  it('Snooze 1 hour sends { action: "snooze", minutes: 60 }', () =>
    withWindow('idle', async ({ page, target, errors }) => {
      await page.getByRole('button', { name: 'Snooze 1 hour' }).click();
      expect((await target.calledTimes(1))[0]).toEqual({ method: 'act', arg: { action: 'snooze', minutes: 60 } });
      expect(errors).toEqual([]);
    }));

  it('Finish current job sends { action: "finish" }', () =>
    withWindow('working', async ({ page, target, errors }) => {
      await page.getByRole('button', { name: 'Finish current job, then pause' }).click();
      expect((await target.calledTimes(1))[0]).toEqual({ method: 'act', arg: { action: 'finish' } });
      expect(errors).toEqual([]);
    }));

  it('a refused action shows the reason under the buttons', () =>
    withWindow('idle', async ({ page, target, errors }) => {
      target.refuseNext = new GridError('GG_ERR_INTERNAL', 'could not save settings.json: disk full');
      await page.getByRole('button', { name: 'Pause' }).click();
      await expectText(page.locator('#activity-error'), 'could not save settings.json: disk full');
      expect(errors).toEqual([]);
    }));
});

describe('enrollment form', () => {
  it('checks for empty fields itself and sends nothing', () =>
    withWindow('not-enrolled', async ({ page, target, errors }) => {
      await page.getByRole('button', { name: 'Enroll' }).click();
      await expectText(page.locator('#enroll-coordinator-error'), "Enter the coordinator's address, e.g. grid.example.com:8443");
      await expectText(page.locator('#enroll-token-error'), 'Paste the enrollment token your administrator gave you (it starts with gg1.)');
      expect(await page.locator('#enroll-token').getAttribute('aria-invalid')).toBe('');
      expect(target.calls).toEqual([]);
      expect(errors).toEqual([]);
    }));

  it("shows the host's refusal next to the field it is about, then enrolls", () =>
    withWindow('not-enrolled', async ({ page, target, errors }) => {
      const token = 'gg1.k3x9a2m4.c2VjcmV0c2VjcmV0c2VjcmV0.AAAA';
      await page.locator('#enroll-coordinator').fill('  grid.example.com:8443 ');
      await page.locator('#enroll-token').fill(token);

      target.refuseNext = new GridError('GG_ERR_TOKEN_EXPIRED', 'token k3x9a2m4 expired at 2026-01-01T00:00:00Z');
      await page.getByRole('button', { name: 'Enroll' }).click();
      await expectText(page.locator('#enroll-token-error'), 'token k3x9a2m4 expired at 2026-01-01T00:00:00Z');
      expect(await page.locator('#enroll-coordinator-error').innerText()).toBe('');
      expect(target.calls[0]).toEqual({ method: 'enroll', arg: { coordinator: 'grid.example.com:8443', token } });
      await screenshot(page, 'enroll-refused-light');

      target.refuseNext = new GridError('GG_ERR_CONFIG_INVALID', 'invalid coordinator address "grid.example.com:99999": the port is out of range');
      await page.locator('#enroll-coordinator').fill('grid.example.com:99999');
      await page.getByRole('button', { name: 'Enroll' }).click();
      await expectText(page.locator('#enroll-coordinator-error'), 'invalid coordinator address "grid.example.com:99999": the port is out of range');
      expect(await page.locator('#enroll-token-error').innerText()).toBe('');

      target.refuseNext = new GridError('GG_ERR_COORDINATOR_UNREACHABLE', 'grid.example.com:8443 did not answer');
      await page.locator('#enroll-coordinator').fill('grid.example.com:8443');
      await page.locator('#enroll-name').fill('lab-pc-07');
      await page.getByRole('button', { name: 'Enroll' }).click();
      await expectText(page.locator('#enroll-coordinator-error'), 'grid.example.com:8443 did not answer');
      expect(target.calls[2]).toEqual({ method: 'enroll', arg: { coordinator: 'grid.example.com:8443', token, name: 'lab-pc-07' } });

      target.refuseNext = new GridError('GG_ERR_BAD_REQUEST', 'enrollment is already under way');
      await page.getByRole('button', { name: 'Enroll' }).click();
      await expectText(page.locator('#enroll-error'), 'enrollment is already under way');

      target.answer = VIEWS.connecting;
      await page.getByRole('button', { name: 'Enroll' }).click();
      await page.locator('#enroll-form').waitFor({ state: 'hidden' });
      expect(await page.locator('#connection-state').innerText()).toBe('Connecting…');
      expect(target.calls).toHaveLength(5);
      expect(errors).toEqual([]);
    }));
});

describe('settings', () => {
  it('a preset choice sends { policy: { preset } }', () =>
    withWindow('idle', async ({ page, target, errors }) => {
      await page.locator('#settings-preset').selectOption('dedicated');
      expect((await target.calledTimes(1))[0]).toEqual({ method: 'updateSettings', arg: { policy: { preset: 'dedicated' } } });
      expect(errors).toEqual([]);
    }));

  it('choosing Custom again keeps the knobs already set', () =>
    withWindow('idle', async ({ page, target, errors }) => {
      const custom = { preset: 'custom' as const, idleMinutes: 10, runOnBattery: true };
      target.current = { ...target.current, settings: { ...target.current.settings, policy: custom } };
      await expectValue(page.locator('#settings-preset'), 'custom');
      await page.locator('#settings-preset').selectOption('desktop');
      await target.calledTimes(1);
      await page.locator('#settings-preset').selectOption('custom');
      expect((await target.calledTimes(2))[1]).toEqual({ method: 'updateSettings', arg: { policy: custom } });
      expect(errors).toEqual([]);
    }));

  it('Custom shows its rules, sends them all with Save rules, keeps the weekly windows, and shows a refusal', () =>
    withWindow('idle', async ({ page, target, errors }) => {
      expect(await page.locator('#custom-settings').isHidden()).toBe(true);
      const schedule = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'] as ('mon' | 'tue' | 'wed' | 'thu' | 'fri')[], from: '19:00', to: '07:00' }];
      const custom = { preset: 'custom' as const, idleMinutes: 10, runOnBattery: true, cpuThresholdPercent: null, schedule };
      target.current = { ...target.current, settings: { ...target.current.settings, policy: custom } };
      await page.locator('#custom-settings').waitFor({ state: 'visible' });
      expect(await page.locator('#custom-idle').inputValue()).toBe('10');
      expect(await page.locator('#custom-battery').isChecked()).toBe(true);
      expect(await page.locator('#custom-min-battery').inputValue()).toBe('50');
      expect(await page.locator('#custom-cpu').inputValue()).toBe('');
      expect(await page.locator('#custom-slots').inputValue()).toBe('1');
      expect(await page.locator('#custom-schedule').innerText()).toBe('Only within 1 weekly window (kept as set).');
      await screenshot(page, 'settings-custom-light');

      await page.locator('#custom-idle').fill('15');
      await page.locator('#custom-in-use').check();
      await page.locator('#custom-cpu').fill('70');
      await page.locator('#custom-gpu').selectOption('never');
      await page.locator('#custom-cores').fill('2');
      await page.getByRole('button', { name: 'Save rules' }).click();
      expect((await target.calledTimes(1))[0]).toEqual({
        method: 'updateSettings',
        arg: {
          policy: { preset: 'custom', idleMinutes: 15, minBatteryPercent: 50, cpuThresholdPercent: 70, maxCores: 2, slots: 1, runWhileInUse: true, runOnBattery: true, gpu: 'never', schedule },
        },
      });

      // Out of range: the control endpoint's schema refuses it before the host sees it, in the schema's words.
      await page.locator('#custom-idle').fill('5000');
      await page.getByRole('button', { name: 'Save rules' }).click();
      await expectText(page.locator('#custom-error'), 'policy.idleMinutes: Too big: expected number to be <=1440');
      await page.locator('#custom-slots').fill('1.5');
      await page.getByRole('button', { name: 'Save rules' }).click();
      await expectText(page.locator('#custom-error'), 'Jobs at once: "1.5" is not a whole number');
      expect(target.calls).toHaveLength(1);
      expect(errors).toEqual([]);
    }));

  it('the GPU switch sends the mode with useGpu: false, and flips back when refused', () =>
    withWindow('idle', async ({ page, target, errors }) => {
      const gpu = page.locator('#settings-gpu');
      expect(await gpu.isChecked()).toBe(true);
      await expectText(page.locator('#settings-gpu-hint'), 'Jobs may use the GPU when your mode allows it.');
      await gpu.click();
      expect((await target.calledTimes(1))[0]).toEqual({ method: 'updateSettings', arg: { policy: { preset: 'desktop', useGpu: false } } });
      target.refuseNext = new GridError('GG_ERR_INTERNAL', 'could not save the settings');
      await gpu.click();
      expect((await target.calledTimes(2))[1]).toEqual({ method: 'updateSettings', arg: { policy: { preset: 'desktop' } } });
      await expectText(page.locator('#settings-gpu-error'), 'could not save the settings');
      expect(await gpu.isChecked()).toBe(false);
      expect(errors).toEqual([]);
    }));

  it('start at login sends { startAtLogin } and flips back when refused', () =>
    withWindow('idle', async ({ page, target, errors }) => {
      target.refuseNext = new GridError('GG_ERR_INTERNAL', 'could not write ~/.config/autostart/gogrid-worker.desktop');
      await page.locator('#settings-login').click();
      expect((await target.calledTimes(1))[0]).toEqual({ method: 'updateSettings', arg: { startAtLogin: false } });
      await expectText(page.locator('#settings-login-error'), 'could not write ~/.config/autostart/gogrid-worker.desktop');
      expect(await page.locator('#settings-login').isChecked()).toBe(true);
      expect(errors).toEqual([]);
    }));

  it('a refused coordinator address shows next to the field and keeps what was typed', () =>
    withWindow('idle', async ({ page, target, errors }) => {
      target.refuseNext = new GridError('GG_ERR_CONFIG_INVALID', 'invalid coordinator address "https://grid": leave out the scheme');
      await page.locator('#settings-coordinator').fill('https://grid');
      await page.getByRole('button', { name: 'Save' }).click();
      expect((await target.calledTimes(1))[0]).toEqual({ method: 'updateSettings', arg: { coordinator: 'https://grid' } });
      await expectText(page.locator('#settings-coordinator-error'), 'invalid coordinator address "https://grid": leave out the scheme');
      // The section redraws when the settings change; it must not overwrite the owner's typing.
      target.current = { ...target.current, settings: { ...target.current.settings, policy: { preset: 'dedicated' } } };
      await expectValue(page.locator('#settings-preset'), 'dedicated');
      expect(await page.locator('#settings-coordinator').inputValue()).toBe('https://grid');
      await screenshot(page, 'settings-refused-light');
      expect(errors).toEqual([]);
    }));
});

type Locator = Window['page'] extends { locator(s: string): infer L } ? L : never;

/** Waits until the element shows exactly `want`. */
async function expectText(locator: Locator, want: string): Promise<void> {
  await locator.filter({ hasText: want }).waitFor();
  expect(await locator.innerText()).toBe(want);
}

async function expectValue(locator: Locator, want: string): Promise<void> {
  await expect.poll(() => locator.inputValue()).toBe(want);
}
