/**
 * GET /metrics on a real coordinator with a real worker: what a job that ran
 * and requests that were refused leave in the counts, who may read them, and
 * that Prometheus's own checker takes the text and the shipped alerting rules
 * (`promtool`, Debian's `prometheus` package; skipped with a reason where it
 * is missing, except under CI).
 */
import { execFile, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreatedApiKey } from '../../src/protocol/index.js';
import { writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { rawRequest } from '../helpers/https-raw.js';

let c: TestCoordinator;
let w: Awaited<ReturnType<typeof startTestWorker>>;
let mlpSha: string;

beforeAll(async () => {
  c = await startTestCoordinator();
  mlpSha = await c.addModel(writeOnnxFixtures(await tempDir()).mlp);
  w = await startTestWorker(c, { token: await c.createToken() });
});
afterAll(async () => {
  await w?.agent.stop();
  await c?.stop();
  await removeTempDirs();
});

const scrape = async (key = c.adminKey) => rawRequest({ url: `${c.apiUrl}/metrics`, ca: c.ca.material.certPem, headers: { authorization: `Bearer ${key}` } });

/** The value of one sample line, e.g. `gogrid_jobs{state="queued"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('GET /metrics', () => {
  it('counts a job that ran, its queue wait and run time, the workers and the queue', async () => {
    const before = (await scrape()).body.toString();
    const job = await c.api<{ id: string }>('POST', '/v1/jobs', { model: { sha256: mlpSha }, input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } } });
    expect((await c.finished(job.id)).state).toBe('succeeded');
    const res = await scrape();
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.body.toString();
    const grew = (series: string) => (sample(text, series) ?? 0) - (sample(before, series) ?? 0);
    expect(grew('gogrid_jobs_finished_total{state="succeeded",kind="onnx"}')).toBe(1);
    expect(grew('gogrid_job_run_seconds_count{kind="onnx"}')).toBe(1);
    expect(grew('gogrid_job_queue_wait_seconds_count{kind="onnx"}')).toBe(1);
    expect(sample(text, 'gogrid_workers_online')).toBe(1);
    expect(sample(text, 'gogrid_connections')).toBe(1);
    expect(sample(text, 'gogrid_workers{state="online"}')).toBe(1);
    expect(sample(text, 'gogrid_jobs{state="queued"}')).toBe(0);
    expect(sample(text, 'gogrid_coordinator_nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
  });

  it('counts requests refused for wrong secrets', async () => {
    for (let i = 0; i < 21; i++) await scrape(`ggk_wrong_${i}`);
    // The address is throttled now, the admin key too: the next scrape waits for the budget.
    const text = await until429Ends();
    expect(sample(text, 'gogrid_refusals_total{reason="wrong_secrets"}')).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('answers an admin or a metrics key, and a metrics key nothing else', async () => {
    expect((await rawRequest({ url: `${c.apiUrl}/metrics`, ca: c.ca.material.certPem })).status).toBe(401);
    const inference = CreatedApiKey.parse(await c.api('POST', '/v1/keys', { scope: 'inference', name: 'chat' }));
    expect((await scrape(inference.key)).status).toBe(403);
    const prometheus = CreatedApiKey.parse(await c.api('POST', '/v1/keys', { scope: 'metrics', name: 'prometheus' }));
    expect((await scrape(prometheus.key)).status).toBe(200);
    for (const path of ['/v1/workers', '/v1/jobs', '/v1/keys', '/v1/models']) {
      const res = await rawRequest({ url: `${c.apiUrl}${path}`, ca: c.ca.material.certPem, headers: { authorization: `Bearer ${prometheus.key}` } });
      expect(res.status, path).toBe(403);
      expect(JSON.parse(res.body.toString()), path).toMatchObject({
        error: { code: 'GG_ERR_KEY_SCOPE', message: expect.stringMatching(/is a metrics key: it may call only GET \/metrics; GET \/v1\/\w+ needs an admin key$/) },
      });
    }
  });
});

/** The next scrape that is not refused (the wrong-secret budget refills one every 3 s). */
async function until429Ends(): Promise<string> {
  for (;;) {
    const res = await scrape();
    if (res.status === 200) return res.body.toString();
    expect(res.status).toBe(429);
    await new Promise((resolve) => setTimeout(resolve, Number(res.headers['retry-after']) * 1000));
  }
}

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
const inCi = Boolean(process.env['CI']);
if (!hasPromtool && !inCi) console.warn('promtool checks skipped: promtool is not installed (apt-get install prometheus); with CI set they fail instead');

describe('promtool', () => {
  it.runIf(hasPromtool || inCi)('takes the metrics text and the shipped alerting rules', async () => {
    const text = (await scrape()).body.toString();
    expect(await run('promtool', ['check', 'metrics'], text)).toEqual({ code: 0, out: '' });
    const rules = join(import.meta.dirname, '../../deploy/prometheus/gogrid-alerts.yml');
    const checked = await run('promtool', ['check', 'rules', rules]);
    expect(checked.code, checked.out).toBe(0);
    expect(checked.out).toMatch(/SUCCESS: \d+ rules found/);
  });
});

function run(file: string, args: string[], stdin?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = execFile(file, args, (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, out: `${stdout}${stderr}`.trim() }));
    if (stdin !== undefined) child.stdin!.end(stdin);
  });
}
