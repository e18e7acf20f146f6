/**
 * Start at login on Linux: an XDG autostart entry, a `.desktop` file in
 * `$XDG_CONFIG_HOME/autostart/` (default `~/.config/autostart/`) that the
 * desktop session launches at login. Its path and contents are pure
 * functions here; login-item.ts writes and removes it.
 *
 *   autostartPath(process.env, homedir());   // '/home/ada/.config/autostart/gogrid-worker.desktop'
 *   autostartEntry({ exec: ['/opt/GoGrid Worker/gogrid-worker'] });
 *
 * Specs: https://specifications.freedesktop.org/autostart-spec/latest/ and
 * the Desktop Entry spec's "The Exec key" for the quoting.
 */
import { isAbsolute, join } from 'node:path';
import { GridError } from '../protocol/errors.js';

export const AUTOSTART_FILE_NAME = 'gogrid-worker.desktop';

/** The spec ignores a relative XDG_CONFIG_HOME, and so do we. */
export function autostartPath(env: NodeJS.ProcessEnv, home: string): string {
  const configHome = env.XDG_CONFIG_HOME;
  const base = configHome && isAbsolute(configHome) ? configHome : join(home, '.config');
  return join(base, 'autostart', AUTOSTART_FILE_NAME);
}

/**
 * The system's autostart directories, most important first: `$XDG_CONFIG_DIRS`
 * (default `/etc/xdg`), each with `autostart/` (where the .deb puts its entry).
 */
export function systemAutostartPaths(env: NodeJS.ProcessEnv): string[] {
  const dirs = (env.XDG_CONFIG_DIRS ?? '').split(':').filter((d) => isAbsolute(d));
  return (dirs.length > 0 ? dirs : ['/etc/xdg']).map((d) => join(d, 'autostart', AUTOSTART_FILE_NAME));
}

/**
 * Whether the session starts the app, as the autostart spec resolves it: the
 * user's entry, where there is one, hides any system entry of the same name,
 * and an entry with `Hidden=true` (or GNOME's `X-GNOME-Autostart-enabled=false`)
 * is not started; without a user entry, a system entry is.
 */
export function autostartEnabled(userEntry: string | null, systemEntry: boolean): boolean {
  if (userEntry === null) return systemEntry;
  const keys = new Map(
    userEntry
      .split('\n')
      .map((l) => /^([A-Za-z0-9-]+)\s*=\s*(.*?)\s*$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
  return keys.get('Hidden') !== 'true' && keys.get('X-GNOME-Autostart-enabled') !== 'false';
}

export interface AutostartOptions {
  /** The program and its arguments, unquoted: the app's executable (or AppImage), plus the app's path when run unpackaged. */
  exec: readonly string[];
  /** @default 'GoGrid Worker' */
  name?: string;
  /**
   * An "off" entry: `Hidden=true`, which also hides the system's entry of
   * the same name (the .deb's, in /etc/xdg/autostart); deleting the user's
   * file would leave that one starting the app. @default false
   */
  hidden?: boolean;
}

/** The Exec key's reserved characters: an argument holding one must be quoted. */
const RESERVED = /[\s"'\\><~|&;$*?#()`]/;

function quoteArg(arg: string): string {
  // No escape can carry a control character through both quoting layers.
  if (arg === '' || [...arg].some((c) => c < ' ' || c === '\u007f')) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `cannot start ${JSON.stringify(arg)} at login: a desktop entry's Exec cannot hold ${arg === '' ? 'an empty argument' : 'control characters'}`);
  }
  // "%" starts a field code (%f, %u…); a literal one is doubled.
  const literal = arg.replace(/%/g, '%%');
  if (!RESERVED.test(literal)) return literal;
  // Inside double quotes, ", `, $ and \ take a backslash.
  return `"${literal.replace(/["`$\\]/g, (c) => `\\${c}`)}"`;
}

/** A desktop entry's string values escape backslashes once more (`\\`), on top of Exec's own quoting. */
function escapeValue(value: string): string {
  return value.replace(/\\/g, '\\\\');
}

export function autostartEntry(opts: AutostartOptions): string {
  if (opts.exec.length === 0) throw new GridError('GG_ERR_CONFIG_INVALID', 'an autostart entry needs a program to start');
  const name = opts.name ?? 'GoGrid Worker';
  return [
    '[Desktop Entry]',
    'Type=Application',
    'Version=1.4',
    `Name=${escapeValue(name)}`,
    'Comment=Runs GoGrid jobs while this computer is idle',
    `Exec=${escapeValue(opts.exec.map(quoteArg).join(' '))}`,
    // An entry left in a home folder after the app is uninstalled (no package may touch home
    // folders) then starts nothing: the autostart spec skips an entry whose TryExec is not there.
    `TryExec=${escapeValue(opts.exec[0]!)}`,
    'Terminal=false',
    ...(opts.hidden ? ['Hidden=true', 'X-GNOME-Autostart-enabled=false'] : ['X-GNOME-Autostart-enabled=true']),
    '',
  ].join('\n');
}
