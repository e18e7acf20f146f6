/**
 * The provisioning file on its own: where each OS looks, what a good and a
 * bad file give, and rewriting it without the token.
 */
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GridError } from '../../src/protocol/index.js';
import { findProvisioning, parseProvisioning, provisioningPaths, removeProvisioningToken } from '../../src/worker/provisioning.js';
import { removeTempDirs, tempDir } from '../helpers/grid.js';

// Well-formed (the coordinator is never asked): gg1.<id>.<secret>.<CA fingerprint>.
const TOKEN = `gg1.abcd1234.${'S'.repeat(22)}.${'F'.repeat(43)}`;
const OTHER_TOKEN = `gg1.wxyz9876.${'T'.repeat(22)}.${'F'.repeat(43)}`;

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GridError);
    expect((e as GridError).code).toBe('GG_ERR_CONFIG_INVALID');
    return (e as GridError).message;
  }
  throw new Error('expected GG_ERR_CONFIG_INVALID');
}

afterAll(removeTempDirs);

describe('provisioningPaths', () => {
  const home = '/home/ada';
  it.each([
    ['linux', {}, ['/home/ada/.config/gogrid/provisioning.toml', '/etc/gogrid/provisioning.toml']],
    ['linux', { XDG_CONFIG_HOME: '/cfg' }, ['/cfg/gogrid/provisioning.toml', '/etc/gogrid/provisioning.toml']],
    // The XDG spec: a relative XDG_CONFIG_HOME is invalid and ignored.
    ['linux', { XDG_CONFIG_HOME: 'cfg' }, ['/home/ada/.config/gogrid/provisioning.toml', '/etc/gogrid/provisioning.toml']],
    ['darwin', {}, ['/home/ada/Library/Application Support/GoGrid/provisioning.toml', '/Library/Application Support/GoGrid/provisioning.toml']],
    [
      'win32',
      { APPDATA: 'C:\\Users\\ada\\AppData\\Roaming', ProgramData: 'D:\\ProgramData' },
      ['C:\\Users\\ada\\AppData\\Roaming\\GoGrid\\provisioning.toml', 'D:\\ProgramData\\GoGrid\\provisioning.toml'],
    ],
    ['linux', { GOGRID_PROVISIONING_FILE: '/tmp/p.toml' }, ['/tmp/p.toml']],
    ['win32', { GOGRID_PROVISIONING_FILE: '/tmp/p.toml' }, ['/tmp/p.toml']],
    // Empty is unset, as a shell's `VAR= cmd` means.
    ['linux', { GOGRID_PROVISIONING_FILE: ' ' }, ['/home/ada/.config/gogrid/provisioning.toml', '/etc/gogrid/provisioning.toml']],
  ] as const)('%s %o', (platform, env, expected) => {
    expect(provisioningPaths(env, platform, home)).toEqual(expected);
  });

  it('falls back to the profile and C:\\ProgramData on Windows without the variables', () => {
    expect(provisioningPaths({}, 'win32', 'C:\\Users\\ada')).toEqual([
      'C:\\Users\\ada\\AppData\\Roaming\\GoGrid\\provisioning.toml',
      'C:\\ProgramData\\GoGrid\\provisioning.toml',
    ]);
  });
});

describe('parseProvisioning', () => {
  const file = '/etc/gogrid/provisioning.toml';

  it('reads every key', () => {
    const text = `[worker]\ncoordinator = "grid.example.com:8443"\ntoken = "${TOKEN}"\nname = "lab-pc-12"\npreset = "dedicated"\n`;
    expect(parseProvisioning(text, file)).toEqual({ coordinator: 'grid.example.com:8443', token: TOKEN, name: 'lab-pc-12', preset: 'dedicated' });
  });

  it('reads what the MSI IniFile table writes: quoted values, CRLF, no spaces', () => {
    const text = `[worker]\r\ncoordinator="grid:9443"\r\ntoken="${TOKEN}"\r\n`;
    expect(parseProvisioning(text, file)).toEqual({ coordinator: 'grid:9443', token: TOKEN });
  });

  it('accepts a UTF-8 byte order mark', () => {
    expect(parseProvisioning(`\uFEFF[worker]\ncoordinator = "grid"\n`, file)).toEqual({ coordinator: 'grid' });
  });

  it.each([
    ['no [worker] table', 'coordinator = "grid"\n', /provisioning\.toml: coordinator: unknown key/],
    ['a missing coordinator', `[worker]\ntoken = "${TOKEN}"\n`, /provisioning\.toml: worker\.coordinator: /],
    ['an unknown key', '[worker]\ncoordinator = "grid"\ntokn = "x"\n', /provisioning\.toml: worker\.tokn: unknown key/],
    ['a bad address', '[worker]\ncoordinator = "https://grid:8443"\n', /worker\.coordinator: invalid coordinator address .*leave out the scheme/],
    ['a malformed token', '[worker]\ncoordinator = "grid"\ntoken = "gg1.nope"\n', /worker\.token: enrollment token is malformed/],
    ['a number for a string', '[worker]\ncoordinator = 8443\n', /worker\.coordinator: /],
    ['the custom preset', '[worker]\ncoordinator = "grid"\npreset = "custom"\n', /worker\.preset: /],
    ['an empty name', '[worker]\ncoordinator = "grid"\nname = " "\n', /worker\.name: must not be empty/],
    ['broken TOML', '[worker]\ncoordinator = "grid\n', /provisioning\.toml:2:\d+: invalid TOML/],
  ])('names the file and the key for %s', (_what, text, message) => {
    const error = configError(() => parseProvisioning(text, file));
    expect(error).toMatch(message);
    expect(error).toContain(file);
  });

  it('never repeats a token in an error', () => {
    const leaky = `gg1.abcd1234.${'S'.repeat(21)}.${'F'.repeat(43)}`;
    expect(configError(() => parseProvisioning(`[worker]\ncoordinator = "grid"\ntoken = "${leaky}"\n`, file))).not.toContain('SSSS');
  });
});

describe('findProvisioning', () => {
  it('takes the first file that exists, and null when none does', async () => {
    const dir = await tempDir();
    const user = join(dir, 'user.toml');
    const system = join(dir, 'system.toml');
    expect(await findProvisioning([user, system])).toBeNull();
    await writeFile(system, '[worker]\ncoordinator = "system"\n');
    expect(await findProvisioning([user, system])).toEqual({ path: system, provisioning: { coordinator: 'system' } });
    await writeFile(user, '[worker]\ncoordinator = "user"\n');
    expect((await findProvisioning([user, system]))?.provisioning.coordinator).toBe('user');
  });

  it('stops at a file it cannot read instead of falling through to the next', async () => {
    const dir = await tempDir();
    const unreadable = join(dir, 'provisioning.toml');
    await mkdir(unreadable);
    const system = join(dir, 'system.toml');
    await writeFile(system, '[worker]\ncoordinator = "system"\n');
    await expect(findProvisioning([unreadable, system])).rejects.toThrow(`${unreadable}: cannot read`);
  });
});

describe('removeProvisioningToken', () => {
  async function provisioned(text: string, mode: number) {
    const file = join(await tempDir(), 'provisioning.toml');
    await writeFile(file, text);
    await chmod(file, mode);
    const found = await findProvisioning([file]);
    if (!found) throw new Error('not found');
    return found;
  }

  it('rewrites the file without the token, keeping the other keys and the mode', async () => {
    const found = await provisioned(`[worker]\ncoordinator = "grid:8443"\ntoken = "${TOKEN}"\nname = "lab 12"\npreset = "desktop"\n`, 0o640);
    expect(await removeProvisioningToken(found)).toEqual({ removed: true });
    const text = await readFile(found.path, 'utf8');
    expect(text).not.toContain(TOKEN);
    expect(text).toMatch(/^# The enrollment token was removed after use/);
    expect(parseProvisioning(text, found.path)).toEqual({ coordinator: 'grid:8443', name: 'lab 12', preset: 'desktop' });
    expect((await stat(found.path)).mode & 0o777).toBe(0o640);
  });

  it('leaves a file alone that now holds another token', async () => {
    const found = await provisioned(`[worker]\ncoordinator = "grid"\ntoken = "${TOKEN}"\n`, 0o600);
    const replaced = `[worker]\ncoordinator = "grid"\ntoken = "${OTHER_TOKEN}"\n`;
    await writeFile(found.path, replaced);
    expect(await removeProvisioningToken(found)).toEqual({ removed: true });
    expect(await readFile(found.path, 'utf8')).toBe(replaced);
  });
});
