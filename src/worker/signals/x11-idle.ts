/**
 * Seconds since the last keyboard or pointer input on an X11 desktop, from
 * `xprintidle` (the XScreenSaver extension). Nothing else reads it headless
 * without native code; where it cannot work the reader is absent and idle
 * time stays unknown. Each call spawns it: about 1.7 ms of CPU here.
 *
 *   const idle = x11IdleReader(process.env);   // null: no X display, Wayland, or no xprintidle
 *   const seconds = await idle?.(signal);      // null when this reading failed
 */
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export type IdleReader = (signal: AbortSignal) => Promise<number | null>;

export function x11IdleReader(env: NodeJS.ProcessEnv): IdleReader | null {
  if (process.platform !== 'linux' || !env.DISPLAY) return null;
  // Under Wayland, DISPLAY names XWayland, which only sees input sent to X
  // clients: its idle time keeps growing while the owner types elsewhere.
  if (env.WAYLAND_DISPLAY) return null;
  const bin = findOnPath('xprintidle', env.PATH ?? '');
  if (bin === null) return null;
  return (signal) =>
    new Promise((resolve) => {
      execFile(bin, [], { env, timeout: 1000, signal }, (error, stdout) => {
        const ms = Number(stdout.trim());
        resolve(error || stdout.trim() === '' || !Number.isFinite(ms) || ms < 0 ? null : ms / 1000);
      });
    });
}

function findOnPath(name: string, path: string): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return null;
}
