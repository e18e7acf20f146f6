/**
 * The fleet dashboard in Debian's Chromium against a real coordinator with a
 * real worker: nothing shown without an admin key, the fleet at a glance, a
 * job finishing while it is open shows up live (server-sent events), a
 * worker's name stays text, a click drills down, and it fits 400 px.
 * Screenshots land in test/artifacts/dashboard/.
 */
import { mkdir } from 'node:fs/promises';
import fc from 'fast-check';
import { get as httpsGet } from 'node:https';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COORDINATOR_SERVER_NAME, FleetSummary, JobInfo } from '../../src/protocol/index.js';
import type { RunningWorker } from '../../src/worker/worker.js';
import { writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { hostileNumber, hostileString } from '../helpers/hostile.js';
import { rawRequest } from '../helpers/https-raw.js';
import { launchChromium } from '../renderer/window.js';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/dashboard/', import.meta.url));
/** A name a hostile owner could give a worker: it must show as these characters. */
const NAME = '<img src=x onerror=alert(1)>';

let browser: Browser;
let c: TestCoordinator;
let w: RunningWorker;
let mlpSha: string;
let context: BrowserContext;
let page: Page;
const errors: string[] = [];

const input = (x: number[]) => ({ inputs: { x: { dtype: 'float32', dims: [1, 4], data: x } } });
const submit = async (body: object) => JobInfo.parse(await c.api('POST', '/v1/jobs', body));

beforeAll(async () => {
  [browser, c] = await Promise.all([launchChromium(), startTestCoordinator()]);
  w = await startTestWorker(c, { token: await c.createToken(), name: NAME });
  await w.agent.waitFor('online');
  const fixtures = writeOnnxFixtures(await tempDir());
  mlpSha = await c.addModel(fixtures.mlp);
  const identitySha = await c.addModel(fixtures.identity);
  await c.finished((await submit({ model: { sha256: mlpSha }, input: input([1, 2, 3, 4]) })).id);
  await c.finished((await submit({ model: { sha256: identitySha }, input: { inputs: {} }, maxAttempts: 1 })).id);
  await mkdir(ARTIFACTS, { recursive: true });
  // The coordinator's certificate is from its own CA, which this browser does not know.
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.on('console', (m) => {
    const refusal = m.text().startsWith('Failed to load resource: the server responded with a status of 401');
    if (m.type() === 'error' && !refusal) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
}, 120_000);
afterAll(async () => {
  await browser?.close();
  await w?.agent.stop();
  await c?.stop();
  await removeTempDirs();
});

describe('the fleet dashboard', () => {
  it('shows nothing without an admin key; a wrong key is refused in words', async () => {
    const fleet = await rawRequest({ url: `${c.apiUrl}/v1/fleet`, ca: c.ca.material.certPem });
    expect(fleet.status).toBe(401);
    await page.goto(`${c.apiUrl}/dashboard`);
    await page.getByLabel('Admin API key').fill('gga_wrong');
    await page.getByRole('button', { name: 'Open' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/key/i);
    expect(await page.locator('.cards').count()).toBe(0);
  });

  it('shows the fleet at a glance, the worker and the failure, and a job finished meanwhile without a reload', async () => {
    await page.getByLabel('Admin API key').fill(c.adminKey);
    await page.getByRole('button', { name: 'Open' }).click();
    const card = (label: string) => page.locator('.card', { hasText: label }).locator('.n');
    await expect.poll(() => card('Workers online').textContent()).toBe('1');
    expect(await card('Succeeded').textContent()).toBe('1');
    expect(await card('Failed').textContent()).toBe('1');
    // Both charts drawn (uPlot's canvases).
    expect(await page.getByRole('region', { name: 'Throughput' }).locator('canvas').count()).toBe(1);
    expect(await page.getByRole('region', { name: 'Latency' }).locator('canvas').count()).toBe(1);
    const failures = page.getByRole('region', { name: 'Failures' });
    expect(await failures.textContent()).toContain('GG_ERR_INPUT_INVALID');
    // The name is text: no element was made of it.
    const row = page.getByRole('region', { name: 'Workers', exact: true }).locator('tbody tr').first();
    expect(await row.locator('td').first().textContent()).toBe(NAME);
    expect(await page.locator('img').count()).toBe(0);
    await row.click();
    const detail = page.getByRole('region', { name: 'Worker', exact: true });
    await expect.poll(() => detail.textContent()).toContain(w.identity.workerId);
    expect(await detail.textContent()).toContain('Connected overquic');
    await page.screenshot({ path: `${ARTIFACTS}desktop.png`, fullPage: true });

    await c.finished((await submit({ model: { sha256: mlpSha }, input: input([4, 3, 2, 1]) })).id);
    await expect.poll(() => card('Succeeded').textContent(), { timeout: 10_000 }).toBe('2');
    expect(errors).toEqual([]);
  });

  it('fits a 400 px wide window', async () => {
    await page.setViewportSize({ width: 400, height: 900 });
    await expect.poll(() => page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(400);
    await page.screenshot({ path: `${ARTIFACTS}narrow.png`, fullPage: true });
  });

  it('streams the summary as server-sent events, whatever the query; only to an admin key', async () => {
    const hostileQueries = fc.sample(fc.tuple(fc.constantFrom('offset', 'limit', 'state', 'x'), fc.oneof(hostileString, hostileNumber.map(String))), { numRuns: 12, seed: 17 });
    for (const query of ['', '?x=%00', '?offset=-1&limit=99999', ...hostileQueries.map(([k, v]) => `?${k}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, '\ufffd'))}`)]) {
      const first = await firstEvent(`/v1/fleet/events${query}`, c.adminKey);
      expect(first.type).toBe('text/event-stream');
      const summary = FleetSummary.parse(first.data);
      expect(summary.workers.online).toBe(1);
      // The minute the jobs ran in: counted, with the median run time of those that succeeded.
      const minute = summary.throughput.at(-1)!;
      expect(minute.succeeded + minute.failed).toBeGreaterThanOrEqual(1);
      expect(minute.runMsP50).toBeGreaterThan(0);
    }
    expect((await rawRequest({ url: `${c.apiUrl}/v1/fleet/events`, ca: c.ca.material.certPem })).status).toBe(401);
    const page2 = await rawRequest({ url: `${c.apiUrl}/v1/fleet/workers?offset=1&limit=1`, ca: c.ca.material.certPem, headers: { authorization: `Bearer ${c.adminKey}` } });
    expect(JSON.parse(page2.body.toString())).toMatchObject({ total: 1, offset: 1, workers: [] });
  });
});

/** The first event of a server-sent event stream, read over HTTPS with the coordinator's CA; the stream is then closed. */
function firstEvent(path: string, key: string): Promise<{ type: string | undefined; data: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpsGet({ host: '127.0.0.1', port: c.port, path, servername: COORDINATOR_SERVER_NAME, ca: c.ca.material.certPem, headers: { authorization: `Bearer ${key}` } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const end = text.indexOf('\n\n');
        if (end < 0) return;
        req.destroy();
        resolve({ type: res.headers['content-type'], data: JSON.parse(text.slice('data: '.length, end)) });
      });
    });
    req.on('error', reject);
  });
}
