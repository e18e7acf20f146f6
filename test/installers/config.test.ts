/**
 * electron-builder.yml as electron-builder will read it: valid against its own
 * JSON schema, with the targets the issue asks for, every file it names
 * present, signing left to environment variables, and the app's entry points
 * and runtime files inside what it packs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { APP_ICON, APP_ROOT, PRELOAD, RENDERER_PAGE, TRAY_ICONS } from '../../src/main/paths.js';
import { DEFAULT_UPDATE_CHANNEL } from '../../src/main/updater.js';
import { appFileFilter, readBuilderConfig, ROOT, TARGETS } from './builder.js';

const require = createRequire(import.meta.url);
const schema = JSON.parse(readFileSync(require.resolve('app-builder-lib/scheme.json'), 'utf8')) as object;
// The options electron-builder validates with (app-builder-lib/out/util/config/schemaValidator.js).
const validate = new Ajv({ allErrors: true, verbose: true, coerceTypes: true, strict: false }).compile(schema);
const config = readBuilderConfig();

function schemaErrors(candidate: unknown): ErrorObject[] {
  // coerceTypes rewrites the data it checks: give it a copy.
  return validate(structuredClone(candidate)) ? [] : (validate.errors ?? []);
}

/** A deep copy with one nested key set. */
function withKey(pathKeys: string[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(config);
  let node: Record<string, unknown> = copy;
  for (const key of pathKeys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) throw new Error(`no ${key} in electron-builder.yml`);
    node = next as Record<string, unknown>;
  }
  node[pathKeys.at(-1)!] = value;
  return copy;
}

const Section = z.looseObject({});
const section = (key: string) => Section.parse(config[key]);
const targetsOf = (key: string) =>
  z.array(z.object({ target: z.string(), arch: z.array(z.string()) })).parse(section(key).target);

describe('electron-builder.yml', () => {
  it("validates against electron-builder's own schema", () => {
    expect(schemaErrors(config)).toEqual([]);
  });

  it('fails the schema with a misspelt key or a wrong type (the check can fail)', () => {
    const misspelt = schemaErrors(withKey(['mac', 'hardenedRuntim'], true));
    expect(misspelt).toContainEqual(expect.objectContaining({ instancePath: '/mac', keyword: 'additionalProperties', params: { additionalProperty: 'hardenedRuntim' } }));
    expect(schemaErrors(withKey(['asarUnpak'], ['x']))).toContainEqual(expect.objectContaining({ keyword: 'additionalProperties', params: { additionalProperty: 'asarUnpak' } }));
    expect(schemaErrors(withKey(['msi', 'perMachine'], 'sometimes')).some((e) => e.instancePath === '/msi/perMachine')).toBe(true);
  });

  it('also validates the per-user MSI variant release.yml builds (-c.msi.perMachine=false)', () => {
    expect(schemaErrors(withKey(['msi', 'perMachine'], false))).toEqual([]);
  });

  it('names the app and builds the installers the issue asks for', () => {
    expect(config.appId).toBe('io.gogrid.worker');
    expect(config.productName).toBe('GoGrid Worker');
    expect(targetsOf('win')).toEqual([
      { target: 'msi', arch: ['x64'] },
      { target: 'nsis', arch: ['x64'] },
    ]);
    expect(section('msi')).toMatchObject({ perMachine: true, runAfterFinish: false });
    expect(targetsOf('mac')).toEqual([
      { target: 'dmg', arch: ['arm64'] },
      { target: 'zip', arch: ['arm64'] },
    ]);
    expect(section('mac')).toMatchObject({ hardenedRuntime: true, entitlements: 'installers/macos/entitlements.mac.plist', entitlementsInherit: 'installers/macos/entitlements.mac.plist' });
    // A tray app has no Dock icon (it bounced at every login).
    expect(section('mac')).toMatchObject({ extendInfo: { LSUIElement: true }, minimumSystemVersion: '14.0' });
    // No AppImage: it does not start on Ubuntu 24.04+ (README).
    expect(targetsOf('linux')).toEqual([{ target: 'deb', arch: ['x64'] }]);
    expect(TARGETS.map((t) => `${t.key}:${targetsOf(t.key)[0]!.arch.join()}`)).toEqual(['linux:x64', 'win:x64', 'mac:arm64']);
  });

  it('names only files that exist', () => {
    const named = [
      section('mac').entitlements,
      section('mac').entitlementsInherit,
      section('mac').icon,
      section('win').icon,
      section('linux').icon,
      section('deb').afterInstall,
      section('deb').afterRemove,
      config.msiProjectCreated,
      ...z.array(z.string()).parse(section('deb').fpm).map((mapping) => mapping.split('=')[0]),
    ];
    for (const file of z.array(z.string()).parse(named)) expect(existsSync(path.join(ROOT, file)), file).toBe(true);
    expect(section('deb').fpm).toEqual(['installers/linux/gogrid-worker-autostart.desktop=/etc/xdg/autostart/gogrid-worker.desktop']);
  });

  it('has icons electron-builder accepts: a 1024 px PNG, an ICO with 256 px, an ICNS with 512 px', () => {
    const png = readFileSync(path.join(ROOT, z.string().parse(section('linux').icon)));
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1024, 1024]);
    const ico = readFileSync(path.join(ROOT, z.string().parse(section('win').icon)));
    expect(ico.readUInt32LE(0)).toBe(0x00010000);
    // An ICONDIRENTRY's width byte is 0 for 256 px.
    const widths = Array.from({ length: ico.readUInt16LE(4) }, (_, i) => ico[6 + 16 * i] || 256);
    expect(widths).toContain(256);
    const icns = readFileSync(path.join(ROOT, z.string().parse(section('mac').icon)));
    expect(icns.subarray(0, 4).toString('latin1')).toBe('icns');
    expect(icns.readUInt32BE(4)).toBe(icns.length);
    const chunks: string[] = [];
    for (let at = 8; at < icns.length; at += icns.readUInt32BE(at + 4)) chunks.push(icns.subarray(at, at + 4).toString('latin1'));
    expect(chunks.some((c) => c === 'ic09' || c === 'ic10')).toBe(true);
  });

  it('leaves code signing to environment variables: no certificate, password or identity in the file', () => {
    const secretKeys = /^(cscLink|cscKeyPassword|cscInstallerLink|cscInstallerKeyPassword|certificateFile|certificatePassword|certificateSha1|identity|appleId|appleIdPassword|teamId|provisioningProfile)$/;
    const found: string[] = [];
    const visit = (node: unknown, where: string) => {
      if (Array.isArray(node)) node.forEach((v, i) => visit(v, `${where}[${i}]`));
      else if (node && typeof node === 'object') {
        for (const [k, v] of Object.entries(node)) {
          if (secretKeys.test(k)) found.push(`${where}.${k}`);
          visit(v, `${where}.${k}`);
        }
      } else if (typeof node === 'string' && /\.(p12|pfx|pem|key|cer|provisionprofile)$/i.test(node)) found.push(`${where} = ${node}`);
    };
    visit(config, 'config');
    expect(found).toEqual([]);
    expect(readFileSync(path.join(ROOT, 'electron-builder.yml'), 'utf8')).toMatch(/CSC_LINK.*CSC_KEY_PASSWORD/);
  });

  it("publishes update metadata for the coordinator's /updates/<channel>/ feed", () => {
    const publish = z.object({ provider: z.literal('generic'), url: z.string(), useMultipleRangeRequest: z.literal(false) }).parse(config.publish);
    const url = new URL(publish.url);
    expect(url.protocol).toBe('https:');
    expect(url.pathname).toBe(`/updates/${DEFAULT_UPDATE_CHANNEL}`);
    // Never a real host: each app points at the coordinator it enrolled with.
    expect(url.hostname.endsWith('.invalid')).toBe(true);
  });

  it('unpacks every native module and leaves native rebuilds off (N-API prebuilds)', () => {
    expect(config.asar).toBe(true);
    expect(config.npmRebuild).toBe(false);
  });
});

describe('the app electron-builder packs', () => {
  const packed = appFileFilter(config, TARGETS[0]);
  const relative = (file: string) => path.relative(APP_ROOT, file).split(path.sep).join('/');

  it('has its entry point where package.json says (the agreed dist/main/main.js)', () => {
    const pkg = z.looseObject({ main: z.string().optional() }).parse(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')));
    expect(pkg.main, 'package.json "main"').toBe('dist/main/main.js');
    expect(packed('dist/main/main.js')).toBe(true);
  });

  it('includes the preload, the status window and the icons the main process loads (src/main/paths.ts)', () => {
    for (const file of [RENDERER_PAGE, PRELOAD, APP_ICON]) expect(packed(relative(file)), relative(file)).toBe(true);
    expect(packed(`${relative(TRAY_ICONS)}/idle-16.png`)).toBe(true);
    expect(packed(`${relative(TRAY_ICONS)}/workingTemplate@2x.png`)).toBe(true);
    expect(packed('package.json')).toBe(true);
    // The worker core and the job processes it forks.
    expect(packed('dist/worker/executors/job-process.js')).toBe(true);
    expect(packed('dist/worker/executors/llm-probe-process.js')).toBe(true);
    expect(packed('dist/worker/executors/runtime-probe-process.js')).toBe(true);
    expect(packed('dist/worker/executors/gpu-probe-process.js')).toBe(true);
  });

  it('builds each entry point from a source file that exists', () => {
    // tsconfig.build.json maps src/** to dist/**; the preload is bundled to CommonJS (.cjs) for the sandbox.
    const sources: Record<string, string[]> = {
      [relative(RENDERER_PAGE)]: ['src/renderer/index.html'],
      [relative(PRELOAD)]: ['src/preload/preload.ts', 'src/preload/preload.cts'],
      'dist/main/main.js': ['src/main/main.ts'],
    };
    expect(Object.keys(sources).sort()).toEqual(['dist/main/main.js', 'dist/preload/preload.cjs', 'dist/renderer/index.html']);
    for (const [built, candidates] of Object.entries(sources)) {
      expect(candidates.some((s) => existsSync(path.join(ROOT, s))), `${built} from ${candidates.join(' or ')}`).toBe(true);
    }
  });

  it('has no top-level files list, and the same app files in each platform list (they differ only in native binaries)', () => {
    // A top-level list becomes a file set of its own in electron-builder's normalisation (see electron-builder.yml).
    expect(config.files).toBeUndefined();
    const shared = (key: string) => z.array(z.string()).parse(section(key).files).filter((p) => !/onnxruntime-node\/bin|@matrixai\/quic-|@node-llama-cpp\//.test(p));
    expect(shared('win')).toEqual(shared('linux'));
    expect(shared('mac')).toEqual(shared('linux'));
  });

  it.each(TARGETS)('leaves out sources, tests, source maps, installer resources and the release folder ($key)', (target) => {
    const packedFor = appFileFilter(config, target);
    expect(packedFor('dist/main/main.js')).toBe(true);
    for (const file of ['src/main/main.ts', 'test/installers/config.test.ts', 'bench/fleet/main.ts', 'dist/main/main.js.map', 'installers/linux/postinst', 'release/latest.yml', 'assets/icon.svg', 'assets/README.md', 'electron-builder.yml', '.ci/run', 'scripts/soak.ts']) {
      expect(packedFor(file), file).toBe(false);
    }
  });
});
