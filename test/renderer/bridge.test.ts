// The two bridges of the one renderer bundle: the HTTP one with the token
// from the URL fragment, and the preload's `window.gogrid` (planted here the
// way contextBridge would, and answered by main/ipc.ts's real handler); plus
// the page's defences: its CSP is enforced and worker data never becomes markup.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { pino } from 'pino';
import { answerIpc } from '../../src/main/ipc.js';
import { GridError } from '../../src/protocol/errors.js';
import { FakeTarget } from './fake-target.js';
import { VIEWS } from './views.js';
import { openWindow, useBrowser, type WindowOptions } from './window.js';

const ui = useBrowser();

const loaded = (page: Page) => page.locator('main[aria-busy="false"]').waitFor();
const apiRequests = (page: Page) => {
  const seen: string[] = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname.startsWith('/v1/')) seen.push(`${r.method()} ${new URL(r.url()).pathname}`);
  });
  return seen;
};

describe('HTTP bridge', () => {
  it('takes the token from the fragment, removes it from the address, and keeps it for a reload', async () => {
    const win = await openWindow(ui.browser, ui.dist, VIEWS.idle);
    try {
      await loaded(win.page);
      expect(win.page.url()).toBe(`${win.server.url}/`);
      await win.page.reload();
      await loaded(win.page);
      expect(await win.page.locator('#worker-id').innerText()).toBe('w-1b8b0e9ba0edc647');
      expect(await win.page.locator('#notice').isVisible()).toBe(false);
      expect(win.errors).toEqual([]);
    } finally {
      await win.close();
    }
  });

  it('without a token says where to find the address, and calls nothing', async () => {
    let seen: string[] = [];
    const win = await openWindow(ui.browser, ui.dist, VIEWS.idle, { token: null, prepare: async (page) => void (seen = apiRequests(page)) });
    try {
      await win.page.locator('#notice').waitFor();
      expect(await win.page.locator('#notice').innerText()).toBe('This page needs its access token: open the status address the worker printed, the one that ends in #token=….');
      expect(seen).toEqual([]);
      expect(win.errors).toEqual([]);
    } finally {
      await win.close();
    }
  });

  it("shows the endpoint's refusal of a wrong token", async () => {
    const win = await openWindow(ui.browser, ui.dist, VIEWS.idle, { token: 'not-the-token' });
    try {
      await win.page.locator('#notice').filter({ hasText: 'the token is not valid' }).waitFor();
      expect(await win.page.locator('#notice').innerText()).toMatch(/^the token is not valid; read it again from control\.json/);
      expect(win.errors).toEqual([]);
    } finally {
      await win.close();
    }
  });

  it('says so when the worker stops answering, and recovers when it is back', async () => {
    const win = await openWindow(ui.browser, ui.dist, VIEWS.idle);
    try {
      await loaded(win.page);
      await win.page.route('**/v1/status', (route) => route.abort('connectionrefused'));
      await win.page.locator('#notice').filter({ hasText: 'The worker does not answer; is it still running?' }).waitFor();
      await win.page.unroute('**/v1/status');
      await win.page.locator('#notice').waitFor({ state: 'hidden' });
      expect(win.errors.every((e) => e.includes('net::ERR_CONNECTION_REFUSED'))).toBe(true);
    } finally {
      await win.close();
    }
  });
});

describe('preload bridge', () => {
  /** What contextBridge would expose, carried to main/ipc.ts's handler with the calling frame as the sender. */
  const plantPreload =
    (answer?: (channel: string) => unknown, pageUrl?: string): WindowOptions['prepare'] =>
    async (page: Page, target: FakeTarget) => {
      await page.exposeBinding('__ipc', async (source, channel: string, args: unknown[]) => {
        if (answer) return answer(channel);
        const sender = { url: source.frame.url(), isMainFrame: source.frame.parentFrame() === null };
        return answerIpc(target, { channel, sender, args }, pageUrl ?? new URL('/', source.frame.url()).href, pino({ level: 'silent' }));
      });
      await page.addInitScript(`window.gogrid = {
        status: () => window.__ipc('gogrid:/v1/status', []),
        act: (a) => window.__ipc('gogrid:/v1/control', [a]),
        enroll: (f) => window.__ipc('gogrid:/v1/enroll', [f]),
        updateSettings: (u) => window.__ipc('gogrid:/v1/settings', [u]),
      };`);
    };

  it('is used when the host provides it: the same window, and no HTTP call', async () => {
    let seen: string[] = [];
    const win = await openWindow(ui.browser, ui.dist, VIEWS.idle, {
      token: null,
      prepare: async (page, target) => {
        seen = apiRequests(page);
        await plantPreload()!(page, target);
      },
    });
    try {
      await loaded(win.page);
      expect(await win.page.locator('#connection-state').innerText()).toBe('Online');
      win.target.answer = VIEWS['paused-by-you'];
      await win.page.getByRole('button', { name: 'Pause' }).click();
      await win.page.getByRole('button', { name: 'Resume' }).waitFor();
      expect(win.target.calls).toEqual([{ method: 'act', arg: { action: 'pause' } }]);
      expect(seen).toEqual([]);
      expect(win.errors).toEqual([]);
    } finally {
      await win.close();
    }
  });

  it("shows the host's refusal next to the field, as over HTTP", async () => {
    const win = await openWindow(ui.browser, ui.dist, VIEWS['not-enrolled'], { token: null, prepare: plantPreload() });
    try {
      await loaded(win.page);
      win.target.refuseNext = new GridError('GG_ERR_TOKEN_MALFORMED', 'the token is not of the form gg1.<id>.<secret>.<ca-fingerprint>');
      await win.page.locator('#enroll-coordinator').fill('grid.example.com');
      await win.page.locator('#enroll-token').fill('hello');
      await win.page.getByRole('button', { name: 'Enroll' }).click();
      await win.page.locator('#enroll-token-error').filter({ hasText: 'gg1.<id>' }).waitFor();
      expect(win.target.calls).toEqual([{ method: 'enroll', arg: { coordinator: 'grid.example.com', token: 'hello' } }]);
      expect(win.errors).toEqual([]);
    } finally {
      await win.close();
    }
  });

  it('runs from file:// as Electron loads it: script, styles and icon pass the meta CSP, IPC accepts the page', async () => {
    const pageUrl = pathToFileURL(join(ui.dist, 'renderer', 'index.html')).href;
    const target = new FakeTarget(VIEWS.working);
    const context = await ui.browser.newContext();
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
      page.on('pageerror', (e) => errors.push(e.message));
      let icon = 0;
      page.on('requestfinished', (r) => void (r.url().endsWith('/icon.png') && (icon += 1)));
      // Exactly main's check: the sender's frame URL against the page main loads.
      await plantPreload(undefined, pageUrl)!(page, target);
      await page.goto(pageUrl);
      await loaded(page);
      expect(await page.locator('#jobs-running li').innerText()).toMatch(/40%/);
      expect(await page.evaluate('getComputedStyle(document.body).fontFamily')).toMatch(/system-ui/);
      await expect.poll(() => icon).toBe(1);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('refuses an answer that is not a WorkerView', async () => {
    const win = await openWindow(ui.browser, ui.dist, VIEWS.idle, { token: null, prepare: plantPreload(() => ({ appVersion: 1 })) });
    try {
      await win.page.locator('#notice').filter({ hasText: 'does not understand' }).waitFor();
      expect(await win.page.locator('#notice').innerText()).toBe('The worker answered with something this window does not understand; are both the same version?');
      expect(win.errors).toEqual([]);
    } finally {
      await win.close();
    }
  });
});

describe('page defences', () => {
  it('the CSP refuses inline script and style, and the test sees each refusal', async () => {
    const win = await openWindow(ui.browser, ui.dist, VIEWS.idle);
    try {
      await loaded(win.page);
      await win.page.evaluate(`(() => {
        const s = document.createElement('script');
        s.textContent = 'window.injected = true';
        document.body.append(s);
        document.body.setAttribute('style', 'background: red');
      })()`);
      expect(await win.page.evaluate('window.injected === undefined')).toBe(true);
      // Each refusal is reported once per policy: the endpoint's header and the page's meta tag.
      const script = /inline script violates the following Content Security Policy directive 'script-src 'self''/;
      const style = /inline style violates the following Content Security Policy directive 'style-src 'self''/;
      await expect.poll(() => win.errors.filter((e) => style.test(e)).length).toBe(2);
      expect(win.errors.filter((e) => script.test(e))).toHaveLength(2);
      expect(win.errors).toHaveLength(4);
    } finally {
      await win.close();
    }
  });

  it('shows markup in worker data as text', async () => {
    const hostile = { ...VIEWS.idle, worker: { id: 'w-1', name: '<img src=x onerror="window.pwned=1">' } };
    const win = await openWindow(ui.browser, ui.dist, hostile);
    try {
      await loaded(win.page);
      expect(await win.page.locator('#worker').innerText()).toBe('<img src=x onerror="window.pwned=1"> w-1');
      expect(await win.page.locator('img').count()).toBe(0);
      expect(win.errors).toEqual([]);
    } finally {
      await win.close();
    }
  });
});
