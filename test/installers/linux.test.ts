/**
 * The Debian package's own resources, with the tools a Debian maintainer
 * uses: desktop-file-validate for the menu and autostart entries, shellcheck
 * and `sh -n` for the maintainer scripts, each as electron-builder renders it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AUTOSTART_FILE_NAME } from '../../src/main/autostart.js';
import { removeTempDirs, tempDir } from '../helpers/grid.js';
import { readBuilderConfig, ROOT } from './builder.js';

const config = readBuilderConfig();
const linux = z.looseObject({ executableName: z.string() }).parse(config.linux);
const deb = z.looseObject({ afterInstall: z.string(), afterRemove: z.string(), fpm: z.array(z.string()) }).parse(config.deb);
const libRequire = createRequire(createRequire(import.meta.url).resolve('app-builder-lib/package.json'));
let dir: string;

beforeAll(async () => {
  dir = await tempDir('gogrid-linux-');
});
afterAll(removeTempDirs);

function run(command: string, args: string[], env?: NodeJS.ProcessEnv) {
  const result = spawnSync(command, args, { encoding: 'utf8', env });
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** FpmTarget.writeConfigFile: `${name}` from the packager's values and the linux options; an unknown name fails the build. */
function render(template: string): string {
  const values: Record<string, unknown> = {
    executable: linux.executableName.replace(/'/g, "'\\''"),
    sanitizedProductName: 'GoGrid Worker',
    productFilename: 'GoGrid Worker',
    ...linux,
  };
  return template.replace(/\${([a-zA-Z]+)}/g, (_m, name: string) => {
    if (!(name in values)) throw new Error(`Macro ${name} is not defined`);
    return String(values[name]);
  });
}

describe('desktop entries', () => {
  it('the system-wide autostart entry passes desktop-file-validate, hints included', () => {
    const source = deb.fpm[0]!.split('=')[0]!;
    const { status, output } = run('desktop-file-validate', [path.join(ROOT, source)]);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('is installed under the name the app uses for its per-user entry, so a user can switch it off', () => {
    expect(deb.fpm[0]!.split('=')[1]).toBe(`/etc/xdg/autostart/${AUTOSTART_FILE_NAME}`);
    const entry = readFileSync(path.join(ROOT, deb.fpm[0]!.split('=')[0]!), 'utf8');
    // TryExec: after `apt remove` (the conffile stays until purge) nothing starts.
    expect(entry).toContain(`\nTryExec=${linux.executableName}\n`);
    expect(entry).toContain(`\nExec=${linux.executableName}\n`);
  });

  it("the menu entry electron-builder generates from linux.desktop passes desktop-file-validate", async () => {
    const { LinuxTargetHelper } = libRequire('./out/targets/LinuxTargetHelper.js') as {
      LinuxTargetHelper: new (packager: object) => { computeDesktopEntry(options: object): Promise<string> };
    };
    const packager = {
      appInfo: { productName: 'GoGrid Worker', sanitizedProductName: 'GoGrid Worker', description: 'GoGrid Worker' },
      executableName: linux.executableName,
      // Packager merges extraMetadata into package.json's metadata before any target runs.
      info: { metadata: z.looseObject({}).parse(config.extraMetadata) },
      fileAssociations: [],
      config,
      platformSpecificBuildOptions: linux,
    };
    const entry = await new LinuxTargetHelper(packager).computeDesktopEntry(linux);
    expect(entry).toContain('Exec="/opt/GoGrid Worker/gogrid-worker" %U');
    expect(entry).toContain('\nStartupWMClass=gogrid-worker\n');
    const file = path.join(dir, 'gogrid-worker.desktop');
    writeFileSync(file, entry);
    const { status, output } = run('desktop-file-validate', [file]);
    expect(output).toBe('');
    expect(status).toBe(0);
  });
});

describe.each([
  ['postinst', deb.afterInstall],
  ['postrm', deb.afterRemove],
])('the Debian %s', (_name, template) => {
  const source = path.join(ROOT, template);
  const rendered = () => {
    const file = path.join(dir, path.basename(template));
    writeFileSync(file, render(readFileSync(source, 'utf8')), { mode: 0o755 });
    return file;
  };

  it('uses only the macros electron-builder defines', () => {
    expect(() => render(readFileSync(source, 'utf8'))).not.toThrow();
    expect(() => render('${nope}')).toThrow('Macro nope is not defined');
  });

  it('passes shellcheck as POSIX sh, as written and as rendered', () => {
    for (const file of [source, rendered()]) {
      const { status, output } = run('shellcheck', ['--shell=sh', '--severity=style', file]);
      expect(output).toBe('');
      expect(status).toBe(0);
    }
  });

  it('passes sh -n', () => {
    const { status, output } = run('sh', ['-n', rendered()]);
    expect(output).toBe('');
    expect(status).toBe(0);
  });

  it('does nothing for the calls it does not handle (no command can run: PATH is empty)', () => {
    const idle = template.endsWith('postinst') ? ['triggered', 'gogrid'] : ['upgrade', '0.1.0'];
    const { status, output } = run('/bin/sh', [rendered(), ...idle], { PATH: '/nonexistent' });
    expect(output).toBe('');
    expect(status).toBe(0);
  });
});
