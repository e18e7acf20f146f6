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
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { removeTempDirs, tempDir } from '../helpers/grid.js';
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

  it('would keep foreign binaries without the per-platform filters (the check can fail)', () => {
    const target = TARGETS[0];
    const { [target.key]: _linux, ...withoutLinux } = config;
    expect(_linux).toBeDefined();
    const kept = keptNodeModuleFiles(withoutLinux, target, packages).filter((f) => NATIVE_BINARY.test(f));
    expect(kept.some((f) => !isOwn(f, target))).toBe(true);
  });
});
