/**
 * Where the worker and the coordinator keep their state by default: the
 * per-user application data directory of each OS, overridable by an
 * environment variable (tests, portable installs, several workers on one box).
 *
 *   const dir = defaultDataDir(); // ~/.local/share/GoGrid Worker, or $GOGRID_DATA_DIR
 *
 * Both apps get separate directories: in local test mode they run side by
 * side and each has its own `ca.crt`.
 */
import path from 'node:path';
import envPaths from 'env-paths';

export const WORKER_APP_NAME = 'GoGrid Worker';
export const COORDINATOR_APP_NAME = 'GoGrid Coordinator';
export const WORKER_DATA_DIR_ENV = 'GOGRID_DATA_DIR';
export const COORDINATOR_DATA_DIR_ENV = 'GOGRID_COORDINATOR_DATA_DIR';

/**
 * Worker data dir: macOS `~/Library/Application Support/GoGrid Worker`,
 * Windows `%LOCALAPPDATA%\GoGrid Worker\Data`, Linux `$XDG_DATA_HOME/GoGrid Worker`.
 */
export function defaultDataDir(): string {
  return resolveDataDir(WORKER_DATA_DIR_ENV, WORKER_APP_NAME);
}

/** Coordinator data dir, as above with "GoGrid Coordinator"; override: `GOGRID_COORDINATOR_DATA_DIR`. */
export function coordinatorDefaultDataDir(): string {
  return resolveDataDir(COORDINATOR_DATA_DIR_ENV, COORDINATOR_APP_NAME);
}

function resolveDataDir(envVar: string, appName: string): string {
  const override = process.env[envVar];
  // An empty variable is "unset" (a shell's `VAR= cmd`), not the current directory.
  if (override !== undefined && override.trim() !== '') return path.resolve(override);
  // env-paths appends "-nodejs" to the name unless told not to.
  return envPaths(appName, { suffix: '' }).data;
}
