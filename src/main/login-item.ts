/**
 * Start at login, per platform, behind the `{ get, set }` the worker host
 * takes: the login item API on macOS and Windows, an XDG autostart file on
 * Linux. The owner's choice is kept by the host (settings.json); this only
 * applies it, and the first run (no choice yet) switches it on.
 *
 *   const item = loginItem(app, process.platform, { env: process.env, home: homedir() });
 *   const plan = loginItemAtLaunch((await loadHostSettings(dataDir)).startAtLogin, app.isPackaged);
 */
import type { App } from 'electron';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../common/files.js';
import { autostartEnabled, autostartEntry, autostartPath, systemAutostartPaths } from './autostart.js';

export interface LoginItem {
  /** Cheap: the view reads it every second. */
  get(): boolean;
  set(on: boolean): Promise<void>;
}

/**
 * What to do at launch: apply the saved choice again (the executable may have
 * moved with an update), or on the first run switch it on and save that. An
 * unpackaged app (`npm start`) is never registered by default: that would
 * start a development build at every login.
 */
export function loginItemAtLaunch(saved: boolean | undefined, packaged: boolean): { apply: boolean | null; persist: boolean } {
  if (saved !== undefined) return { apply: saved, persist: false };
  return packaged ? { apply: true, persist: true } : { apply: null, persist: false };
}

/**
 * Linux: the user's autostart file is the state, read as the session reads
 * it (autostartEnabled): on writes the entry, off writes one with
 * `Hidden=true`, so the .deb's system-wide entry of the same name stays
 * off too. Written atomically.
 */
export function xdgLoginItem(file: string, exec: readonly string[], systemFiles: readonly string[] = []): LoginItem {
  const userEntry = () => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      return null;
    }
  };
  let on = autostartEnabled(userEntry(), systemFiles.some((f) => existsSync(f)));
  return {
    get: () => on,
    async set(next) {
      await mkdir(dirname(file), { recursive: true });
      await writeFileAtomic(file, autostartEntry({ exec, hidden: !next }), 0o644);
      on = next;
    },
  };
}

/** macOS and Windows: the OS keeps the login item; `args` are what the app is started with (Windows). */
export function electronLoginItem(app: Pick<App, 'getLoginItemSettings' | 'setLoginItemSettings'>, args: readonly string[]): LoginItem {
  let on = app.getLoginItemSettings({ args: [...args] }).openAtLogin;
  return {
    get: () => on,
    async set(next) {
      app.setLoginItemSettings({ openAtLogin: next, args: [...args] });
      on = next;
    },
  };
}

/**
 * The app's executable and arguments as a login item starts them: an
 * AppImage is started through its own file (the mounted executable moves
 * every run); an unpackaged app needs its path after Electron's.
 */
export function launchCommand(env: NodeJS.ProcessEnv, execPath: string, packaged: boolean, appPath: string): string[] {
  if (env.APPIMAGE) return [env.APPIMAGE];
  return packaged ? [execPath] : [execPath, appPath];
}

export function loginItem(
  app: Pick<App, 'getLoginItemSettings' | 'setLoginItemSettings' | 'isPackaged' | 'getAppPath'>,
  platform: NodeJS.Platform,
  where: { env: NodeJS.ProcessEnv; home: string; execPath: string },
): LoginItem {
  const command = launchCommand(where.env, where.execPath, app.isPackaged, app.getAppPath());
  if (platform === 'linux') return xdgLoginItem(autostartPath(where.env, where.home), command, systemAutostartPaths(where.env));
  return electronLoginItem(app, command.slice(1));
}
