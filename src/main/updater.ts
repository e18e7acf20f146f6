/**
 * Updates for the desktop app, from the coordinator it is enrolled with:
 * electron-updater's generic provider reads `https://<coordinator>/updates/<channel>/`
 * (served by coordinator/http-updates.ts), checked at start and daily. A
 * downloaded update is installed only when no job is held: the worker drains
 * first and never kills a job for an update (worker/update-policy.ts).
 *
 *   const updater = startUpdater({
 *     feed: () => (identity ? updateFeed(identity) : null),
 *     jobs: () => ({ runningJobs: runner.busy, draining: host.draining }),
 *     drain: (reason) => host.drainAndWait(reason),
 *     logger,
 *   });
 *   app.on('will-quit', () => updater.stop());
 *
 * No Electron import here: electron-updater loads Electron only when its
 * default `autoUpdater` is first used, so `useCoordinatorFeed` runs (and is
 * tested) in plain Node against a real coordinator.
 */
import { existsSync } from 'node:fs';
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import https from 'node:https';
import path from 'node:path';
import { configureRequestOptions, configureRequestUrl, HttpExecutor, type DownloadOptions } from 'builder-util-runtime';
import electronUpdater, { type AppUpdater } from 'electron-updater';
import type { Logger } from 'pino';
import { coordinatorTls, type WorkerTls } from '../transport/https-client.js';
import { mayApplyUpdate } from '../worker/update-policy.js';

/** The release channel folder on the coordinator (`<data dir>/updates/<channel>/`). @default 'stable' */
export const DEFAULT_UPDATE_CHANNEL = 'stable';
const DAY_MS = 24 * 60 * 60 * 1000;

export interface UpdateFeed {
  url: string;
  /** Read at every request, so a renewed worker certificate is used from the next one on. */
  tls: WorkerTls;
}

export interface UpdaterHost {
  /** The feed of the coordinator this worker is enrolled with; null while not enrolled. */
  feed(): UpdateFeed | null;
  /** Jobs held now (running, suspended or starting) and whether the worker takes no new ones. */
  jobs(): { runningJobs: number; draining: boolean };
  /** Stop taking new jobs (if not already) and resolve once no job is held. */
  drain(reason: string): Promise<void>;
  /** Take jobs again: the update did not install. */
  undrain(reason: string): void;
  /**
   * Called just before quitAndInstall: close the windows for good. Squirrel.Mac
   * closes them before `before-quit`, and a window whose close only hides it
   * cancels the quit, so the install would never happen.
   */
  beforeInstall(): void;
  logger: Logger;
}

export interface StartUpdaterOptions {
  /** @default electron-updater's `autoUpdater` (NSIS, Squirrel.Mac, AppImage or deb, picked by electron-updater) */
  updater?: AppUpdater;
  /** @default one day */
  intervalMs?: number;
  /** How long after quitAndInstall the app may still be running before the install counts as failed and jobs are taken again. @default 2 minutes */
  installTimeoutMs?: number;
}

export interface RunningUpdater {
  checkNow(): Promise<void>;
  stop(): void;
}

/** The feed URL and TLS material for an enrolled worker. */
export function updateFeed(
  identity: { coordinator: { host: string; port: number }; caPem: string; certPem: string; keyPem: string },
  channel = DEFAULT_UPDATE_CHANNEL,
): UpdateFeed {
  const { host, port } = identity.coordinator;
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  return { url: `https://${hostInUrl}:${port}/updates/${encodeURIComponent(channel)}`, tls: { caPem: identity.caPem, certPem: identity.certPem, keyPem: identity.keyPem } };
}

/**
 * Points an electron-updater instance at a coordinator's feed over Node
 * https with the worker's key pair. electron-updater's own client is
 * Chromium's `net`, which trusts only the OS certificate store and can
 * present only client certificates from it, so it could neither verify the
 * coordinator's private CA nor prove which worker asks. electron-updater has
 * no public option for the HTTP client; its `httpExecutor` field is read when
 * a provider is created (setFeedURL, below) and at every download, which is
 * what test/coordinator/http-updates.test.ts drives against a real coordinator.
 */
export function useCoordinatorFeed(updater: AppUpdater, url: string, tls: () => WorkerTls): void {
  (updater as unknown as { httpExecutor: HttpExecutor<ClientRequest> }).httpExecutor = new CoordinatorHttpExecutor(tls);
  // One range per request: the coordinator serves single ranges (differential downloads use them).
  updater.setFeedURL({ provider: 'generic', url, useMultipleRangeRequest: false });
}

/**
 * Why this install cannot update itself, or null when it can. An MSI
 * install has no updater in electron-updater (Windows self-update is NSIS
 * only); fleets update it by deploying the new .msi. A .deb is left to apt:
 * electron-updater's deb updater runs `pkexec dpkg -i` on the main process,
 * a password prompt out of nowhere and a frozen app, at update time and at
 * every quit. On Linux only an AppImage (APPIMAGE set by its runtime) updates itself.
 */
export function selfUpdateBlocker(
  platform: NodeJS.Platform = process.platform,
  exePath: string = process.execPath,
  productName = 'GoGrid Worker',
  env: NodeJS.ProcessEnv = process.env,
): string | null {
  if (platform === 'linux') return env['APPIMAGE'] ? null : 'installed from a .deb: updates come with apt (or however the .deb was deployed), not from the app';
  if (platform !== 'win32') return null;
  // The NSIS installer leaves its uninstaller beside the executable; the MSI does not.
  const uninstaller = path.win32.join(path.win32.dirname(exePath), `Uninstall ${productName}.exe`);
  return existsSync(uninstaller) ? null : 'installed from an .msi: deploy the new .msi to update (electron-updater updates NSIS installs only)';
}

export function startUpdater(host: UpdaterHost, opts: StartUpdaterOptions = {}): RunningUpdater {
  const blocked = selfUpdateBlocker();
  if (blocked !== null) {
    host.logger.info({ reason: blocked }, 'automatic updates are off');
    return { checkNow: async () => undefined, stop: () => undefined };
  }
  const updater = opts.updater ?? electronUpdater.autoUpdater;
  updater.logger = host.logger;
  updater.autoDownload = true;
  // A normal quit already drains (the desktop app's quit path), so installing then loses nothing.
  updater.autoInstallOnAppQuit = true;
  let feedUrl: string | null = null;
  let applying = false;

  const checkNow = async (): Promise<void> => {
    const feed = host.feed();
    if (!feed) return;
    if (feed.url !== feedUrl) {
      useCoordinatorFeed(updater, feed.url, () => host.feed()?.tls ?? feed.tls);
      feedUrl = feed.url;
    }
    try {
      await updater.checkForUpdates();
    } catch (err) {
      // Offline, an empty feed folder, a coordinator without the files: try again tomorrow.
      host.logger.warn({ err }, 'update check failed');
    }
  };

  const apply = async (version: string): Promise<void> => {
    if (applying) return;
    applying = true;
    try {
      let decision = mayApplyUpdate({ updateReady: true, ...host.jobs() });
      if (decision.action === 'drain' || decision.action === 'wait') {
        host.logger.info({ version }, decision.reason);
        await host.drain(decision.reason);
        decision = mayApplyUpdate({ updateReady: true, ...host.jobs() });
      }
      if (decision.action !== 'install') {
        host.logger.warn({ version, action: decision.action }, `not installing the update: ${decision.reason}`);
        return;
      }
      host.logger.info({ version }, 'installing the update and restarting');
      host.beforeInstall();
      installing = setTimeout(() => {
        // Still here: the installer did not take over (refused, or its process failed). A drained worker idle for ever helps nobody.
        installFailed(`the update to ${version} did not install within ${installTimeoutMs / 1000} s`);
      }, installTimeoutMs);
      installing.unref();
      updater.quitAndInstall(true, true);
    } catch (err) {
      host.logger.error({ err }, 'applying the update failed');
      installFailed(`the update to ${version} failed: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      applying = false;
    }
  };
  const installTimeoutMs = opts.installTimeoutMs ?? 2 * 60_000;
  let installing: NodeJS.Timeout | undefined;
  const installFailed = (why: string) => {
    clearTimeout(installing);
    installing = undefined;
    host.logger.warn(`${why}; taking jobs again`);
    if (host.jobs().draining) host.undrain(why);
  };

  updater.on('update-downloaded', (event) => void apply(event.version));
  updater.on('error', (err) => {
    // An error while an install is under way is that install failing.
    if (installing) installFailed(`the update failed: ${err instanceof Error ? err.message : String(err)}`);
  });
  void checkNow();
  const timer = setInterval(() => void checkNow(), opts.intervalMs ?? DAY_MS);
  return { checkNow, stop: () => clearInterval(timer) };
}

/** electron-updater's HTTP client on Node https, pinned to the coordinator CA, with the worker's certificate. */
class CoordinatorHttpExecutor extends HttpExecutor<ClientRequest> {
  constructor(private readonly tls: () => WorkerTls) {
    super();
  }

  override createRequest(options: RequestOptions, callback: (response: IncomingMessage) => void): ClientRequest {
    return https.request(
      {
        ...options,
        // URL hostnames keep IPv6 brackets; sockets want the bare address.
        ...(options.hostname ? { hostname: options.hostname.replace(/^\[|\]$/g, '') } : {}),
        ...coordinatorTls(this.tls()),
      },
      callback,
    );
  }

  /** The base class leaves `download` to each client; this is electron-updater's own, minus Chromium's redirect mode. */
  async download(url: URL, destination: string, options: DownloadOptions): Promise<string> {
    return options.cancellationToken.createPromise<string>((resolve, reject, onCancel) => {
      const requestOptions: RequestOptions = { headers: options.headers ?? undefined };
      configureRequestUrl(url, requestOptions);
      configureRequestOptions(requestOptions);
      this.doDownload(
        requestOptions,
        { destination, options, onCancel, callback: (error) => (error ? reject(error) : resolve(destination)), responseHandler: null },
        0,
      );
    });
  }
}
