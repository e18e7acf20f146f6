/**
 * The status window in Debian's Chromium, served by the real loopback
 * control server (its CSP header, token check and static files) in front of
 * a FakeTarget, with every console error and page error collected.
 *
 *   const win = await openWindow(browser, dist, VIEWS.idle);
 *   await win.page.getByRole('button', { name: 'Pause' }).click();
 *   await win.close();
 */
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import type { WorkerView } from '../../src/protocol/control.js';
import { startControlServer, statusUrl, type ControlServer } from '../../src/worker/control/index.js';
import { FakeTarget } from './fake-target.js';

export const ARTIFACTS = new URL('../artifacts/renderer/', import.meta.url);

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/**
 * One Chromium and one renderer build for a test file, started before its
 * tests and removed after them.
 *
 *   const ui = useBrowser();
 *   it('…', async () => { const win = await openWindow(ui.browser, ui.dist, VIEWS.idle); });
 */
export function useBrowser(): { readonly browser: Browser; readonly dist: string } {
  const state: { browser?: Browser; dist?: string } = {};
  beforeAll(async () => {
    [state.dist, state.browser] = await Promise.all([buildRenderer(), launchChromium()]);
  }, 120_000);
  afterAll(async () => {
    await state.browser?.close();
    if (state.dist) await rm(state.dist, { recursive: true, force: true });
  });
  return {
    get browser() {
      return state.browser!;
    },
    get dist() {
      return state.dist!;
    },
  };
}

/** Builds the renderer (as `npm run build` does) into a fresh temp dir; returns that dir. */
export async function buildRenderer(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gogrid-renderer-'));
  await promisify(execFile)(process.execPath, [new URL('../../scripts/build-renderer.mjs', import.meta.url).pathname, dir]);
  return dir;
}

export interface Window {
  page: Page;
  target: FakeTarget;
  server: ControlServer;
  /** Console errors (CSP violations among them) and uncaught page errors; not the API's own refusals. */
  errors: string[];
  close(): Promise<void>;
}

export interface WindowOptions {
  colorScheme?: 'light' | 'dark';
  /** The token in the address's fragment; null: none. @default the server's */
  token?: string | null;
  /** Before the page loads (e.g. to plant a preload bridge). */
  prepare?: (page: Page, target: FakeTarget) => Promise<void>;
}

export async function openWindow(browser: Browser, dist: string, view: WorkerView, opts: WindowOptions = {}): Promise<Window> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gogrid-window-'));
  const target = new FakeTarget(view);
  const server = await startControlServer({ target, dataDir, staticDir: join(dist, 'renderer'), logger: pino({ level: 'silent' }) });
  const context = await browser.newContext({ colorScheme: opts.colorScheme ?? 'light', viewport: { width: 460, height: 640 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    // Chromium logs every non-2xx fetch; a refusal the test asked the host for is not a page error.
    const refusal = m.text().startsWith('Failed to load resource: the server responded with a status of') && new URL(m.location().url).pathname.startsWith('/v1/');
    if (m.type() === 'error' && !refusal) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await opts.prepare?.(page, target);
  const token = opts.token === undefined ? server.token : opts.token;
  await page.goto(token === null ? `${server.url}/` : statusUrl(server.url, token));
  return {
    page,
    target,
    server,
    errors,
    async close() {
      await context.close();
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true });
}
