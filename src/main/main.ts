/**
 * The desktop app's main process, and only glue: the worker host runs in
 * this process (the QUIC connection to the coordinator lives here), and
 * this file wires it to the tray, the status window, IPC, powerMonitor and
 * the login item. Every decision sits in a plain module beside it
 * (tray-model, ipc, autostart, login-item, power).
 *
 *   electron .            # the app, as the installers start it
 *   electron . --local    # local test mode: an embedded coordinator too (`npm start`)
 *
 * Only type-checked on the machines this was written on: the Electron
 * runtime could not be downloaded there.
 */
import { app, dialog, ipcMain, powerMonitor, powerSaveBlocker, shell } from 'electron';
import { homedir, tmpdir } from 'node:os';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { openLogFile, type LogFile } from '../common/log-file.js';
import type { WorkerView } from '../protocol/control.js';
import { withGpu } from '../protocol/policy.js';
import { loadHostSettings } from '../worker/host-settings.js';
import { createWorkerHost, type WorkerHost } from '../worker/host.js';
import { defaultDataDir } from '../worker/paths.js';
import { headlessSignals, pushedSignals } from '../worker/signals/index.js';
import { registerIpc } from './ipc.js';
import type { LocalCoordinator } from './local-coordinator.js';
import { loginItem, loginItemAtLaunch, startedOnlyToQuit, type LoginItem } from './login-item.js';
import { APP_ICON, PRELOAD, RENDERER_PAGE, RENDERER_URL, TRAY_ICONS } from './paths.js';
import { holdOffAppNap, powerPoll, watchPower } from './power.js';
import { appTray, type AppTray } from './tray.js';
import { startUpdater, updateFeed } from './updater.js';
import type { TrayCommand } from './tray-model.js';
import { statusWindow, type StatusWindow } from './window.js';

/** How long Quit lets a running job finish before handing it back. */
const QUIT_GRACE_MS = 30_000;
const LOCAL = process.argv.includes('--local');

const LOG_LEVEL = (process.env.GOGRID_LOG_LEVEL ?? 'info') as pino.Level;
/** To stdout until the data dir is known; from then on to its logs/ folder as well (see start). */
let logger: Logger = pino({ level: LOG_LEVEL });

if (!app.requestSingleInstanceLock()) {
  // Another instance runs: it gets our 'second-instance' and shows its window.
  app.quit();
} else {
  void app
    .whenReady()
    .then(start)
    .catch((e: unknown) => {
      logger.fatal({ err: e }, 'the app could not start');
      // A tray app that vanishes says nothing; this says why (e.g. a settings.json it cannot read).
      dialog.showErrorBox('GoGrid Worker could not start', e instanceof Error ? e.message : String(e));
      app.exit(1);
    });
}

async function start(): Promise<void> {
  // The owner's start-at-login choice, read once (local test mode registers nothing at login).
  const savedLogin = LOCAL ? undefined : (await loadHostSettings(defaultDataDir())).startAtLogin;
  // Started at login by a machine-wide entry (per-machine MSI, MDM) for a user who switched it off.
  if (startedOnlyToQuit(process.argv, savedLogin)) return app.quit();
  // A tray utility: no Dock icon on macOS (app.dock exists only there). Packaged builds
  // say so in Info.plist too (LSUIElement), before any code runs, so nothing bounces at login.
  app.dock?.hide();
  const window = statusWindow({ page: RENDERER_PAGE, preload: PRELOAD, icon: APP_ICON });
  // Before anything can open the window: its page asks for the state as it loads.
  let hostMade!: (host: WorkerHost) => void;
  const hostPromise = new Promise<WorkerHost>((resolve) => (hostMade = resolve));
  const unregisterIpc = registerIpc(ipcMain, { target: hostPromise, pageUrl: RENDERER_URL, logger: () => logger });
  app.on('second-instance', () => window.show());
  // Closing the window hides it; the app lives on in the tray until Quit.
  app.on('window-all-closed', () => undefined);

  let host: WorkerHost | null = null;
  let logFile: LogFile | null = null;
  const command = async (c: TrayCommand) => {
    try {
      if (c === 'open') return window.show();
      if (c === 'logs') {
        if (logFile) await shell.openPath(logFile.dir);
        return;
      }
      if (c === 'quit') return app.quit();
      if (!host) return;
      const { settings } = host.view();
      if (c === 'start-at-login') await host.updateSettings({ startAtLogin: !(settings.startAtLogin ?? false) });
      else if (c === 'use-gpu') await host.updateSettings({ policy: withGpu(settings.policy, settings.policy.useGpu === false) });
      else await host.act(c === 'snooze' ? { action: 'snooze', minutes: 60 } : { action: c });
    } catch (e) {
      logger.error({ err: e, command: c }, 'tray command failed');
    }
  };
  const tray = appTray({ icons: TRAY_ICONS, platform: process.platform, onCommand: (c) => void command(c) });

  const local = LOCAL ? await startLocal() : null;
  const dataDir = local ? local.workerDir : defaultDataDir();
  // Started at login, the app's stdout goes nowhere: its log is a file a person can open from the tray.
  logFile = await openLogFile(join(dataDir, 'logs', 'worker'));
  logger = pino({ level: LOG_LEVEL }, pino.multistream([{ level: LOG_LEVEL, stream: process.stdout }, { level: LOG_LEVEL, stream: logFile.stream }]));
  const login = local ? null : loginItem(app, process.platform, { env: process.env, home: homedir(), execPath: process.execPath, argv: process.argv, saved: savedLogin });
  const persistLogin = login ? await applyLoginItem(login, savedLogin) : false;

  const signals = pushedSignals({
    base: headlessSignals({ ownPids: () => [process.pid, ...(host?.worker?.jobPids() ?? [])] }),
    poll: powerPoll(powerMonitor),
  });
  const stopPower = watchPower(powerMonitor, signals);
  host = await createWorkerHost({
    dataDir,
    appVersion: app.getVersion(),
    logger,
    defaultPreset: local ? 'dedicated' : 'desktop',
    signals,
    startAtLogin: login,
    coordinator: local?.coordinator.address,
    token: local?.coordinator.token,
  });
  const h = host;
  hostMade(h);
  if (persistLogin) await h.updateSettings({ startAtLogin: true });
  let shownForm = false;
  let appNapBlocker: number | null = null;
  h.on('view', (view) => {
    tray.update(view);
    if (holdOffAppNap(view, process.platform) !== (appNapBlocker !== null)) {
      if (appNapBlocker === null) appNapBlocker = powerSaveBlocker.start('prevent-app-suspension');
      else {
        powerSaveBlocker.stop(appNapBlocker);
        appNapBlocker = null;
      }
    }
    // No identity yet (and no provisioning file): the window's form is the way in.
    if (view.connection.state === 'not-enrolled' && !shownForm) {
      shownForm = true;
      window.show();
    }
  });
  tray.update(h.view());

  // Local test mode's coordinator serves no updates.
  const updater = local
    ? null
    : startUpdater({
        feed: () => {
          const identity = h.worker?.agent.currentIdentity;
          return identity ? updateFeed(identity) : null;
        },
        jobs: () => ({ runningJobs: h.worker?.runner.busy ?? 0, draining: h.draining }),
        drain: (reason) => h.drain(reason),
        undrain: (reason) => h.undrain(reason),
        beforeInstall: () => window.destroy(),
        logger: logger.child({ component: 'updater' }),
      });

  // The first check needs the worker's certificate, which exists once it is online (at
  // first login it enrolls first; startUpdater's own check at once finds none); then daily.
  if (updater) {
    const checkOnceOnline = (view: WorkerView) => {
      if (view.connection.state !== 'online') return;
      h.off('view', checkOnceOnline);
      void updater.checkNow();
    };
    h.on('view', checkOnceOnline);
  }

  drainOnQuit({ host: h, tray, window }, async () => {
    updater?.stop();
    unregisterIpc();
    stopPower();
    signals.close();
    await local?.coordinator.stop();
  });
  // Ctrl+C in the terminal that ran `npm start` quits the same way as the tray's Quit.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => app.quit());
  // Last: the first start may wait for the network (enrollment at first login), and
  // meanwhile the tray says so, the window answers and Quit works.
  await h.open();
}

/**
 * Quit drains: the first quit is held back while the host stops taking
 * jobs, lets a running one finish within the grace period or hands it back,
 * and closes the connection; then the app really quits.
 */
function drainOnQuit(parts: { host: WorkerHost; tray: AppTray; window: StatusWindow }, cleanup: () => Promise<void>): void {
  let drained = false;
  let draining = false;
  app.on('before-quit', (event) => {
    if (drained) return;
    event.preventDefault();
    if (draining) return;
    draining = true;
    void (async () => {
      try {
        await parts.host.quit({ graceMs: QUIT_GRACE_MS });
        await cleanup();
      } catch (e) {
        logger.error({ err: e }, 'quitting did not drain cleanly');
      }
      drained = true;
      parts.window.destroy();
      parts.tray.destroy();
      app.quit();
    })();
  });
}

/** Applies the saved start-at-login choice; true when the first-run default still has to be saved. */
async function applyLoginItem(login: LoginItem, saved: boolean | undefined): Promise<boolean> {
  const plan = loginItemAtLaunch(saved, app.isPackaged);
  try {
    if (plan.apply !== null) await login.set(plan.apply);
  } catch (e) {
    logger.warn({ err: e }, 'could not apply start at login');
  }
  return plan.persist;
}

async function startLocal(): Promise<{ coordinator: LocalCoordinator; workerDir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'gogrid-app-'));
  // Imported here, not at the top: the coordinator (fastify, PGlite, pg) is tens of MB of modules that an app started at login never needs.
  const { startLocalCoordinator } = await import('./local-coordinator.js');
  const coordinator = await startLocalCoordinator(join(dir, 'coordinator'), logger.child({ side: 'coordinator' }));
  process.stdout.write(
    [
      'GoGrid local test mode: a coordinator in this app, and its own worker.',
      `  coordinator:  ${coordinator.address} (QUIC/UDP), ${coordinator.apiUrl} (HTTPS API)`,
      `  admin key:    ${coordinator.adminKeyFile}`,
      `  submit a job: npx gogrid submit --data ${JSON.stringify(join(dir, 'coordinator'))} --model samples/mlp.onnx --input samples/mlp-input.json --wait`,
      '',
    ].join('\n'),
  );
  return { coordinator, workerDir: join(dir, 'worker') };
}

