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
 * What a machine-wide login entry starts the app with: the per-machine MSI's
 * HKLM Run value (installers/windows/msi-project-created.mjs), or a
 * LaunchAgent an MDM places in /Library/LaunchAgents (README). Such an entry
 * starts the app for every user, and no user can remove it; a user who
 * switched Start at login off is honoured by the app quitting at once
 * (startedOnlyToQuit).
 */
export const MACHINE_LOGIN_FLAG = '--login-item=machine';

/** True when a machine-wide entry started the app for a user whose saved choice is off. */
export function startedOnlyToQuit(argv: readonly string[], saved: boolean | undefined): boolean {
  return argv.includes(MACHINE_LOGIN_FLAG) && saved === false;
}

/**
 * Whether a machine-wide entry starts this app at login: it was started by
 * one, or (Windows) it is installed per machine, under Program Files, where
 * only the per-machine MSI puts it (per-user installers use %LOCALAPPDATA%).
 */
export function hasMachineLoginEntry(platform: NodeJS.Platform, argv: readonly string[], execPath: string, env: NodeJS.ProcessEnv): boolean {
  if (argv.includes(MACHINE_LOGIN_FLAG)) return true;
  if (platform !== 'win32') return false;
  const under = (dir: string | undefined) => dir !== undefined && dir !== '' && execPath.toLowerCase().startsWith(`${dir.toLowerCase().replace(/\\+$/, '')}\\`);
  return under(env.ProgramFiles) || under(env.ProgramW6432);
}

/**
 * Where a machine-wide entry starts the app, the OS needs nothing per user:
 * the choice is the saved setting alone (the host keeps it), applied at the
 * next login by startedOnlyToQuit. A per-user entry as well would start the
 * app twice.
 */
export function machineLoginItem(saved: boolean | undefined): LoginItem {
  let on = saved ?? true;
  return {
    get: () => on,
    async set(next) {
      on = next;
    },
  };
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
  where: { env: NodeJS.ProcessEnv; home: string; execPath: string; argv: readonly string[]; saved: boolean | undefined },
): LoginItem {
  if (hasMachineLoginEntry(platform, where.argv, where.execPath, where.env)) return machineLoginItem(where.saved);
  const command = launchCommand(where.env, where.execPath, app.isPackaged, app.getAppPath());
  if (platform === 'linux') return xdgLoginItem(autostartPath(where.env, where.home), command, systemAutostartPaths(where.env));
  return electronLoginItem(app, command.slice(1));
}
