// The status window shows each worker state in words, in light and dark, with
// no console error or CSP violation; a screenshot of each lands in test/artifacts/renderer/.
import { describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { VIEWS, type ViewName } from './views.js';
import { openWindow, useBrowser, screenshot } from './window.js';

const ui = useBrowser();

const text = (page: Page, selector: string) => page.locator(selector).innerText();

/** What each state must say, selector by selector. */
const EXPECTED: Record<ViewName, Array<[string, string | RegExp]>> = {
  'not-enrolled': [
    ['#connection-state', 'Not set up yet'],
    ['#enroll-title', 'Join a grid'],
  ],
  connecting: [
    ['#connection-state', 'Connecting…'],
    ['#connection-coordinator', 'grid.example.com:8443'],
    ['#connection-detail', 'connecting to grid.example.com:8443'],
    ['#worker-id', 'w-1b8b0e9ba0edc647'],
    ['#activity-title', 'Ready to run once connected'],
  ],
  idle: [
    ['#connection-state', 'Online'],
    ['#connection-coordinator', 'grid.example.com:8443'],
    ['#worker', /lab-pc-07/],
    ['#worker-id', 'w-1b8b0e9ba0edc647'],
    ['#hardware', /Intel Core i7-1165G7 · 8 threads · 16 GiB · NVIDIA RTX 3060/],
    ['#activity-title', 'Running'],
    ['#activity-reason', 'Running: this computer has been idle for 12 min'],
    ['#jobs-none', 'No job running.'],
    ['#jobs-counts', '3 jobs completed today'],
  ],
  working: [
    ['#activity-title', 'Running'],
    ['#jobs-running li', /mlp\.onnx[\s\S]*onnx · j-b43f0a90b37bdfe4[\s\S]*40%/],
  ],
  'paused-by-you': [
    ['#activity-title', 'Paused'],
    ['#activity-reason', 'Paused by you'],
  ],
  'paused-by-admin': [
    ['#activity-title', 'Paused by your administrator'],
    ['#activity-reason', 'Paused by the administrator: maintenance until 18:00'],
  ],
  error: [
    ['#connection-state', 'Failed'],
    ['#activity-title', 'Ready to run once connected'],
    ['#connection-detail', 'GG_ERR_WORKER_REVOKED: this worker was revoked by an administrator'],
    ['#jobs-counts', '3 jobs completed today, 1 failed'],
    ['#jobs-last-error', /^Last error at \d\d:\d\d( [AP]M)?: GG_ERR_EXECUTOR_CRASHED: the job process exited with code 134$/],
  ],
};

/** The buttons each state offers, in order. */
const BUTTONS: Record<ViewName, string[]> = {
  'not-enrolled': ['Enroll'],
  connecting: ['Pause', 'Snooze 1 hour', 'Save'],
  idle: ['Pause', 'Snooze 1 hour', 'Save'],
  working: ['Pause', 'Snooze 1 hour', 'Finish current job, then pause', 'Save'],
  'paused-by-you': ['Resume', 'Snooze 1 hour', 'Save'],
  'paused-by-admin': ['Pause', 'Snooze 1 hour', 'Save'],
  error: ['Pause', 'Snooze 1 hour', 'Save'],
};

describe('status window states', () => {
  for (const scheme of ['light', 'dark'] as const) {
    for (const name of Object.keys(VIEWS) as ViewName[]) {
      it(`shows ${name} (${scheme})`, async () => {
        const win = await openWindow(ui.browser, ui.dist, VIEWS[name], { colorScheme: scheme });
        try {
          const { page } = win;
          await page.locator('main[aria-busy="false"]').waitFor();
          for (const [selector, want] of EXPECTED[name]) {
            if (typeof want === 'string') expect(await text(page, selector), selector).toBe(want);
            else expect(await text(page, selector), selector).toMatch(want);
          }
          const visibleButtons = await page.locator('button:visible').allInnerTexts();
          expect(visibleButtons).toEqual(BUTTONS[name]);
          expect(await page.locator('#enroll-form').isVisible()).toBe(name === 'not-enrolled');
          expect(await page.locator('#jobs-title').isVisible()).toBe(name !== 'not-enrolled');
          await screenshot(page, `${name}-${scheme}`);
          expect(win.errors).toEqual([]);
        } finally {
          await win.close();
        }
      });
    }
  }

  it('follows the system colour scheme', async () => {
    const background = async (scheme: 'light' | 'dark') => {
      const win = await openWindow(ui.browser, ui.dist, VIEWS.idle, { colorScheme: scheme });
      try {
        await win.page.locator('main[aria-busy="false"]').waitFor();
        // A string: this file is type-checked for Node, where getComputedStyle does not exist.
        return (await win.page.evaluate('getComputedStyle(document.body).backgroundColor')) as string;
      } finally {
        await win.close();
      }
    };
    expect(await background('light')).toBe('rgb(246, 246, 247)');
    expect(await background('dark')).toBe('rgb(30, 30, 32)');
  });

  it('shows the running job as a progress bar at 40 %', async () => {
    const win = await openWindow(ui.browser, ui.dist, VIEWS.working);
    try {
      const bar = win.page.locator('#jobs-running li progress');
      await bar.waitFor();
      expect(await bar.evaluate((el) => (el as unknown as { value: number }).value)).toBeCloseTo(0.4);
      expect(await bar.getAttribute('aria-label')).toBe('progress of job j-b43f0a90b37bdfe4');
      expect(win.errors).toEqual([]);
    } finally {
      await win.close();
    }
  });

  it('shows what a running LLM request says of itself: its tokens and tokens per second', async () => {
    const llm = { jobId: 'j-01a24f00c1420000', kind: 'llm', modelName: 'tinyllama', progress: 0.25, detail: '64 tokens · 38 tokens/s', startedAt: '2026-01-05T10:00:00.000Z', suspended: false };
    const win = await openWindow(ui.browser, ui.dist, { ...VIEWS.working, jobs: { ...VIEWS.working.jobs, running: [llm] } });
    try {
      const row = win.page.locator('#jobs-running li[data-job="j-01a24f00c1420000"]');
      await row.waitFor();
      expect(await row.locator('.job-progress').textContent()).toBe('25% · 64 tokens · 38 tokens/s');
      expect(win.errors).toEqual([]);
    } finally {
      await win.close();
    }
  });

  it('shows the settings of the worker, and hides start at login where the host has none', async () => {
    const win = await openWindow(ui.browser, ui.dist, VIEWS.idle);
    try {
      const { page, target } = win;
      await page.locator('main[aria-busy="false"]').waitFor();
      expect(await page.locator('#settings-coordinator').inputValue()).toBe('grid.example.com:8443');
      expect(await page.locator('#settings-preset').inputValue()).toBe('desktop');
      expect(await page.locator('#settings-login').isChecked()).toBe(true);
      target.current = { ...target.current, settings: { policy: { preset: 'dedicated' }, startAtLogin: null } };
      // The next poll (a second) picks it up.
      await page.locator('#settings-login').waitFor({ state: 'hidden' });
      expect(await page.locator('#settings-preset').inputValue()).toBe('dedicated');
      expect(await page.locator('#settings-preset-hint').innerText()).toMatch(/^Always runs/);
      expect(win.errors).toEqual([]);
    } finally {
      await win.close();
    }
  });
});
