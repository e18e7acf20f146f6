/**
 * The worker host against a real coordinator on loopback: enrollment from
 * the window's form, the owner's and the administrator's pauses as the
 * coordinator sees them, and a job stepping aside when its owner comes back
 * (suspended for real with SIGSTOP, then handed back and finished by another
 * worker). The signal source is scripted: idle input cannot exist on this VM.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JobInfo, MAX_SNOOZE_MS, WorkerInfo, type WorkerView } from '../../src/protocol/index.js';
import { createWorkerHost, openWorkerHost, type WorkerHost, type WorkerHostOptions } from '../../src/worker/host.js';
import { SETTINGS_FILE } from '../../src/worker/host-settings.js';
import { scriptedSignals } from '../helpers/scripted-signals.js';
import { SLOW, writeOnnxFixtures, type OnnxFixtures } from '../fixtures/make-onnx.js';
import pino from 'pino';
import { removeTempDirs, silent as quiet, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';

function untilView(host: WorkerHost, test: (v: WorkerView) => boolean, timeoutMs = 10_000): Promise<WorkerView> {
  if (test(host.view())) return Promise.resolve(host.view());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      host.off('view', on);
      reject(new Error(`view never matched; last: ${JSON.stringify(host.view())}`));
    }, timeoutMs);
    const on = (v: WorkerView) => {
      if (!test(v)) return;
      clearTimeout(timer);
      host.off('view', on);
      resolve(v);
    };
    host.on('view', on);
  });
}

/** Processes whose parent is this test process: the job processes of an in-process worker. */
async function childStates(): Promise<Map<number, string>> {
  const states = new Map<number, string>();
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // pid (comm) state ppid …; comm may hold spaces, so split after the last ')'.
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) === process.pid) states.set(Number(name), state!);
  }
  return states;
}

const silent = process.env.HOST_DEBUG ? pino({ level: 'debug' }, pino.destination(2)) : quiet;
const slowInput = { inputs: { x: { dtype: 'float32', dims: [1, 1], data: [1] } } };

let c: TestCoordinator;
let fixtures: OnnxFixtures;
const hosts: WorkerHost[] = [];

async function open(opts: Partial<WorkerHostOptions> & Pick<WorkerHostOptions, 'signals'>): Promise<WorkerHost> {
  const host = await openWorkerHost({
    dataDir: await tempDir('gogrid-host-'),
    appVersion: '0.0.0-test',
    logger: silent,
    defaultPreset: 'dedicated',
    startAtLogin: null,
    agent: { maxIdleTimeoutMs: 1500, backoff: { baseMs: 50, capMs: 300 } },
    jobs: { threads: 1 },
    policyIntervalMs: 100,
    ...opts,
  });
  hosts.push(host);
  return host;
}

async function workerInfo(id: string): Promise<WorkerInfo> {
  return WorkerInfo.parse(await c.api('GET', `/v1/workers/${id}`));
}

beforeAll(async () => {
  c = await startTestCoordinator();
  fixtures = writeOnnxFixtures(await tempDir());
});
// Each test's workers go with it, so no other worker can take a job a later test hands back.
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.quit({ graceMs: 0 })));
});
afterAll(async () => {
  await c.stop();
  await removeTempDirs();
});

describe('the worker host', () => {
  it('says it waits to enroll while the coordinator cannot be reached, and quits at once while it waits', async () => {
    // A real token for a coordinator that is gone: enrolling fails as at a first login before the network is up.
    const gone = await startTestCoordinator();
    const token = await gone.createToken();
    const address = `127.0.0.1:${gone.port}`;
    await gone.stop();
    const host = await createWorkerHost({
      dataDir: await tempDir('gogrid-host-'),
      appVersion: '0.0.0-test',
      logger: silent,
      defaultPreset: 'dedicated',
      startAtLogin: null,
      signals: scriptedSignals(),
      coordinator: address,
      token,
      agent: { backoff: { baseMs: 200, capMs: 1000 } },
    });
    const opened = host.open();
    const waiting = await untilView(host, (v) => v.connection.state === 'waiting');
    expect(waiting.connection.detail).toMatch(/^could not enroll yet: .+; trying again in \d+ s$/);
    // Without the abort, quit() would wait for an enrollment that never comes (and the test time out).
    await host.quit({ graceMs: 0 });
    await opened; // no error: the start was given up, not failed
    expect(host.state).toBe('stopped');
  });

  it('waits for enrollment, refuses a malformed token without saving anything, then enrolls from the form', async () => {
    const host = await open({ signals: scriptedSignals() });
    expect(host.view().connection.state).toBe('not-enrolled');
    expect(host.view().worker).toBeNull();

    await expect(host.enroll({ coordinator: `127.0.0.1:${c.port}`, token: 'not-a-token' })).rejects.toMatchObject({ code: 'GG_ERR_TOKEN_MALFORMED' });
    await expect(host.enroll({ coordinator: 'no port here:x', token: await c.createToken() })).rejects.toMatchObject({ code: 'GG_ERR_CONFIG_INVALID' });
    expect(host.view().connection.state).toBe('not-enrolled');

    await host.enroll({ coordinator: `127.0.0.1:${c.port}`, token: await c.createToken() });
    const online = await untilView(host, (v) => v.connection.state === 'online');
    expect(online.worker?.id).toMatch(/\S/);
    expect(online.connection.coordinator).toBe(`127.0.0.1:${c.port}`);
    expect(online.hardware?.summary).toMatch(/threads/);
    expect((await workerInfo(online.worker!.id)).state).toBe('online');
  });

  it('walks its lifecycle by the allowed transitions only: drained, then quit once however often asked', async () => {
    const host = await open({ signals: scriptedSignals() });
    expect(host.state).toBe('not-enrolled');
    await host.drain('Updating to 9.9.9');
    expect(host.state).toBe('draining');
    expect(host.draining).toBe(true);
    expect(host.view().policy.reason).toBe('Updating to 9.9.9');
    await expect(host.enroll({ coordinator: `127.0.0.1:${c.port}`, token: await c.createToken() })).rejects.toMatchObject({ code: 'GG_ERR_BAD_REQUEST' });

    const first = host.quit({ graceMs: 0 });
    expect(host.quit({ graceMs: 0 })).toBe(first);
    await first;
    expect(host.state).toBe('stopped');
    expect(host.view().policy.reason).toMatch(/^Quitting/);
  });

  it('takes jobs again when the update it drained for did not install', async () => {
    const host = await open({ signals: scriptedSignals(), token: await c.createToken(), coordinator: `127.0.0.1:${c.port}` });
    const { worker } = await untilView(host, (v) => v.connection.state === 'online');
    await host.drain('Updating to 9.9.9');
    await expect.poll(async () => (await workerInfo(worker!.id)).pausedReason, { timeout: 5000 }).toBe('Updating to 9.9.9');
    host.undrain('the update to 9.9.9 did not install within 120 s');
    expect([host.state, host.draining]).toEqual(['running', false]);
    expect(host.view().policy.reason).not.toMatch(/Updating/);
    await expect.poll(async () => (await workerInfo(worker!.id)).state, { timeout: 5000 }).toBe('online');
  });

  it("shows the owner's pause, snooze and resume to the coordinator", async () => {
    const host = await open({ signals: scriptedSignals(), token: await c.createToken(), coordinator: `127.0.0.1:${c.port}` });
    const { worker } = await untilView(host, (v) => v.connection.state === 'online');
    const id = worker!.id;

    await host.act({ action: 'pause' });
    await expect.poll(() => workerInfo(id), { timeout: 5000 }).toMatchObject({ state: 'paused', pausedReason: 'Paused by you' });

    const view = await host.act({ action: 'snooze', minutes: 60 });
    expect(view.policy).toMatchObject({ run: false, cause: 'snooze' });
    expect(view.policy.reason).toMatch(/^Snoozed until/);
    await expect.poll(async () => (await workerInfo(id)).pausedReason, { timeout: 5000 }).toMatch(/^Snoozed until/);

    await host.act({ action: 'resume' });
    await expect.poll(() => workerInfo(id), { timeout: 5000 }).toMatchObject({ state: 'online', pausedReason: null });
  });

  it("applies an administrator's pause the owner cannot lift, and says so", async () => {
    const host = await open({ signals: scriptedSignals(), token: await c.createToken(), coordinator: `127.0.0.1:${c.port}` });
    const { worker } = await untilView(host, (v) => v.connection.state === 'online');
    const id = worker!.id;

    await c.api('PUT', `/v1/workers/${id}/policy`, { paused: true, message: 'Maintenance until 18:00' });
    const paused = await untilView(host, (v) => v.policy.byAdmin);
    expect(paused.policy).toMatchObject({ run: false, reason: 'Paused by the administrator: Maintenance until 18:00' });
    await host.act({ action: 'resume' });
    expect(host.view().policy.run).toBe(false);
    await expect.poll(async () => (await workerInfo(id)).pausedReason, { timeout: 5000 }).toBe('Paused by the administrator: Maintenance until 18:00');

    await c.api('DELETE', `/v1/workers/${id}/policy`);
    await untilView(host, (v) => v.policy.run && !v.policy.byAdmin);
  });

  it("takes the preset of the provisioning file it enrolled from, until the owner changes it", async () => {
    const dir = await tempDir();
    const file = join(dir, 'provisioning.toml');
    await writeFile(file, `[worker]\ncoordinator = "127.0.0.1:${c.port}"\ntoken = "${await c.createToken()}"\npreset = "desktop"\n`);
    process.env['GOGRID_PROVISIONING_FILE'] = file;
    try {
      const host = await open({ signals: scriptedSignals() });
      expect(host.view().settings.policy).toEqual({ preset: 'desktop' });
      expect(await readFile(file, 'utf8')).not.toMatch(/^token *=/m);
      await host.updateSettings({ policy: { preset: 'dedicated' } });
      expect(host.view().settings.policy).toEqual({ preset: 'dedicated' });
    } finally {
      delete process.env['GOGRID_PROVISIONING_FILE'];
    }
  });

  it("applies an administrator's slot ceiling and the owner's own slot setting, and the coordinator schedules by them", async () => {
    const host = await open({ signals: scriptedSignals(), token: await c.createToken(), coordinator: `127.0.0.1:${c.port}`, jobs: { threads: 1, slots: 3 } });
    const { worker } = await untilView(host, (v) => v.connection.state === 'online');
    const slots = () => c.parts.sessions.views().find((w) => w.id === worker!.id)?.slots;
    expect(slots()).toBe(3);

    await c.api('PUT', `/v1/workers/${worker!.id}/policy`, { limits: { slots: 1 } });
    await expect.poll(slots, { timeout: 5000 }).toBe(1);
    await c.api('DELETE', `/v1/workers/${worker!.id}/policy`);
    await expect.poll(slots, { timeout: 5000 }).toBe(3);
    await host.updateSettings({ policy: { preset: 'dedicated', slots: 2 } });
    await expect.poll(slots, { timeout: 5000 }).toBe(2);
  });

  it('refuses a snooze in the past or past a week, and starts despite a saved setting it cannot use', async () => {
    const host = await open({ signals: scriptedSignals() });
    for (const untilMs of [2 ** 53 - 1, Date.now() - 1000, Date.now() + MAX_SNOOZE_MS + 60_000]) {
      await expect(host.act({ action: 'snooze', untilMs })).rejects.toMatchObject({ code: 'GG_ERR_BAD_REQUEST', message: expect.stringMatching(/^untilMs:/) });
    }
    expect(host.view().policy.control).toEqual({ state: 'active' });

    // A settings file an older version (or a person) wrote: one setting unusable, the others kept.
    const dataDir = await tempDir('gogrid-host-');
    await writeFile(join(dataDir, SETTINGS_FILE), JSON.stringify({ control: { state: 'snoozed', untilMs: 2 ** 60 }, startAtLogin: false }));
    const problems: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void problems.push((JSON.parse(line) as { msg: string }).msg) });
    const restarted = await open({ signals: scriptedSignals(), dataDir, logger });
    expect(restarted.view().policy.control).toEqual({ state: 'active' });
    expect(problems).toEqual([expect.stringMatching(/settings\.json: control\.untilMs: .*; using the default$/)]);
    await writeFile(join(dataDir, SETTINGS_FILE), '{ not json');
    expect((await open({ signals: scriptedSignals(), dataDir })).view().policy.control).toEqual({ state: 'active' });
  });

  it("keeps today's job counts across a restart, and starts from zero when the file is unreadable", { timeout: 60_000 }, async () => {
    const dataDir = await tempDir('gogrid-host-');
    const host = await open({ dataDir, signals: scriptedSignals(), token: await c.createToken(), coordinator: `127.0.0.1:${c.port}` });
    await untilView(host, (v) => v.connection.state === 'online');
    const sha256 = await c.addModel(fixtures.mlp);
    const job = JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256 }, input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } } }));
    expect((await c.finished(job.id)).state).toBe('succeeded');
    await untilView(host, (v) => v.jobs.completedToday === 1);
    await host.quit({ graceMs: 0 });

    const again = await open({ dataDir, signals: scriptedSignals() });
    expect(again.view().jobs.completedToday).toBe(1);
    await again.quit({ graceMs: 0 });

    await writeFile(join(dataDir, 'today.json'), '{ not json');
    expect((await open({ dataDir, signals: scriptedSignals() })).view().jobs.completedToday).toBe(0);
  });

  it('rejects bad settings and saves nothing', async () => {
    const host = await open({ signals: scriptedSignals(), token: await c.createToken(), coordinator: `127.0.0.1:${c.port}` });
    await expect(host.updateSettings({ coordinator: 'bad address:99999' })).rejects.toMatchObject({ code: 'GG_ERR_CONFIG_INVALID' });
    await expect(host.updateSettings({ startAtLogin: true })).rejects.toMatchObject({ code: 'GG_ERR_BAD_REQUEST' });
    expect(host.view().settings).toEqual({ policy: { preset: 'dedicated' }, startAtLogin: null });
    const changed = await host.updateSettings({ policy: { preset: 'custom', runOnBattery: true } });
    expect(changed.settings.policy).toEqual({ preset: 'custom', runOnBattery: true });
  });

  it(
    'suspends the running job the moment its owner comes back, hands it back after the grace period, and another worker finishes it',
    { timeout: 180_000 },
    async () => {
      const signals = scriptedSignals({ idleSeconds: 3600, onBattery: false, otherCpu: 0 });
      const host = await open({ signals, defaultPreset: 'desktop', suspendGraceMs: 2000, token: await c.createToken(), coordinator: `127.0.0.1:${c.port}` });
      const { worker } = await untilView(host, (v) => v.connection.state === 'online' && v.policy.run);
      const sha256 = await c.addModel(fixtures.slow);
      const job = JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256 }, input: slowInput, timeoutMs: 120_000 }));
      await untilView(host, (v) => v.jobs.running.length === 1, 60_000);
      await expect.poll(async () => [...(await childStates()).values()].filter((s) => s === 'R' || s === 'S').length, { timeout: 20_000 }).toBeGreaterThan(0);

      signals.set({ idleSeconds: 0 });
      const suspended = await untilView(host, (v) => v.jobs.running[0]?.suspended === true, 5000);
      expect(suspended.policy.reason).toBe('You are using this computer');
      // How fast is the benchmark's business (BENCHMARKS.md, polite worker); here: that it happens.
      await expect.poll(async () => [...(await childStates()).values()], { timeout: 10_000, interval: 20 }).toContain('T');
      await expect.poll(async () => (await workerInfo(worker!.id)).pausedReason, { timeout: 5000 }).toBe('You are using this computer');

      // Past the grace period: handed back, requeued at once, the attempt not counted.
      await untilView(host, (v) => v.jobs.running.length === 0, 10_000);
      await expect.poll(async () => JobInfo.parse(await c.api('GET', `/v1/jobs/${job.id}`)).state, { timeout: 15_000 }).toBe('queued');

      const b = await startTestWorker(c, { token: await c.createToken() });
      try {
        const done = await c.finished(job.id);
        expect(done).toMatchObject({ state: 'succeeded', attempt: 1, workerId: b.identity.workerId });
        expect(done.output).toMatchObject({ outputs: { y: { data: [SLOW.n * SLOW.n] } } });
        const history = done.events!.map((e) => [e.state, e.workerId === worker!.id ? 'host' : e.workerId === null ? null : 'b']);
        expect(history).toEqual([
          ['queued', null],
          ['leased', 'host'],
          ['running', 'host'],
          ['queued', 'host'],
          ['leased', 'b'],
          ['running', 'b'],
          ['succeeded', 'b'],
        ]);
        expect(done.events![3]!.detail).toBe('handed back: You are using this computer');
      } finally {
        await b.agent.stop();
      }
    },
  );
});
