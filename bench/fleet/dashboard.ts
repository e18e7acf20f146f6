/**
 * What the operator's views cost at fleet size: the dashboard's summary (what
 * every server-sent event carries), one page of its worker list, and a
 * Prometheus scrape of /metrics, each read a few times from the coordinator
 * under test with its admin key: wall time, bytes, and the coordinator's CPU.
 *
 *   const cost = await operatorViews(c, dataDir);   // { fleet: { ms, bytes, cpuUs }, … }
 */
import { readFile } from 'node:fs/promises';
import { get } from 'node:https';
import { adminKeyPath, caCertPath } from '../../src/coordinator/local-files.js';
import { COORDINATOR_SERVER_NAME } from '../../src/protocol/index.js';
import { median } from '../lib/stats.js';
import type { FleetCoordinator } from './coordinator.js';

export interface ViewCost {
  /** Median over the reads. */
  ms: number;
  bytes: number;
  /** The coordinator's CPU per read (all threads), median. */
  cpuUs: number;
}

const VIEWS = { fleet: '/v1/fleet', workersPage: '/v1/fleet/workers?limit=50', metrics: '/metrics' } as const;
const READS = 5;

export async function operatorViews(c: FleetCoordinator, dataDir: string): Promise<Record<keyof typeof VIEWS, ViewCost>> {
  const [key, ca] = await Promise.all([readFile(adminKeyPath(dataDir), 'utf8'), readFile(caCertPath(dataDir), 'utf8')]);
  const read = (path: string) =>
    new Promise<number>((resolve, reject) => {
      get({ host: '127.0.0.1', port: c.port, path, servername: COORDINATOR_SERVER_NAME, ca, headers: { authorization: `Bearer ${key.trim()}` } }, (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`${path}: HTTP ${res.statusCode}`))));
      }).on('error', reject);
    });
  const out = {} as Record<keyof typeof VIEWS, ViewCost>;
  for (const [name, path] of Object.entries(VIEWS) as [keyof typeof VIEWS, string][]) {
    const samples: { ms: number; bytes: number; cpuUs: number }[] = [];
    for (let i = 0; i < READS; i++) {
      const cpu0 = (await c.stats()).cpuUs;
      const t0 = performance.now();
      const bytes = await read(path);
      const ms = performance.now() - t0;
      samples.push({ ms, bytes, cpuUs: (await c.stats()).cpuUs - cpu0 });
    }
    out[name] = { ms: median(samples.map((s) => s.ms)), bytes: median(samples.map((s) => s.bytes)), cpuUs: median(samples.map((s) => s.cpuUs)) };
  }
  return out;
}

/**
 * The dashboard's first paint in Chromium (playwright-core, Debian's
 * chromium), the admin key already in the tab: from navigation to the
 * workers' count on screen, and the bytes the page and its first data took.
 */
export async function firstPaint(c: FleetCoordinator, dataDir: string): Promise<{ ms: number; pageBytes: number }> {
  const { chromium } = await import('playwright-core');
  const key = (await readFile(adminKeyPath(dataDir), 'utf8')).trim();
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'] });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    await context.addInitScript(`sessionStorage.setItem('gogrid.adminKey', ${JSON.stringify(key)})`);
    const page = await context.newPage();
    const bodies: Promise<number>[] = [];
    page.on('response', (res) => {
      // The event stream never ends; its first event is the summary measured above.
      if (!res.url().includes('/events')) bodies.push(res.body().then((b) => b.length, () => 0));
    });
    const t0 = performance.now();
    await page.goto(`https://127.0.0.1:${c.port}/dashboard/`);
    await page.locator('.card .n').first().waitFor();
    await page.locator('tbody tr').first().waitFor();
    const ms = performance.now() - t0;
    const pageBytes = (await Promise.all(bodies)).reduce((a, b) => a + b, 0);
    return { ms, pageBytes };
  } finally {
    await browser.close();
  }
}
