/**
 * The MSI's silent-enrollment properties: electron-builder's real WiX
 * template, rendered with its own ejs step (MsiTarget.projectTemplate) for a
 * per-machine and a per-user package, then changed by our
 * `msiProjectCreated` hook loaded the way electron-builder loads it. WiX
 * itself (candle, light, ICE validation) runs only on the Windows runner.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseProvisioning } from '../../src/worker/provisioning.js';
import { removeTempDirs, tempDir } from '../helpers/grid.js';
import { readBuilderConfig, ROOT } from './builder.js';
import { MACHINE_LOGIN_FLAG } from '../../src/main/login-item.js';

const config = readBuilderConfig();
const libRequire = createRequire(createRequire(import.meta.url).resolve('app-builder-lib/package.json'));
const ejs = libRequire('ejs') as { compile(template: string): (data: object) => string };
const { resolveFunction } = libRequire('./out/util/resolve.js') as {
  resolveFunction(type: string, executor: unknown, name: string, rootSearchDir: string): Promise<unknown>;
};

afterAll(removeTempDirs);

/** project.wxs as MsiTarget.writeManifest renders it. */
function renderProject(perMachine: boolean): string {
  const template = readFileSync(path.join(libRequire.resolve('app-builder-lib/package.json'), '..', 'templates/msi/template.xml'), 'utf8')
    .replace(/{{/g, '<%')
    .replace(/}}/g, '%>')
    .replace(/\${([^}]+)}/g, '<%=$1%>');
  return ejs.compile(template)({
    isPerMachine: perMachine,
    isAssisted: false,
    shortcutName: 'GoGrid Worker',
    isCreateDesktopShortcut: 0,
    isCreateStartMenuShortcut: true,
    menuCategory: null,
    iconPath: null,
    iconId: 'GoGridWorkerIcon.exe',
    compressionLevel: 'high',
    version: '1.2.0.0',
    productName: 'GoGrid Worker',
    upgradeCode: '2B2B2B2B-0000-5000-8000-000000000000',
    manufacturer: 'GoGrid',
    appDescription: 'GoGrid Worker',
    isRunAfterFinish: false,
    programFilesId: 'ProgramFiles64Folder',
    installationDirectoryWixName: 'GoGrid Worker',
    dirs: [],
    files: ['<Component><File Id="mainExecutable" Name="GoGrid Worker.exe" Source="$(var.appDir)\\GoGrid Worker.exe" KeyPath="yes"/></Component>'],
  });
}

const Wxs = z.object({
  allUsers: z.string(),
  properties: z.array(z.object({ Id: z.string(), Secure: z.string().optional(), Hidden: z.string().optional() })),
  folder: z.array(z.string()),
  featureGroups: z.array(z.string()),
  components: z.array(
    z.object({
      id: z.string(),
      condition: z.string(),
      registry: z.record(z.string(), z.string()),
      ini: z.record(z.string(), z.string()),
    }),
  ),
  productFiles: z.number(),
  machineLogin: z.array(z.record(z.string(), z.string())),
  mainExecutable: z.array(z.string()),
});

/** Parses project.wxs with Python's XML parser (a malformed file fails here) and picks what the hook adds. */
function inspect(file: string): z.infer<typeof Wxs> {
  const script = `
import json, sys, xml.etree.ElementTree as ET
ns = {"w": "http://wixtoolset.org/schemas/v4/wxs"}
root = ET.parse(sys.argv[1]).getroot()
product = root.find("w:Product", ns)
q = lambda el, p: el.findall(p, ns)
print(json.dumps({
  "allUsers": [p.get("Value") for p in q(product, "w:Property") if p.get("Id") == "ALLUSERS"][0],
  "properties": [dict(p.attrib) for p in q(product, "w:Property") if p.get("Id") in ("COORDINATOR", "TOKEN", "WORKERNAME", "PRESET")],
  "folder": [d.get("Id") for d in q(product, "w:DirectoryRef/w:Directory") for _ in q(d, "w:Directory[@Id='GOGRIDPROVISIONINGDIR']")],
  "featureGroups": [r.get("Id") for r in q(product, "w:Feature/w:ComponentGroupRef")],
  "components": [{
      "id": c.get("Id"),
      "condition": c.find("w:Condition", ns).text,
      "registry": dict(c.find("w:RegistryValue", ns).attrib),
      "ini": dict(c.find("w:IniFile", ns).attrib),
  } for c in q(product, "w:ComponentGroup[@Id='GoGridProvisioning']/w:Component") if c.get("Id") != "GoGridMachineLogin"],
  "machineLogin": [dict(c.find("w:RegistryValue", ns).attrib, Directory=c.get("Directory")) for c in q(product, "w:ComponentGroup[@Id='GoGridProvisioning']/w:Component[@Id='GoGridMachineLogin']")],
  "mainExecutable": [f.get("Source") for f in q(product, "w:ComponentGroup[@Id='ProductComponents']/w:Component/w:File") if f.get("Id") == "mainExecutable"],
  "productFiles": len(q(product, "w:ComponentGroup[@Id='ProductComponents']/w:Component/w:File")),
}))`;
  const result = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
  if (result.error) throw result.error;
  expect(result.stderr).toBe('');
  return Wxs.parse(JSON.parse(result.stdout));
}

async function hooked(perMachine: boolean): Promise<string> {
  const file = path.join(await tempDir('gogrid-msi-'), 'project.wxs');
  writeFileSync(file, renderProject(perMachine));
  // Loaded from the configuration the way electron-builder's Packager does it.
  const hook = await resolveFunction('module', config.msiProjectCreated, 'msiProjectCreated', ROOT);
  expect(typeof hook).toBe('function');
  await (hook as (projectFile: string) => Promise<void>)(file);
  return file;
}

describe('the msiProjectCreated hook', () => {
  it.each([
    [true, '1', 'CommonAppDataFolder', 'HKLM'],
    [false, '2', 'AppDataFolder', 'HKCU'],
  ])('perMachine=%s (ALLUSERS=%s): adds the enrollment properties and writes provisioning.toml under %s with %s key paths', async (perMachine, allUsers, folder, hive) => {
    const wxs = inspect(await hooked(perMachine));
    expect(wxs.allUsers).toBe(allUsers);
    expect(wxs.productFiles).toBe(1);
    expect(wxs.properties).toEqual([
      { Id: 'COORDINATOR', Secure: 'yes' },
      { Id: 'TOKEN', Secure: 'yes', Hidden: 'yes' },
      { Id: 'WORKERNAME', Secure: 'yes' },
      { Id: 'PRESET', Secure: 'yes' },
    ]);
    expect(wxs.folder).toEqual([folder]);
    expect(wxs.featureGroups).toEqual(['ProductComponents', 'GoGridProvisioning']);
    expect(wxs.components.map((c) => [c.ini.Key, c.ini.Value, c.condition])).toEqual([
      ['coordinator', '"[COORDINATOR]"', 'COORDINATOR AND TOKEN'],
      ['token', '"[TOKEN]"', 'COORDINATOR AND TOKEN'],
      ['name', '"[WORKERNAME]"', 'WORKERNAME AND COORDINATOR AND TOKEN'],
      ['preset', '"[PRESET]"', 'PRESET AND COORDINATOR AND TOKEN'],
    ]);
    for (const c of wxs.components) {
      expect(c.ini).toMatchObject({ Action: 'addLine', Directory: 'GOGRIDPROVISIONINGDIR', Name: 'provisioning.toml', Section: 'worker' });
      expect(c.registry).toMatchObject({ Root: hive, KeyPath: 'yes' });
    }
  });

  it.each([
    [true, [{ Root: 'HKLM', Key: 'Software\\Microsoft\\Windows\\CurrentVersion\\Run', Name: 'GoGrid Worker', Type: 'string', Value: `"[#mainExecutable]" ${MACHINE_LOGIN_FLAG}`, KeyPath: 'yes', Directory: 'APPLICATIONFOLDER' }]],
    [false, []],
  ])('perMachine=%s: starts the app at every user\'s login only from a per-machine package, with the flag the app honours', async (perMachine, expected) => {
    const wxs = inspect(await hooked(perMachine));
    expect(wxs.machineLogin).toEqual(expected);
    // [#mainExecutable] names a file the template really has.
    expect(wxs.mainExecutable).toHaveLength(1);
  });

  it('writes, after property substitution, a file the worker reads', () => {
    // What IniFile produces from msiexec COORDINATOR=… TOKEN=… WORKERNAME=… (WritePrivateProfileString: key=value, CRLF).
    const token = `gg1.abcd1234.${'S'.repeat(22)}.${'F'.repeat(43)}`;
    const ini = `[worker]\r\ncoordinator="grid.example.com:8443"\r\ntoken="${token}"\r\nname="lab-pc-12"\r\n`;
    expect(parseProvisioning(ini, 'C:\\ProgramData\\GoGrid\\provisioning.toml')).toEqual({ coordinator: 'grid.example.com:8443', token, name: 'lab-pc-12' });
  });

  it('runs once: a second call leaves the project as it is', async () => {
    const file = await hooked(true);
    const once = readFileSync(file, 'utf8');
    const hook = (await resolveFunction('module', config.msiProjectCreated, 'msiProjectCreated', ROOT)) as (f: string) => Promise<void>;
    await hook(file);
    expect(readFileSync(file, 'utf8')).toBe(once);
  });

  it('fails the build, naming itself, if the template no longer has its anchors', async () => {
    const file = path.join(await tempDir('gogrid-msi-'), 'project.wxs');
    writeFileSync(file, '<Wix><Product></Product></Wix>');
    const hook = (await resolveFunction('module', config.msiProjectCreated, 'msiProjectCreated', ROOT)) as (f: string) => Promise<void>;
    await expect(hook(file)).rejects.toThrow(/GoGrid silent enrollment: project\.wxs no longer has/);
  });
});
