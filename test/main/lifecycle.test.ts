/**
 * The desktop app's main process from first start to Quit, run for real from
 * the sources under the Electron stand-in (test/helpers/electron-stand-in/:
 * the runtime itself cannot be downloaded here). What it catches is the
 * class of #14's first-run failures: an exit at first login, a window whose
 * page finds no IPC, a lock that keeps the app from starting, a Quit that
 * does not end it.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IPC_CHANNELS } from '../../src/main/ipc.js';
import { MACHINE_LOGIN_FLAG } from '../../src/main/login-item.js';
import { RENDERER_URL } from '../../src/main/paths.js';
import { JobInfo } from '../../src/protocol/api.js';
import { WorkerView } from '../../src/protocol/control.js';
import { slowModel } from '../fixtures/make-onnx.js';
import { MAIN_SOURCE, startStandInApp, trayState, type StandInApp } from '../helpers/electron-app.js';
import { within } from '../helpers/within.js';
import { removeTempDirs, startTestCoordinator, tempDir, type TestCoordinator } from '../helpers/grid.js';

const QUIT = 'Quit GoGrid Worker';
const NOT_SET_UP = 'Not set up yet: open the status window to join a grid';
const apps: StandInApp[] = [];
function start(home: string, args: string[] = []): StandInApp {
  const app = startStandInApp({ entry: MAIN_SOURCE, args, home, packaged: true });
  apps.push(app);
  return app;
}
afterEach(() => {
  for (const app of apps.splice(0)) app.kill();
});
let c: TestCoordinator;
beforeAll(async () => {
  c = await startTestCoordinator();
});
afterAll(async () => {
  await c.stop();
  await removeTempDirs();
});

function nextOnline(): Promise<string> {
  return within(20_000, 'a worker online', new Promise((resolve) => c.parts.sessions.once('online', resolve)));
}
const dataDir = (home: string) => join(home, '.local', 'share', 'GoGrid Worker');
const status = async (app: StandInApp) => WorkerView.parse(await app.command({ type: 'invoke', channel: IPC_CHANNELS.status, url: RENDERER_URL }));

/** A UDP-less, closed TCP port on loopback: nothing answers there. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('the desktop app under the Electron stand-in', () => {
  it('answers the status page from the first moment: the tray opens the window before the worker exists, and its IPC is there when the page loads', async () => {
    const home = await tempDir();
    const app = start(home);
    // The first menu (the worker not made yet: "Starting…") is enough to click Open.
    await app.waitFor((e) => e.type === 'tray' && (trayState(e) ?? '') !== '', 'the first tray menu');
    await app.command({ type: 'tray-click', label: 'Open status window' });
    const load = await app.waitFor((e) => e.type === 'window-load', 'the status page loading');
    expect(load).toMatchObject({ found: true, handlers: expect.arrayContaining(Object.values(IPC_CHANNELS)) });
    // The page's first call waits for the worker instead of failing; a stranger's is refused.
    expect((await status(app)).settings).toBeDefined();
    await app.waitFor((e) => trayState(e) === NOT_SET_UP, 'the app waiting to be set up');
    expect(await app.command({ type: 'invoke', channel: IPC_CHANNELS.status, url: 'https://example.com/' })).toMatchObject({ error: { code: 'GG_ERR_UNAUTHENTICATED' } });
    expect(app.events.filter((e) => e.type === 'error-box')).toEqual([]);

    // Started again (from the menu; the only way back in where GNOME shows no tray icon): the
    // second launch quits at once and the first shows its window.
    await app.waitFor((e) => e.type === 'window-show', 'the window shown');
    const shown = app.events.filter((e) => e.type === 'window-show').length;
    const second = start(home);
    expect(await second.exited).toBe(0);
    expect(second.events.some((e) => e.type === 'tray')).toBe(false);
    await app.waitFor((e) => e.type === 'window-show' && app.events.filter((x) => x.type === 'window-show').length > shown, 'the window shown again');

    await app.command({ type: 'tray-click', label: QUIT });
    expect(await app.exited).toBe(0);
  });

  it('at first login without a network keeps running: a provisioned enrollment retries, says so in the tray, and Quit still ends it', async () => {
    const home = await tempDir();
    const provisioning = join(home, '.config', 'gogrid', 'provisioning.toml');
    await mkdir(join(home, '.config', 'gogrid'), { recursive: true });
    await writeFile(provisioning, `[worker]\ncoordinator = "127.0.0.1:${await closedPort()}"\ntoken = "${await c.createToken()}"\n`);
    const app = start(home);
    await app.waitFor((e) => /^Offline, retrying/.test(trayState(e) ?? ''), 'the tray saying it retries', 30_000);
    expect(app.events.filter((e) => e.type === 'error-box' || e.type === 'exit')).toEqual([]);
    // The token is kept for the next try (it is removed only once used).
    expect(await readFile(provisioning, 'utf8')).toMatch(/token = /);
    await app.command({ type: 'tray-click', label: QUIT });
    expect(await app.exited).toBe(0);
  });

  it('enrolls from a provisioning file at first login, goes online, and starts again although its lock now names a live process that is not GoGrid', async () => {
    const home = await tempDir();
    await mkdir(join(home, '.config', 'gogrid'), { recursive: true });
    await writeFile(join(home, '.config', 'gogrid', 'provisioning.toml'), `[worker]\ncoordinator = "127.0.0.1:${c.port}"\ntoken = "${await c.createToken()}"\n`);
    const online = nextOnline();
    const first = start(home);
    const id = await online;
    // The desktop preset on a machine that cannot tell whether someone is there: online, and paused saying why.
    await first.waitFor((e) => /^Paused: /.test(trayState(e) ?? ''), 'online and paused in the tray');
    expect((await readFile(join(dataDir(home), 'lock.pid'), 'utf8')).split('\n')[0]).toBe(String(first.child.pid));
    // Windows ends the app at logoff without before-quit: the lock stays, and by the next
    // login its pid runs another program (here `sleep`).
    first.kill();
    await first.exited;
    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      await writeFile(join(dataDir(home), 'lock.pid'), `${stranger.pid}\n${basename(process.execPath)}\n`);
      const again = nextOnline();
      const app = start(home);
      expect(await again).toBe(id);
      expect(app.events.filter((e) => e.type === 'error-box')).toEqual([]);
      expect((await readFile(join(dataDir(home), 'lock.pid'), 'utf8')).split('\n')[0]).toBe(String(app.child.pid));
      await app.command({ type: 'tray-click', label: QUIT });
      expect(await app.exited).toBe(0);
      // Quit released it.
      await expect(readFile(join(dataDir(home), 'lock.pid'), 'utf8')).rejects.toThrow(/ENOENT/);
    } finally {
      stranger.kill();
    }
  });

  it('on Quit during a job lets the job finish, reports it, and only then exits', async () => {
    const home = await tempDir();
    await mkdir(join(home, '.config', 'gogrid'), { recursive: true });
    await writeFile(join(home, '.config', 'gogrid', 'provisioning.toml'), `[worker]\ncoordinator = "127.0.0.1:${c.port}"\ntoken = "${await c.createToken()}"\npreset = "dedicated"\n`);
    const online = nextOnline();
    const app = start(home);
    await online;
    const model = join(home, 'slow.onnx');
    // A few seconds of matrix products: long enough to quit during, well inside the 30 s grace.
    await writeFile(model, slowModel(512, 160));
    const job = JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256: await c.addModel(model) }, input: { inputs: { x: { dtype: 'float32', dims: [1, 1], data: [1] } } } }));
    await app.waitFor((e) => /^Working on 1 job/.test(trayState(e) ?? ''), 'the job running', 30_000);
    const quitAt = Date.now();
    await app.command({ type: 'tray-click', label: QUIT });
    await app.waitFor((e) => trayState(e) === 'Quitting…', 'the tray saying it quits');
    expect(await app.exited).toBe(0);
    // Finished by this worker after Quit and before it left: not handed back, not failed.
    const done = await c.finished(job.id);
    expect(done).toMatchObject({ state: 'succeeded', attempt: 1 });
    expect(Date.parse(done.finishedAt!)).toBeGreaterThan(quitAt);
  }, 60_000);

  it("quits at once when a machine-wide login entry starts it for a user who switched Start at login off, and runs when they did not", async () => {
    const home = await tempDir();
    await mkdir(dataDir(home), { recursive: true });
    await writeFile(join(dataDir(home), 'settings.json'), JSON.stringify({ startAtLogin: false }));
    const off = start(home, [MACHINE_LOGIN_FLAG]);
    expect(await off.exited).toBe(0);
    expect(off.events.filter((e) => e.type === 'tray' || e.type === 'error-box')).toEqual([]);

    await writeFile(join(dataDir(home), 'settings.json'), JSON.stringify({ startAtLogin: true }));
    const on = start(home, [MACHINE_LOGIN_FLAG]);
    await on.waitFor((e) => trayState(e) === NOT_SET_UP, 'the app running');
    await on.command({ type: 'tray-click', label: QUIT });
    expect(await on.exited).toBe(0);
  });

  it('says why in a dialog and exits 1 when it truly cannot start (its data folder is a file)', async () => {
    const home = await tempDir();
    await mkdir(join(home, '.local', 'share'), { recursive: true });
    await writeFile(dataDir(home), 'not a folder');
    const app = start(home);
    const box = await app.waitFor((e) => e.type === 'error-box', 'an error dialog');
    expect(box).toMatchObject({ title: 'GoGrid Worker could not start', content: expect.stringMatching(/GoGrid Worker cannot be made: it, or a folder on its path, is a file \(move that file away, or set GOGRID_DATA_DIR/) });
    expect(await app.exited).toBe(1);
  });
});
