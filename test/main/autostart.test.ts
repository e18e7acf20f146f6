// Start at login on Linux: the autostart entry is checked by Debian's
// desktop-file-validate for real, with paths that need every kind of quoting.
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { autostartEnabled, autostartEntry, autostartPath, systemAutostartPaths } from '../../src/main/autostart.js';
import { electronLoginItem, hasMachineLoginEntry, launchCommand, loginItem, loginItemAtLaunch, MACHINE_LOGIN_FLAG, startedOnlyToQuit, xdgLoginItem } from '../../src/main/login-item.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gogrid-autostart-'));
  dirs.push(dir);
  return dir;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** desktop-file-validate's verdict: '' when it is happy (it exits 1 on an error). */
async function validate(text: string): Promise<string> {
  const file = join(await tempDir(), 'gogrid-worker.desktop');
  await writeFile(file, text);
  try {
    const { stdout, stderr } = await run('desktop-file-validate', [file]);
    return (stdout + stderr).trim();
  } catch (e) {
    const { stdout, stderr } = e as { stdout: string; stderr: string };
    return `failed: ${stdout}${stderr}`.trim();
  }
}

describe('autostartPath', () => {
  it('is in ~/.config/autostart unless XDG_CONFIG_HOME says otherwise', () => {
    expect(autostartPath({}, '/home/ada')).toBe('/home/ada/.config/autostart/gogrid-worker.desktop');
    expect(autostartPath({ XDG_CONFIG_HOME: '/cfg' }, '/home/ada')).toBe('/cfg/autostart/gogrid-worker.desktop');
    // The spec says a relative value is invalid and to be ignored.
    expect(autostartPath({ XDG_CONFIG_HOME: 'cfg' }, '/home/ada')).toBe('/home/ada/.config/autostart/gogrid-worker.desktop');
    expect(autostartPath({ XDG_CONFIG_HOME: '' }, '/home/ada')).toBe('/home/ada/.config/autostart/gogrid-worker.desktop');
  });
});

describe('autostartEntry', () => {
  it('is a valid desktop entry that starts the app', async () => {
    const text = autostartEntry({ exec: ['/opt/gogrid/gogrid-worker'] });
    expect(text).toBe(
      [
        '[Desktop Entry]',
        'Type=Application',
        'Version=1.4',
        'Name=GoGrid Worker',
        'Comment=Runs GoGrid jobs while this computer is idle',
        'Exec=/opt/gogrid/gogrid-worker',
        'TryExec=/opt/gogrid/gogrid-worker',
        'Terminal=false',
        'X-GNOME-Autostart-enabled=true',
        '',
      ].join('\n'),
    );
    expect(await validate(text)).toBe('');
  });

  it.each([
    ['a space', ['/opt/GoGrid Worker/gogrid-worker'], 'Exec="/opt/GoGrid Worker/gogrid-worker"'],
    ['an unpackaged app', ['/repo/node_modules/electron/dist/electron', '/repo'], 'Exec=/repo/node_modules/electron/dist/electron /repo'],
    ['a double quote', ['/home/ada/my "apps"/GoGrid.AppImage'], 'Exec="/home/ada/my \\\\"apps\\\\"/GoGrid.AppImage"'],
    ['a dollar and a backtick', ['/home/ada/$HOME`x`/app'], 'Exec="/home/ada/\\\\$HOME\\\\`x\\\\`/app"'],
    ['a backslash', ['/home/ada/back\\slash/app'], 'Exec="/home/ada/back\\\\\\\\slash/app"'],
    ['a percent sign', ['/home/ada/100%/app'], 'Exec=/home/ada/100%%/app'],
    ['an apostrophe, parentheses and a hash', ["/home/ada/Ada's (old) #1/app"], 'Exec="/home/ada/Ada\'s (old) #1/app"'],
  ])('quotes a path with %s so desktop-file-validate accepts it', async (_name, exec, line) => {
    const text = autostartEntry({ exec });
    expect(text.split('\n')).toContain(line);
    // TryExec is a plain string (no Exec quoting): the program's path as it is, backslashes doubled.
    expect(text.split('\n')).toContain(`TryExec=${exec[0]!.replace(/\\/g, '\\\\')}`);
    expect(await validate(text)).toBe('');
  });

  it('refuses what no Exec line can hold', () => {
    expect(() => autostartEntry({ exec: [] })).toThrow(/needs a program/);
    expect(() => autostartEntry({ exec: ['/opt/app\nrm -rf ~'] })).toThrow(/control characters/);
    expect(() => autostartEntry({ exec: ['/opt/app', ''] })).toThrow(/empty argument/);
  });
});

describe('xdgLoginItem', () => {
  it('writes the entry to switch on, a Hidden=true entry to switch off, and reads the state back from the file', async () => {
    const config = await tempDir();
    const file = autostartPath({ XDG_CONFIG_HOME: config }, '/nonexistent');
    const item = xdgLoginItem(file, ['/opt/GoGrid Worker/gogrid-worker']);
    expect(item.get()).toBe(false);

    await item.set(true);
    expect(item.get()).toBe(true);
    expect(await validate(await readFile(file, 'utf8'))).toBe('');
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    // A fresh instance (the next launch) sees what the last one left.
    expect(xdgLoginItem(file, ['/x']).get()).toBe(true);

    await item.set(false);
    expect(item.get()).toBe(false);
    const off = await readFile(file, 'utf8');
    expect(off).toContain('\nHidden=true\n');
    expect(await validate(off)).toBe('');
    await item.set(false);
    expect(xdgLoginItem(file, ['/x']).get()).toBe(false);
  });

  it("keeps the .deb's system-wide entry from starting the app once the owner switches it off, as the session resolves it", async () => {
    // The real entry the .deb installs in /etc/xdg/autostart, in a system config dir of the test's own.
    const system = await tempDir();
    const env = { XDG_CONFIG_HOME: await tempDir(), XDG_CONFIG_DIRS: `${system}:/nonexistent-xdg` };
    const [systemFile] = systemAutostartPaths(env);
    expect(systemFile).toBe(join(system, 'autostart', 'gogrid-worker.desktop'));
    await mkdir(join(system, 'autostart'), { recursive: true });
    await writeFile(systemFile!, await readFile(join(ROOT, 'installers/linux/gogrid-worker-autostart.desktop'), 'utf8'));
    const userFile = autostartPath(env, '/nonexistent');
    const started = async () => autostartEnabled(await readFile(userFile, 'utf8').catch(() => null), true);

    const item = xdgLoginItem(userFile, ['/opt/GoGrid Worker/gogrid-worker'], systemAutostartPaths(env));
    expect([item.get(), await started()]).toEqual([true, true]); // installed: on, by the system's entry alone
    await item.set(false);
    expect([item.get(), await started()]).toEqual([false, false]);
    expect(xdgLoginItem(userFile, ['/x'], systemAutostartPaths(env)).get()).toBe(false);
    await item.set(true);
    expect([item.get(), await started()]).toEqual([true, true]);
  });
});

describe('autostartEnabled: the autostart spec, user entry over system entry', () => {
  it.each([
    ['no entries', null, false, false],
    ['the system entry alone', null, true, true],
    ['a user entry', '[Desktop Entry]\nExec=x\n', false, true],
    ['Hidden=true hides the system entry of that name', '[Desktop Entry]\nHidden=true\n', true, false],
    ['Hidden=false', '[Desktop Entry]\nHidden=false\n', true, true],
    ["GNOME's switch off", '[Desktop Entry]\nX-GNOME-Autostart-enabled=false\n', true, false],
    ['spaces around =', '[Desktop Entry]\nHidden = true\n', true, false],
  ] as const)('%s', (_, user, system, expected) => {
    expect(autostartEnabled(user, system)).toBe(expected);
  });
});

describe('loginItemAtLaunch', () => {
  it('switches start at login on at the first run of an installed app and saves that', () => {
    expect(loginItemAtLaunch(undefined, true)).toEqual({ apply: true, persist: true });
  });
  it("re-applies the owner's saved choice, whatever it is", () => {
    expect(loginItemAtLaunch(false, true)).toEqual({ apply: false, persist: false });
    expect(loginItemAtLaunch(true, true)).toEqual({ apply: true, persist: false });
    expect(loginItemAtLaunch(true, false)).toEqual({ apply: true, persist: false });
  });
  it('never registers a development build by itself', () => {
    expect(loginItemAtLaunch(undefined, false)).toEqual({ apply: null, persist: false });
  });
});

describe('launchCommand', () => {
  it('starts an AppImage through its file, a packaged app by its executable, an unpackaged one with its path', () => {
    expect(launchCommand({ APPIMAGE: '/home/ada/GoGrid.AppImage' }, '/tmp/.mount_x/gogrid-worker', true, '/tmp/.mount_x/resources/app.asar')).toEqual(['/home/ada/GoGrid.AppImage']);
    expect(launchCommand({}, '/opt/GoGrid Worker/gogrid-worker', true, '/opt/GoGrid Worker/resources/app.asar')).toEqual(['/opt/GoGrid Worker/gogrid-worker']);
    expect(launchCommand({}, '/repo/node_modules/electron/dist/electron', false, '/repo')).toEqual(['/repo/node_modules/electron/dist/electron', '/repo']);
  });
});

describe('electronLoginItem', () => {
  it("reads and sets the OS login item with the app's arguments", async () => {
    const calls: unknown[] = [];
    let openAtLogin = false;
    const app = {
      getLoginItemSettings: (o?: { args?: string[] }) => (calls.push(['get', o]), { openAtLogin }) as ReturnType<Parameters<typeof electronLoginItem>[0]['getLoginItemSettings']>,
      setLoginItemSettings: (s: { openAtLogin?: boolean; args?: string[] }) => {
        calls.push(['set', s]);
        openAtLogin = s.openAtLogin ?? false;
      },
    };
    const item = electronLoginItem(app, ['C:\\repo']);
    expect(item.get()).toBe(false);
    await item.set(true);
    expect(item.get()).toBe(true);
    expect(calls).toEqual([
      ['get', { args: ['C:\\repo'] }],
      ['set', { openAtLogin: true, args: ['C:\\repo'] }],
    ]);
  });
});

describe('a machine-wide login entry (per-machine MSI, MDM LaunchAgent)', () => {
  const pf = { ProgramFiles: 'C:\\Program Files', ProgramW6432: 'C:\\Program Files' };
  it.each([
    ['win32', [], 'C:\\Program Files\\GoGrid Worker\\GoGrid Worker.exe', pf, true],
    ['win32', [], 'c:\\program files\\GoGrid Worker\\GoGrid Worker.exe', pf, true],
    ['win32', [], 'C:\\Users\\ada\\AppData\\Local\\Programs\\GoGrid Worker\\GoGrid Worker.exe', pf, false],
    ['win32', [], 'C:\\Program Files Extra\\GoGrid Worker.exe', pf, false],
    ['win32', [], 'C:\\Program Files\\GoGrid Worker\\GoGrid Worker.exe', {}, false],
    ['darwin', [MACHINE_LOGIN_FLAG], '/Applications/GoGrid Worker.app/Contents/MacOS/GoGrid Worker', {}, true],
    ['darwin', [], '/Applications/GoGrid Worker.app/Contents/MacOS/GoGrid Worker', {}, false],
    ['linux', [], '/opt/GoGrid Worker/gogrid-worker', {}, false],
  ] as const)('on %s with argv %j from %s: %s', (platform, argv, execPath, env, expected) => {
    expect(hasMachineLoginEntry(platform, ['exe', ...argv], execPath, env)).toBe(expected);
  });

  it('leaves the OS alone: the saved choice is the state, and the app quits at once when the entry starts it for a user who said off', async () => {
    const calls: unknown[] = [];
    const app = {
      isPackaged: true,
      getAppPath: () => 'C:\\Program Files\\GoGrid Worker\\resources\\app.asar',
      getLoginItemSettings: () => (calls.push('get'), { openAtLogin: false }) as ReturnType<Parameters<typeof electronLoginItem>[0]['getLoginItemSettings']>,
      setLoginItemSettings: () => void calls.push('set'),
    };
    const item = loginItem(app, 'win32', { env: pf, home: 'C:\\Users\\ada', execPath: 'C:\\Program Files\\GoGrid Worker\\GoGrid Worker.exe', argv: ['exe'], saved: undefined });
    expect(item.get()).toBe(true);
    await item.set(false);
    expect(item.get()).toBe(false);
    expect(calls).toEqual([]);
    expect(startedOnlyToQuit(['exe', MACHINE_LOGIN_FLAG], false)).toBe(true);
    expect(startedOnlyToQuit(['exe', MACHINE_LOGIN_FLAG], undefined)).toBe(false);
    expect(startedOnlyToQuit(['exe', MACHINE_LOGIN_FLAG], true)).toBe(false);
    expect(startedOnlyToQuit(['exe'], false)).toBe(false);
  });
});
