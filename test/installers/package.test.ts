/**
 * The packaged app, built by electron-builder itself (not a reading of its
 * YAML): the Linux `dir` target, with `electronDist` pointing at a stand-in
 * Electron folder, since the runtime cannot be downloaded here. Then what a
 * release would ship is checked where it lives, in app.asar: every module the
 * main process, the preload and the job processes load is inside, every
 * native binary is unpacked, no sources, tests or source maps. Last, the
 * packaged files run: main.js starts under the Electron stand-in in local
 * mode, goes online, and its own job process runs samples/mlp.onnx.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { extractFile, getRawHeader, listPackage } from '@electron/asar';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { mlpAnswer } from '../fixtures/make-onnx.js';
import { procStatFields } from '../../src/common/proc-stat.js';
import { startStandInApp, trayState, type StandInApp } from '../helpers/electron-app.js';
import { removeTempDirs, runCli, startTestCoordinator, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { WorkerList } from '../../src/protocol/api.js';
import { updatesDir } from '../../src/coordinator/http-updates.js';
import { within } from '../helpers/within.js';
import { NATIVE_BINARY, ROOT } from './builder.js';

/** What main.js, the preload and the processes the worker forks start from (src/worker/executors/entry-point.ts). */
const ENTRY_POINTS = [
  'dist/main/main.js',
  'dist/preload/preload.cjs',
  'dist/worker/executors/job-process.js',
  'dist/worker/executors/llm-probe-process.js',
  'dist/worker/executors/runtime-probe-process.js',
  'dist/worker/executors/gpu-probe-process.js',
];

let out: string;
let asar: string;
let files: Set<string>;
/** The packaged app's files, extracted (see extract). */
let root: string;

// dist/ is current (test/helpers/build-dist.ts): electron-builder packs it as it is.
beforeAll(async () => {
  out = await tempDir();
  // The stand-in Electron distribution: electron-builder copies this folder and renames
  // `electron` to the app's executable; it never runs it for a `dir` target.
  const electronDist = path.join(out, 'electron-dist');
  await mkdir(electronDist);
  await writeFile(path.join(electronDist, 'electron'), '#!/bin/sh\necho "a stand-in for the Electron runtime (test/installers/package.test.ts)" >&2\nexit 1\n');
  await chmod(path.join(electronDist, 'electron'), 0o755);
  const builder = spawn(
    process.execPath,
    [path.join(ROOT, 'node_modules/electron-builder/cli.js'), '--linux', 'dir', '--x64', '--publish', 'never', `-c.electronDist=${electronDist}`, `-c.directories.output=${path.join(out, 'release')}`],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CSC_IDENTITY_AUTO_DISCOVERY: 'false' } },
  );
  let log = '';
  builder.stdout.on('data', (d: Buffer) => (log += d.toString()));
  builder.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const code = await new Promise<number | null>((resolve) => builder.once('exit', resolve));
  if (code !== 0) throw new Error(`electron-builder failed (${code}):\n${log}`);
  asar = path.join(out, 'release', 'linux-unpacked', 'resources', 'app.asar');
  files = new Set(listPackage(asar, { isPack: false }).map((f) => f.slice(1)));
  root = await extract();
}, 180_000);
afterAll(removeTempDirs);

/**
 * app.asar extracted to resources/app (what `asar: false` would have shipped), each unpacked
 * file hard-linked from app.asar.unpacked. Inside Electron a module keeps its app.asar path
 * while its bytes come from app.asar.unpacked, so it resolves its dependencies among the
 * packed ones; a symbolic link would not do that (Node resolves from the link's target).
 */
async function extract(): Promise<string> {
  const root = path.join(out, 'run', 'resources', 'app');
  const unpacked = `${asar}.unpacked`;
  type Entry = { files?: Record<string, Entry>; unpacked?: boolean; link?: string };
  const walk = async (entry: Entry, at: string): Promise<void> => {
    for (const [name, child] of Object.entries(entry.files ?? {})) {
      const file = at ? `${at}/${name}` : name;
      const target = path.join(root, file);
      if (child.files) {
        await mkdir(target, { recursive: true });
        await walk(child, file);
      } else if (child.unpacked) {
        await link(path.join(unpacked, file), target);
      } else if (child.link !== undefined) {
        await symlink(path.relative(path.dirname(file), child.link), target);
      } else {
        await writeFile(target, extractFile(asar, file));
      }
    }
  };
  await mkdir(root, { recursive: true });
  await walk(getRawHeader(asar).header as Entry, '');
  // Beside app.asar, as packed: electron-updater's own settings (its cache folder's name).
  await copyFile(path.join(path.dirname(asar), 'app-update.yml'), path.join(path.dirname(root), 'app-update.yml'));
  return root;
}


describe('app.asar as electron-builder builds it (Linux dir target)', () => {
  it('holds every module the main process, the preload and the job processes load', async () => {
    // esbuild resolves the module graph from the entry points inside the extracted app, with
    // electron-builder's own layout of node_modules (it re-hoists the tree): a module that is
    // not there is a "Could not resolve" error. Followed as Node loads them: static imports and
    // require() calls; a package's import() of another platform's binary package (@node-llama-cpp/*)
    // or of an optional feature the app never reaches (ipull's @reflink, left out on purpose in
    // electron-builder.yml) is not followed.
    const result = await build({
      absWorkingDir: root,
      entryPoints: ENTRY_POINTS,
      bundle: true,
      platform: 'node',
      format: 'esm',
      write: false,
      metafile: true,
      outdir: path.join(out, 'esbuild'),
      external: ['electron', '*.node', '@node-llama-cpp/*', '@reflink/*'],
      logLevel: 'silent',
    }).catch((e: { errors?: Array<{ text: string; location: { file: string } | null }> }) => {
      throw new Error(`modules the packaged app cannot find:\n${(e.errors ?? []).map((x) => `${x.location?.file ?? '?'}: ${x.text}`).join('\n')}`);
    });
    const loaded = Object.keys(result.metafile.inputs);
    expect(loaded.length).toBeGreaterThan(500);
    // The local test mode's coordinator (an import() from main.js) came along.
    expect(loaded).toContain('dist/main/local-coordinator.js');
  });

  it('holds the files the app reads by path: the status page, the preload, the icons', () => {
    for (const file of ['dist/renderer/index.html', 'dist/preload/preload.cjs', 'assets/app/icon-512.png', 'assets/tray/idle-32.png', 'assets/tray/idleTemplate@2x.png', 'package.json']) {
      expect(files.has(file), file).toBe(true);
    }
  });

  it('unpacks every native binary: the OS loader reads the real file system, not app.asar', () => {
    type Entry = { files?: Record<string, Entry>; unpacked?: boolean };
    const natives: Array<{ file: string; unpacked: boolean }> = [];
    const walk = (entry: Entry, at: string) => {
      for (const [name, child] of Object.entries(entry.files ?? {})) {
        const file = at ? `${at}/${name}` : name;
        if (child.files) walk(child, file);
        else if (NATIVE_BINARY.test(name)) natives.push({ file, unpacked: child.unpacked === true });
      }
    };
    walk(getRawHeader(asar).header as Entry, '');
    expect(natives.map((n) => n.file)).toEqual(expect.arrayContaining(['node_modules/onnxruntime-node/bin/napi-v6/linux/x64/onnxruntime_binding.node']));
    expect(natives.some((n) => n.file.startsWith('node_modules/@matrixai/quic-linux-x64/'))).toBe(true);
    expect(natives.some((n) => n.file.startsWith('node_modules/@node-llama-cpp/linux-x64/'))).toBe(true);
    expect(natives.filter((n) => !n.unpacked)).toEqual([]);
    // Only this platform's: no Windows or macOS binaries in a Linux app.
    expect(natives.filter((n) => /\b(win32|darwin|win-|mac-)/.test(n.file))).toEqual([]);
  });

  it('leaves out sources, tests, benchmarks, source maps and the repository tooling', () => {
    const stray = [...files].filter((f) => /^(src|test|bench|scripts|installers|\.ci|\.github|release)\//.test(f) || f.endsWith('.map') || f === 'electron-builder.yml');
    expect(stray).toEqual([]);
  });
});

describe('the packaged app, run under the Electron stand-in', () => {
  let app: StandInApp;
  afterAll(() => app?.kill());

  it('starts in local mode, goes online, and runs samples/mlp.onnx in its own job process', async () => {
    app = startStandInApp({ entry: path.join(root, 'dist/main/main.js'), args: ['--local'], home: await tempDir(), packaged: true });
    await app.waitFor((e) => trayState(e) === 'Online, waiting for jobs', 'the packaged app online', 60_000);
    const coordinatorDir = /admin key: +(.+)[/\\]admin\.key/.exec(app.output())?.[1];
    expect(coordinatorDir, app.output()).toBeDefined();

    const submit = runCli(['submit', '--data', coordinatorDir!, '--model', path.join(ROOT, 'samples/mlp.onnx'), '--input', path.join(ROOT, 'samples/mlp-input.json'), '--wait', '--json']);
    expect(await within(60_000, () => `the job to finish: ${submit.stderr()}`, submit.exited), submit.stderr()).toBe(0);
    const job = z.object({ state: z.literal('succeeded'), output: z.object({ outputs: z.object({ y: z.object({ dims: z.array(z.number()), data: z.array(z.number()) }) }) }) }).parse(JSON.parse(submit.stdout()));
    expect(job.output.outputs.y.dims).toEqual([2, 3]);
    const expected = [...mlpAnswer([1, 2, 3, 4]), ...mlpAnswer([-1, 0, 0.5, 2])];
    job.output.outputs.y.data.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
    // It ran in a job process started from the packaged files (the pool keeps it warm).
    // Its children, from /proc (field 4 of stat is the parent pid): no procps needed.
    const children = readdirSync('/proc').filter((pid) => /^\d+$/.test(pid) && procStatFields(Number(pid))?.[1] === String(app.child.pid));
    const commands = await Promise.all(children.map((pid) => readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')));
    expect(commands.some((c) => c.includes(path.join(root, 'dist/worker/executors/job-process.js')))).toBe(true);

    await app.command({ type: 'tray-click', label: 'Quit GoGrid Worker' });
    expect(await app.exited).toBe(0);
  }, 120_000);

  /**
   * A worker home provisioned for `c`, and on `c` a newer release for it. electron-updater's
   * Linux self-update is the AppImage one (a .deb is left to apt): the app is told it runs as
   * one (APPIMAGE, as the AppImage runtime sets it), and each "AppImage" is a script that says
   * whether it ran.
   */
  async function offerRelease(c: TestCoordinator) {
    const home = await tempDir();
    await mkdir(path.join(home, '.config', 'gogrid'), { recursive: true });
    await writeFile(path.join(home, '.config', 'gogrid', 'provisioning.toml'), `[worker]\ncoordinator = "127.0.0.1:${c.port}"\ntoken = "${await c.createToken()}"\npreset = "dedicated"\n`);
    const appImage = path.join(home, 'GoGrid-Worker.AppImage');
    await writeFile(appImage, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const ran = path.join(home, 'new-version-ran');
    const next = Buffer.from(`#!/bin/sh\necho "installed silently: $APPIMAGE_SILENT_INSTALL" > '${ran}'\n`);
    const stable = path.join(updatesDir(c.dataDir), 'stable');
    await mkdir(stable, { recursive: true });
    const sha512 = createHash('sha512').update(next).digest('base64');
    const name = 'GoGrid-Worker-9.0.0.AppImage';
    await writeFile(path.join(stable, name), next);
    await writeFile(path.join(stable, 'latest-linux.yml'), `version: 9.0.0\nfiles:\n  - url: ${name}\n    sha512: ${sha512}\n    size: ${next.length}\npath: ${name}\nsha512: ${sha512}\nreleaseDate: '2026-12-01T00:00:00.000Z'\n`);
    return { home, appImage, next, ran };
  }

  it('updates itself from its coordinator once online: closes the status window, installs, quits, and the new version starts', async () => {
    const c = await startTestCoordinator();
    try {
      const { home, appImage, next, ran } = await offerRelease(c);
      const updating = startStandInApp({ entry: path.join(root, 'dist/main/main.js'), home, packaged: true, env: { APPIMAGE: appImage } });
      try {
        await updating.waitFor((e) => (trayState(e) ?? '') !== '', 'the tray menu');
        await updating.command({ type: 'tray-click', label: 'Open status window' });
        expect(await within(60_000, () => `the app to update and quit:\n${updating.output().slice(-3000)}`, updating.exited)).toBe(0);
      } finally {
        updating.kill();
      }
      const types = updating.events.map((e) => e.type);
      // The window goes first: one that only hides on close would cancel the quit (Squirrel.Mac closes windows first).
      expect(types.indexOf('window-destroyed')).toBeGreaterThan(types.indexOf('window-show'));
      expect(types.indexOf('window-destroyed')).toBeLessThan(types.indexOf('before-quit'));
      expect(updating.output()).toMatch(/installing the update and restarting/);
      expect(Buffer.compare(await readFile(appImage), next)).toBe(0);
      await expect.poll(() => readFile(ran, 'utf8').catch(() => ''), { timeout: 10_000 }).toBe('installed silently: true\n');
    } finally {
      await c.stop();
    }
  }, 120_000);

  it('takes jobs again when the install fails, and stays up', async () => {
    const c = await startTestCoordinator();
    try {
      const { home, appImage } = await offerRelease(c);
      // The AppImage it runs from is gone by install time: electron-updater cannot replace it.
      const updating = startStandInApp({ entry: path.join(root, 'dist/main/main.js'), home, packaged: true, env: { APPIMAGE: `${appImage}.gone` } });
      try {
        await within(60_000, () => `the install to fail:\n${updating.output().slice(-3000)}`, new Promise<void>((resolve) => {
          const check = setInterval(() => /the update failed: .*; taking jobs again/.test(updating.output()) && (clearInterval(check), resolve()), 100);
        }));
        // Not drained: online and offering itself for jobs again, with the app still running.
        await expect.poll(async () => WorkerList.parse(await c.api('GET', '/v1/workers'))[0]?.state, { timeout: 10_000 }).toBe('online');
        expect(updating.child.exitCode).toBeNull();
        await updating.command({ type: 'tray-click', label: 'Quit GoGrid Worker' });
        expect(await updating.exited).toBe(0);
      } finally {
        updating.kill();
      }
    } finally {
      await c.stop();
    }
  }, 120_000);
});

