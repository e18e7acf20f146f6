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

export interface AutostartOptions {
  /** The program and its arguments, unquoted: the app's executable (or AppImage), plus the app's path when run unpackaged. */
  exec: readonly string[];
  /** @default 'GoGrid Worker' */
  name?: string;
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
    'Terminal=false',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}
