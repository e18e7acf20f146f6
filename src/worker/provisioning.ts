/**
 * Silent fleet enrollment: an installer or an MDM profile drops a
 * provisioning file, and the worker enrolls from it on its first start with
 * nobody at the keyboard. The token is removed from the file once used.
 *
 *   const found = await findProvisioning();        // null when no file exists
 *   if (found?.provisioning.token) {
 *     await enroll({ dataDir, coordinator: parseCoordinatorAddress(found.provisioning.coordinator), token: found.provisioning.token });
 *     await removeProvisioningToken(found);        // { removed: false, reason } when the file is read-only
 *   }
 *
 * The file is TOML with one `[worker]` table, because the MSI writes it with
 * Windows Installer's own IniFile table (no custom-action code) and an INI
 * section with quoted values is valid TOML:
 *
 *   [worker]
 *   coordinator = "grid.example.com:8443"
 *   token = "gg1.…"          # from `gogrid token create`; removed after use
 *   name = "lab-pc-12"        # optional display name (default: the host name)
 *   preset = "dedicated"      # optional policy preset: desktop | dedicated
 *
 * Where it is looked for, first match wins (a per-user file overrides the
 * machine-wide one an administrator or MDM placed):
 *   Linux    $XDG_CONFIG_HOME/gogrid/provisioning.toml, then /etc/gogrid/provisioning.toml
 *   macOS    ~/Library/Application Support/GoGrid/provisioning.toml, then /Library/Application Support/GoGrid/provisioning.toml
 *   Windows  %APPDATA%\GoGrid\provisioning.toml, then %ProgramData%\GoGrid\provisioning.toml
 * `GOGRID_PROVISIONING_FILE` replaces the whole list with one file (tests, odd layouts).
 */
import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { GridError, parseEnrollmentToken, zodProblems } from '../protocol/index.js';
import { isErrno, writeFileAtomic } from '../common/files.js';
import { parseCoordinatorAddress } from './address.js';

export const PROVISIONING_FILE_ENV = 'GOGRID_PROVISIONING_FILE';
export const PROVISIONING_FILE_NAME = 'provisioning.toml';

/** Checked with the same parsers the CLI flags go through, so a bad file fails here, naming its key. */
const Worker = z.strictObject({
  coordinator: z.string().superRefine((value, ctx) => check(ctx, () => parseCoordinatorAddress(value))),
  token: z
    .string()
    .superRefine((value, ctx) => check(ctx, () => parseEnrollmentToken(value)))
    .optional(),
  name: z.string().trim().min(1, 'must not be empty').max(256, 'must be at most 256 characters').optional(),
  // `custom` needs knobs a provisioning file does not carry; those are set in the app.
  preset: z.enum(['desktop', 'dedicated']).optional(),
});
const ProvisioningFileSchema = z.strictObject({ worker: Worker });

export type Provisioning = z.infer<typeof Worker>;

export interface FoundProvisioning {
  /** The file it came from; named in every message about it. */
  path: string;
  provisioning: Provisioning;
}

export type TokenRemoval = { removed: true } | { removed: false; reason: string };

/**
 * The candidate files for this OS, most specific first. Arguments default to
 * this process's; tests pass others to check every OS from one machine.
 */
export function provisioningPaths(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = os.homedir(),
): string[] {
  const override = env[PROVISIONING_FILE_ENV];
  // An empty variable is "unset" (a shell's `VAR= cmd`), as with GOGRID_DATA_DIR.
  if (override !== undefined && override.trim() !== '') return [path.resolve(override)];
  switch (platform) {
    case 'win32': {
      const win = path.win32;
      const appData = env.APPDATA || win.join(home, 'AppData', 'Roaming');
      const programData = env.ProgramData || env.PROGRAMDATA || 'C:\\ProgramData';
      return [win.join(appData, 'GoGrid', PROVISIONING_FILE_NAME), win.join(programData, 'GoGrid', PROVISIONING_FILE_NAME)];
    }
    case 'darwin':
      return [
        path.posix.join(home, 'Library', 'Application Support', 'GoGrid', PROVISIONING_FILE_NAME),
        path.posix.join('/Library', 'Application Support', 'GoGrid', PROVISIONING_FILE_NAME),
      ];
    default: {
      // The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
      const configHome = env.XDG_CONFIG_HOME && path.posix.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : path.posix.join(home, '.config');
      return [path.posix.join(configHome, 'gogrid', PROVISIONING_FILE_NAME), path.posix.join('/etc', 'gogrid', PROVISIONING_FILE_NAME)];
    }
  }
}

/**
 * The first provisioning file that exists, parsed; null when there is none.
 * A file that exists but cannot be read or is invalid is an error naming the
 * file (and the key): falling through to the next file would enroll a machine
 * somewhere its administrator did not intend.
 */
export async function findProvisioning(paths: readonly string[] = provisioningPaths()): Promise<FoundProvisioning | null> {
  for (const file of paths) {
    const text = await readIfExists(file);
    if (text !== null) return { path: file, provisioning: parseProvisioning(text, file) };
  }
  return null;
}

/** Parses a provisioning file's text; `file` names it in errors. Throws GridError GG_ERR_CONFIG_INVALID. */
export function parseProvisioning(text: string, file: string): Provisioning {
  let raw: Record<string, unknown>;
  try {
    // Notepad and some MDM tools write a UTF-8 byte order mark; TOML does not allow one.
    raw = parseToml(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    const reason = (e.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new GridError('GG_ERR_CONFIG_INVALID', `${file}:${e.line}:${e.column}: invalid TOML: ${reason}`, { cause: e });
  }
  const parsed = ProvisioningFileSchema.safeParse(raw);
  if (parsed.success) return parsed.data.worker;
  const problems = zodProblems(parsed.error).map((p) => `${file}: ${p.path || '(root)'}: ${p.message}`);
  throw new GridError('GG_ERR_CONFIG_INVALID', problems.join('\n'));
}

/**
 * Rewrites the file without its token, atomically and with its old mode, once
 * the token is spent (or no longer needed). A file this user may not replace
 * (a machine-wide file an administrator owns) is left as it is: the token's
 * use count and expiry then bound what a copy of it is worth.
 */
export async function removeProvisioningToken(found: FoundProvisioning): Promise<TokenRemoval> {
  const usedToken = found.provisioning.token;
  if (usedToken === undefined) return { removed: true };
  try {
    // Read again: an administrator may have dropped a new file with a new token since.
    const current = parseProvisioning(await readFile(found.path, 'utf8'), found.path);
    if (current.token !== usedToken) return { removed: true };
    const rest: Provisioning = { ...current };
    delete rest.token;
    const { mode } = await stat(found.path);
    const text = `# The enrollment token was removed after use on ${new Date().toISOString()}.\n${stringifyToml({ worker: rest })}\n`;
    await writeFileAtomic(found.path, text, mode & 0o777);
    return { removed: true };
  } catch (e) {
    return { removed: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

async function readIfExists(file: string): Promise<string | null> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return null;
    throw new GridError('GG_ERR_CONFIG_INVALID', `${file}: cannot read: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

function check(ctx: z.RefinementCtx, parse: () => unknown): void {
  try {
    parse();
  } catch (e) {
    if (!(e instanceof GridError)) throw e;
    ctx.addIssue({ code: 'custom', message: e.message });
  }
}
