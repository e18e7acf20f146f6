/**
 * electron-builder's own code, loaded without Electron, for the installer
 * tests: its YAML reader and JSON schema, its file matcher and macro
 * expander (so globs are evaluated exactly as a release build evaluates
 * them), and the list of packages it would pack (npm's production tree,
 * which is what its node-module collector asks npm for).
 */
import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, type Stats } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { z } from 'zod';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CONFIG_FILE = path.join(ROOT, 'electron-builder.yml');

const require = createRequire(import.meta.url);
const libRequire = createRequire(require.resolve('app-builder-lib/package.json'));

/** The same js-yaml electron-builder reads electron-builder.yml with (app-builder-lib/out/util/config/load.js). */
const yaml = libRequire('js-yaml') as { load(text: string): unknown };

type Filter = (file: string, stat: Stats & { moduleFullFilePath?: string }) => boolean;
interface FileMatcher {
  readonly patterns: string[];
  isEmpty(): boolean;
  containsOnlyIgnore(): boolean;
  createFilter(): Filter;
}
interface FileMatcherModule {
  FileMatcher: new (from: string, to: string, expand: (p: string) => string, patterns?: string[]) => FileMatcher;
  getNodeModuleFileMatcher(appDir: string, to: string, expand: (p: string) => string, platformOptions: object, packager: object): FileMatcher;
  getFileMatchers(config: object, name: 'files' | 'asarUnpack', to: string, options: object): FileMatcher[] | null;
  getMainFileMatchers(appDir: string, to: string, expand: (p: string) => string, platformOptions: object, platformPackager: object, outDir: string, isElectronCompile: boolean): FileMatcher[];
}
export const fileMatcher = libRequire('./out/fileMatcher.js') as FileMatcherModule;
/**
 * electron-builder's own normalisation of a loaded configuration (what getConfig
 * hands every build): strings in a top-level `files` become one file set of their
 * own, which changes how a platform's `files` combine with them (see appFileFilter).
 */
const { doMergeConfigs } = libRequire('./out/util/config/config.js') as { doMergeConfigs(configs: object[]): Record<string, unknown> };
const { expandMacro } = libRequire('./out/util/macroExpander.js') as {
  expandMacro(pattern: string, arch: string | null, appInfo: object, extra: Record<string, string>): string;
};

export function readBuilderConfig(file = CONFIG_FILE): Record<string, unknown> {
  return z.record(z.string(), z.unknown()).parse(yaml.load(readFileSync(file, 'utf8')));
}

/** electron-builder's configuration keys for the three release targets. */
export const TARGETS = [
  { platform: 'linux', arch: 'x64', key: 'linux' },
  { platform: 'win32', arch: 'x64', key: 'win' },
  { platform: 'darwin', arch: 'arm64', key: 'mac' },
] as const;
export type Target = (typeof TARGETS)[number];

const APP_OUT = '/release/app';

/** How platformPackager.ts expands `${arch}`, `${os}` and `${/*}` in file patterns for one target. */
export function macroExpander(target: Target): (pattern: string) => string {
  return (pattern) => expandMacro(pattern, target.arch, { productName: 'GoGrid Worker' }, { os: target.key, '/*': '{,/**/*}' });
}

function platformOptions(config: Record<string, unknown>, target: Target): object {
  return z.object({}).passthrough().parse(config[target.key] ?? {});
}

/** The app's own files (not node_modules) electron-builder would pack for `target`, by relative path. */
export function appFileFilter(raw: Record<string, unknown>, target: Target): (relative: string, isDirectory?: boolean) => boolean {
  const expand = macroExpander(target);
  const config = doMergeConfigs([structuredClone(raw)]);
  const info = { projectDir: ROOT, buildResourcesDir: path.join(ROOT, 'installers'), isPrepackedAppAsar: false, config, debugLogger: { isEnabled: false } };
  // Every matcher copies into the app (copyFiles), so a file is packed when any of them keeps it.
  const filters = fileMatcher
    .getMainFileMatchers(ROOT, APP_OUT, expand, platformOptions(config, target), { info }, path.join(ROOT, 'release'), false)
    .map((matcher) => {
      if (matcher.isEmpty() || matcher.containsOnlyIgnore()) matcher.patterns.unshift('**/*');
      return matcher.createFilter();
    });
  return (relative, isDirectory = false) => filters.some((filter) => filter(path.join(ROOT, relative), fakeStat(isDirectory)));
}

/** Whether electron-builder's asarUnpack matcher would unpack a packed file (relative path inside the app). */
export function asarUnpackFilter(config: Record<string, unknown>, target: Target): (relative: string) => boolean {
  const options = { macroExpander: macroExpander(target), customBuildOptions: platformOptions(config, target), globalOutDir: path.join(ROOT, 'release'), defaultSrc: ROOT };
  const matchers = fileMatcher.getFileMatchers(config, 'asarUnpack', APP_OUT, options);
  if (!matchers?.[0]) return () => false;
  const filter = matchers[0].createFilter();
  return (relative) => filter(path.join(ROOT, relative), Object.assign(fakeStat(false), { moduleFullFilePath: relative }));
}

/** Directories of the packages electron-builder packs: the production dependency tree, root excluded. */
export function runtimePackageDirs(): string[] {
  // npm exits non-zero for tree warnings (an override it calls invalid) yet still lists every package.
  const result = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const dirs = (result.stdout ?? '').split('\n').filter((dir) => dir !== '' && dir !== ROOT);
  if (dirs.length === 0) throw new Error(`npm ls listed no packages: ${result.error?.message ?? result.stderr}`);
  return dirs;
}

/**
 * Every file of the given package directories that electron-builder would
 * keep for `target`, as NodeModuleCopyHelper walks them: a directory the
 * filter refuses is not entered.
 */
export function keptNodeModuleFiles(raw: Record<string, unknown>, target: Target, packageDirs: ReadonlyArray<{ dir: string; relative: string }>): string[] {
  const expand = macroExpander(target);
  const config = doMergeConfigs([structuredClone(raw)]);
  const moduleMatcher = fileMatcher.getNodeModuleFileMatcher(ROOT, APP_OUT, expand, platformOptions(config, target), { config, debugLogger: { isEnabled: false } });
  const kept: string[] = [];
  for (const { dir, relative } of packageDirs) {
    const matcher = new fileMatcher.FileMatcher(dir, path.join(APP_OUT, relative), expand, moduleMatcher.patterns);
    // As NodeModuleCopyHelper does: no patterns at all means no filter, not "match nothing".
    walk(dir, relative, matcher.isEmpty() ? () => true : matcher.createFilter(), kept);
  }
  return kept.sort();
}

function walk(dir: string, relative: string, filter: Filter, out: string[]): void {
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    const stat = Object.assign(lstatSync(full), { moduleFullFilePath: path.posix.join(relative, name) });
    if (!filter(full, stat)) continue;
    if (stat.isDirectory()) walk(full, stat.moduleFullFilePath, filter, out);
    else out.push(stat.moduleFullFilePath);
  }
}

function fakeStat(isDirectory: boolean): Stats {
  return Object.assign(Object.create(null) as Stats, { isDirectory: () => isDirectory, isFile: () => !isDirectory, isSymbolicLink: () => false });
}

/** Shared libraries and Node addons: what the OS loader must find on the real file system. */
export const NATIVE_BINARY = /\.(node|dll|dylib|so)(\.\d+)*$/;
