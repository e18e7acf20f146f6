// The status window end to end in Debian's Chromium: a real coordinator on
// loopback, a real headless worker host (QUIC, onnxruntime job processes)
// behind its real control endpoint, and the page acting on both. Screenshots
// land in test/artifacts/renderer/grid-*.png.
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { JobInfo, WorkerInfo } from '../../src/protocol/index.js';
import { startControlServer, statusUrl, type ControlServer } from '../../src/worker/control/index.js';
import { openWorkerHost, type WorkerHost } from '../../src/worker/host.js';
import { scriptedSignals } from '../helpers/scripted-signals.js';
import { writeOnnxFixtures, type OnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, startTestCoordinator, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { screenshot, useBrowser } from './window.js';

const silent = pino({ level: 'silent' });
const ui = useBrowser();
let c: TestCoordinator;
let fixtures: OnnxFixtures;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  c = await startTestCoordinator();
  fixtures = writeOnnxFixtures(await tempDir());
}, 120_000);
afterAll(async () => {
  for (const clean of cleanups.reverse()) await clean().catch(() => undefined);
  await c?.stop();
  await removeTempDirs();
});

/** A headless worker host, its control endpoint serving the built renderer, and a page on it. */
async function openWorker(opts: { token?: string } = {}): Promise<{ host: WorkerHost; server: ControlServer; page: Page; errors: string[] }> {
  const host = await openWorkerHost({
    dataDir: await tempDir('gogrid-e2e-'),
    appVersion: '0.0.0-test',
    logger: silent,
    defaultPreset: 'dedicated',
    signals: scriptedSignals(),
    startAtLogin: null,
    ...(opts.token ? { token: opts.token, coordinator: `127.0.0.1:${c.port}` } : {}),
    agent: { maxIdleTimeoutMs: 1500, backoff: { baseMs: 50, capMs: 300 } },
    jobs: { threads: 1 },
    policyIntervalMs: 200,
  });
  cleanups.push(() => host.quit({ graceMs: 0 }));
  const server = await startControlServer({ target: host, dataDir: await tempDir(), staticDir: join(ui.dist, 'renderer'), logger: silent });
  cleanups.push(() => server.close());
  const context = await ui.browser.newContext({ viewport: { width: 460, height: 720 } });
  cleanups.push(() => context.close());
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  await page.goto(statusUrl(server.url, server.token));
  return { host, server, page, errors };
}

async function workerInfo(id: string): Promise<WorkerInfo> {
  return WorkerInfo.parse(await c.api('GET', `/v1/workers/${id}`));
}

describe('the status window on a real grid', () => {
  it('shows the real worker, pauses it for the coordinator, and follows a job to completion', { timeout: 180_000 }, async () => {
    const { host, page, errors } = await openWorker({ token: await c.createToken() });
    const id = host.worker!.identity.workerId;
    await expect.poll(() => page.locator('#connection-state').innerText(), { timeout: 15_000 }).toBe('Online');
    expect(await page.locator('#worker-id').innerText()).toBe(id);
    expect(await page.locator('#connection-coordinator').innerText()).toBe(`127.0.0.1:${c.port}`);
    expect(await page.locator('#hardware').innerText()).toContain(host.view().hardware!.summary);
    await screenshot(page, 'grid-online');

    await page.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => workerInfo(id), { timeout: 10_000 }).toMatchObject({ state: 'paused', pausedReason: 'Paused by you' });
    await expect.poll(() => page.locator('#activity-reason').innerText(), { timeout: 5000 }).toBe('Paused by you');
    await screenshot(page, 'grid-paused');
    await page.getByRole('button', { name: 'Resume' }).click();
    await expect.poll(async () => (await workerInfo(id)).state, { timeout: 10_000 }).toBe('online');

    const sha256 = await c.addModel(fixtures.slow);
    const job = JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256 }, input: { inputs: { x: { dtype: 'float32', dims: [1, 1], data: [1] } } }, timeoutMs: 120_000 }));
    const running = page.locator('#jobs-running li');
    await running.waitFor({ timeout: 60_000 });
    expect(await running.innerText()).toContain(job.id);
    expect(await page.locator('#jobs-running [role="progressbar"], #jobs-running progress').count()).toBe(1);
    await screenshot(page, 'grid-working');

    const done = await c.finished(job.id, 120_000);
    expect(done.state, JSON.stringify(done.error)).toBe('succeeded');
    await expect.poll(() => page.locator('#jobs-counts').innerText(), { timeout: 10_000 }).toBe('1 job completed today');
    await page.locator('#jobs-none').waitFor();
    await screenshot(page, 'grid-completed');
    expect(errors).toEqual([]);
  });

  it('enrolls a fresh worker from its enrollment form', { timeout: 60_000 }, async () => {
    const { host, page, errors } = await openWorker();
    await page.locator('#enroll-form').waitFor();
    await screenshot(page, 'grid-enroll');

    await page.locator('#enroll-coordinator').fill(`127.0.0.1:${c.port}`);
    await page.locator('#enroll-token').fill('gg1.bad');
    await page.getByRole('button', { name: 'Enroll' }).click();
    await expect.poll(() => page.locator('#enroll-token-error').innerText(), { timeout: 5000 }).toMatch(/token/i);
    expect(host.worker).toBeNull();

    await page.locator('#enroll-token').fill(await c.createToken());
    await page.getByRole('button', { name: 'Enroll' }).click();
    await page.locator('#enroll-form').waitFor({ state: 'hidden', timeout: 15_000 });
    await expect.poll(() => page.locator('#connection-state').innerText(), { timeout: 15_000 }).toBe('Online');
    const id = await page.locator('#worker-id').innerText();
    expect((await workerInfo(id)).state).toBe('online');
    await screenshot(page, 'grid-enrolled');
    expect(errors).toEqual([]);
  });
});
