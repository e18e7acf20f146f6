/**
 * Native binaries in the packed app, evaluated with electron-builder's own
 * file matcher over the real node_modules: each one is unpacked from the asar
 * archive, and each installer carries only its own platform's.
 *
 * npm installs only this machine's @matrixai/quic platform package (linux-x64),
 * so the others are stood in for by stub packages with the same layout
 * (package.json + node.napi.node), as if every platform's were installed: the
 * filters must drop the foreign ones wherever they come from.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { removeTempDirs, tempDir } from '../helpers/grid.js';
import { compareVersions, machoMinimumOs, peImports } from './binaries.js';
import { asarUnpackFilter, keptNodeModuleFiles, NATIVE_BINARY, readBuilderConfig, ROOT, runtimePackageDirs, TARGETS, type Target } from './builder.js';

let packages: Array<{ dir: string; relative: string }>;
let allFiles: string[];
const config = readBuilderConfig();

/** node-llama-cpp names its platform packages mac-, win-, linux-, then the arch and the backend (`linux-x64-vulkan`). */
const LLAMA_PLATFORM: Record<Target['platform'], string> = { darwin: 'mac', win32: 'win', linux: 'linux' };
const llamaPackages = (target: Target) => `node_modules/@node-llama-cpp/${LLAMA_PLATFORM[target.platform]}-${target.arch}`;

/** Where `target`'s own native binaries live; everything native elsewhere is foreign. */
function isOwn(file: string, target: Target): boolean {
  return (
    file.startsWith(`node_modules/onnxruntime-node/bin/napi-v6/${target.platform}/${target.arch}/`) ||
    file.startsWith(`node_modules/@matrixai/quic-${target.platform}-${target.arch}/`) ||
    file.startsWith(llamaPackages(target))
  );
}

beforeAll(async () => {
  packages = runtimePackageDirs().map((dir) => ({ dir, relative: path.relative(ROOT, dir).split(path.sep).join('/') }));
  const stubs = await tempDir('gogrid-native-stubs-');
  for (const [parent, binary] of [
    ['@matrixai/quic', 'node.napi.node'],
    ['node-llama-cpp', 'bins/stub/llama-addon.node'],
  ] as const) {
    const manifest = z.object({ optionalDependencies: z.record(z.string(), z.string()) }).parse(JSON.parse(await readFile(path.join(ROOT, `node_modules/${parent}/package.json`), 'utf8')));
    for (const name of Object.keys(manifest.optionalDependencies)) {
      const relative = `node_modules/${name}`;
      if (packages.some((p) => p.relative === relative)) continue;
      const dir = path.join(stubs, name);
      await mkdir(path.dirname(path.join(dir, binary)), { recursive: true });
      await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name, main: binary }));
      await writeFile(path.join(dir, binary), 'stub');
      packages.push({ dir, relative });
    }
  }
  // Unfiltered: what `**/*` alone keeps.
  allFiles = keptNodeModuleFiles({}, TARGETS[0], packages);
}, 60_000);
afterAll(removeTempDirs);

describe('native modules in the packed app', () => {
  it('are the ones this test expects to find (the runtime tree, every platform)', () => {
    const native = allFiles.filter((f) => NATIVE_BINARY.test(f));
    for (const target of TARGETS) {
      expect(native).toContain(`node_modules/onnxruntime-node/bin/napi-v6/${target.platform}/${target.arch}/onnxruntime_binding.node`);
      expect(native).toContain(`node_modules/@matrixai/quic-${target.platform}-${target.arch}/node.napi.node`);
      expect(native.some((f) => f.startsWith(llamaPackages(target)) && f.endsWith('/llama-addon.node'))).toBe(true);
    }
    // Dev-only native packages (esbuild, resvg, electron's unzip) are not in the production tree;
    // @reflink is (node-llama-cpp's downloader), and the top-level `files` drop it.
    const runtimes = ['node_modules/onnxruntime-node/', 'node_modules/@matrixai/quic-', 'node_modules/@node-llama-cpp/', 'node_modules/@reflink/'];
    expect(native.filter((f) => !runtimes.some((r) => f.startsWith(r)))).toEqual([]);
  });

  it.each(TARGETS)('are all unpacked from app.asar on $platform-$arch', (target) => {
    const unpack = asarUnpackFilter(config, target);
    const native = keptNodeModuleFiles(config, target, packages).filter((f) => NATIVE_BINARY.test(f));
    expect(native.length).toBeGreaterThan(0);
    expect(native.filter((f) => !unpack(f))).toEqual([]);
    // The JavaScript that loads them stays inside the archive.
    expect(unpack('node_modules/onnxruntime-node/dist/binding.js')).toBe(false);
    expect(unpack('node_modules/@matrixai/quic/dist/native/quiche.js')).toBe(false);
  });

  it('would fail without asarUnpack (the check can fail)', () => {
    const { asarUnpack: _dropped, ...withoutUnpack } = config;
    expect(_dropped).toBeDefined();
    const unpack = asarUnpackFilter(withoutUnpack, TARGETS[0]);
    expect(allFiles.filter((f) => NATIVE_BINARY.test(f)).some((f) => !unpack(f))).toBe(true);
  });

  it.each(TARGETS)('the $platform-$arch installer keeps exactly its own native binaries', (target) => {
    const native = allFiles.filter((f) => NATIVE_BINARY.test(f));
    const own = native.filter((f) => isOwn(f, target));
    const kept = keptNodeModuleFiles(config, target, packages);
    expect(kept.filter((f) => NATIVE_BINARY.test(f))).toEqual(own);
    // Foreign binaries were there to drop.
    expect(native.length).toBeGreaterThan(own.length);
    // Only native folders go: the JavaScript of both packages stays.
    expect(kept).toContain('node_modules/onnxruntime-node/dist/binding.js');
    expect(kept).toContain('node_modules/@matrixai/quic/dist/native/quiche.js');
    expect(kept).toContain(`node_modules/@matrixai/quic-${target.platform}-${target.arch}/package.json`);
    expect(kept.filter((f) => f.startsWith('node_modules/onnxruntime-node/bin/') && !isOwn(f, target))).toEqual([]);
  });

  // What the GPU backends need beside onnxruntime itself: DirectML and, for WebGPU on Direct3D 12, its shader compiler.
  // Linux's WebGPU and macOS's Core ML and WebGPU are inside libonnxruntime; CUDA's provider the owner installs (README).
  it.each([
    { ...TARGETS[1], libs: ['DirectML.dll', 'dxcompiler.dll', 'dxil.dll', 'onnxruntime.dll'] },
    { ...TARGETS[0], libs: ['libonnxruntime.so.1'] },
    { ...TARGETS[2], libs: ['libonnxruntime.1.dylib'] },
  ])('the $platform-$arch installer carries the libraries of its GPU execution providers, unpacked', ({ libs, ...target }) => {
    const kept = new Set(keptNodeModuleFiles(config, target, packages));
    const unpack = asarUnpackFilter(config, target);
    for (const lib of libs) {
      const file = `node_modules/onnxruntime-node/bin/napi-v6/${target.platform}/${target.arch}/${lib}`;
      expect(kept.has(file), file).toBe(true);
      expect(unpack(file), file).toBe(true);
    }
  });

  it('would keep foreign binaries without the per-platform filters (the check can fail)', () => {
    const target = TARGETS[0];
    const { [target.key]: _linux, ...withoutLinux } = config;
    expect(_linux).toBeDefined();
    const kept = keptNodeModuleFiles(withoutLinux, target, packages).filter((f) => NATIVE_BINARY.test(f));
    expect(kept.some((f) => !isOwn(f, target))).toBe(true);
  });
});

/** The GLIBC_* versions an ELF file needs (its version-needs section), as [major, minor]. */
function glibcNeeds(file: string): [number, number][] {
  const r = spawnSync('readelf', ['--version-info', '--wide', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`readelf ${file}: ${r.stderr}`);
  return [...r.stdout.matchAll(/Name: GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

const hasReadelf = spawnSync('readelf', ['--version']).status === 0;
const inCi = Boolean(process.env['CI']);
if (!hasReadelf && !inCi) console.warn('glibc check skipped: readelf is not installed (binutils); with CI set it fails instead');

describe("the .deb's C library", () => {
  it.runIf(hasReadelf || inCi)('is declared at the highest GLIBC version any Linux binary it ships needs, no lower and no higher', () => {
    const linux = TARGETS[0];
    const shipped = keptNodeModuleFiles(config, linux, packages).filter((f) => NATIVE_BINARY.test(f));
    const needs = shipped.map((f) => ({ file: f, versions: glibcNeeds(path.join(ROOT, f)) }));
    expect(needs.length).toBeGreaterThan(3);
    const highest = needs.flatMap((n) => n.versions).reduce((a, b) => (b[0] > a[0] || (b[0] === a[0] && b[1] > a[1]) ? b : a));
    const depends = z.object({ depends: z.array(z.string()) }).parse(config['deb']).depends;
    const declared = depends.map((d) => /^libc6 \(>= (\d+)\.(\d+)\)$/.exec(d)).find((m) => m !== null);
    expect(declared, `deb.depends names no "libc6 (>= X.Y)": ${depends.join(', ')}`).toBeDefined();
    expect([Number(declared![1]), Number(declared![2])]).toEqual(highest);
    // electron-builder's own dependencies are kept beside it (a depends list replaces them).
    expect(depends).toEqual(expect.arrayContaining(['libgtk-3-0', 'libnss3', 'xdg-utils', 'libsecret-1-0']));
  });
});

/**
 * Windows and macOS binaries, read here as their OS would load them. Only the
 * packages npm installs on Linux can be read (onnxruntime-node ships every
 * platform's; @matrixai/quic's and node-llama-cpp's other platforms are stubs
 * above), which covers the binaries #14 found broken.
 */
const installed = new Map<Target, string[]>();
/** Walked once per target: keptNodeModuleFiles reads the whole production tree. */
const installedHere = (target: Target): string[] => {
  if (!installed.has(target)) installed.set(target, keptNodeModuleFiles(config, target, packages).filter((f) => NATIVE_BINARY.test(f) && existsSync(path.join(ROOT, f))));
  return installed.get(target)!;
};

/**
 * DLLs every Windows 10 and 11 has: Win32 system libraries and the API sets
 * (api-ms-win-crt-* is the Universal CRT, part of Windows since 10). Not the
 * Visual C++ runtime (MSVCP140, VCRUNTIME140*): only an app that ships it has it.
 */
const WINDOWS_DLL = /^(kernel32|user32|advapi32|shell32|ole32|oleaut32|setupapi|dbghelp|d3d12|dxgi|ws2_32|bcrypt|crypt32|ntdll|version|shlwapi)\.dll$|^(api|ext)-ms-win-[a-z0-9-]+\.dll$/i;

/** What ships beside each Windows binary besides the packages' own files: electron-builder.yml's win.extraResources. */
function extraResourcesBeside(raw: Record<string, unknown>): Map<string, string[]> {
  const win = z.object({ extraResources: z.array(z.object({ from: z.string(), to: z.string(), filter: z.array(z.string()) })).optional() }).parse(raw['win'] ?? {});
  const beside = new Map<string, string[]>();
  for (const r of win.extraResources ?? []) {
    // `to` is relative to resources/; the packages' unpacked files sit in resources/app.asar.unpacked/.
    const dir = r.to.replace(/^app\.asar\.unpacked\//, '');
    beside.set(dir, [...(beside.get(dir) ?? []), ...r.filter]);
  }
  return beside;
}

function unresolvedWindowsImports(raw: Record<string, unknown>): Array<{ file: string; missing: string[] }> {
  const target = TARGETS[1];
  const shipped = installedHere(target);
  const beside = extraResourcesBeside(raw);
  return shipped
    .filter((f) => /\.(node|dll)$/i.test(f))
    .map((file) => {
      const dir = path.posix.dirname(file);
      const neighbours = new Set([...shipped.filter((f) => path.posix.dirname(f) === dir).map((f) => path.posix.basename(f).toLowerCase()), ...(beside.get(dir) ?? []).map((n) => n.toLowerCase())]);
      const { imports, delayed } = peImports(readFileSync(path.join(ROOT, file)));
      // NODE.EXE: node-addon-api's delay-load hook binds it to the host process, Electron included.
      const missing = [...imports, ...delayed].filter((dll) => !neighbours.has(dll.toLowerCase()) && !WINDOWS_DLL.test(dll) && dll.toUpperCase() !== 'NODE.EXE');
      return { file, missing };
    })
    .filter((r) => r.missing.length > 0);
}

describe('Windows binaries', () => {
  it('import only DLLs the installer ships beside them or that every Windows has', () => {
    expect(installedHere(TARGETS[1]).filter((f) => /\.(node|dll)$/i.test(f)).length).toBeGreaterThanOrEqual(5);
    expect(unresolvedWindowsImports(config)).toEqual([]);
  });

  it('would miss the Visual C++ runtime without win.extraResources (the check can fail)', () => {
    const without = { ...config, win: { ...z.looseObject({}).parse(config['win']), extraResources: [] } };
    expect(unresolvedWindowsImports(without)).toEqual(
      expect.arrayContaining([{ file: 'node_modules/onnxruntime-node/bin/napi-v6/win32/x64/onnxruntime_binding.node', missing: ['MSVCP140.dll', 'VCRUNTIME140.dll', 'VCRUNTIME140_1.dll'] }]),
    );
  });

  it('gets the Visual C++ runtime from the release runner, every DLL that extraResources names', () => {
    const workflow = readFileSync(path.join(ROOT, '.github/workflows/release.yml'), 'utf8');
    for (const dlls of extraResourcesBeside(config).values()) for (const dll of dlls) expect(workflow).toContain(`'${dll}'`);
    expect(workflow).toContain('installers/windows/vc-runtime');
  });
});

describe('macOS binaries', () => {
  it('were built for no newer macOS than the app declares (mac.minimumSystemVersion)', () => {
    const declared = z.object({ minimumSystemVersion: z.string() }).parse(config['mac']).minimumSystemVersion;
    const shipped = installedHere(TARGETS[2]);
    expect(shipped.length).toBeGreaterThanOrEqual(2);
    const needs = shipped.map((file) => ({ file, minimum: machoMinimumOs(readFileSync(path.join(ROOT, file))) }));
    for (const n of needs) expect(n.minimum.length, `${n.file} names its minimum macOS`).toBeGreaterThan(0);
    expect(needs.filter((n) => n.minimum.some((v) => compareVersions(v, declared) > 0))).toEqual([]);
    // Declared no lower than they need either: the highest of them is the minimum (macOS 14 for onnxruntime-node 1.30).
    expect(compareVersions(needs.flatMap((n) => n.minimum).reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b)), declared)).toBe(0);
  });
});
