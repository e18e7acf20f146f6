/**
 * The update feed over real HTTPS: an operator's release files in
 * `<data dir>/updates/stable/`, served to an enrolled worker's certificate,
 * and electron-updater itself (its generic provider, semver comparison and
 * sha512-checked download, run in plain Node with the app's own HTTP client
 * from src/main/updater.ts) reading that feed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import electronUpdater, { type AppUpdater } from 'electron-updater';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { updatesDir } from '../../src/coordinator/http-updates.js';
import { selfUpdateBlocker, updateFeed, useCoordinatorFeed } from '../../src/main/updater.js';
import { enroll } from '../../src/worker/enroll.js';
import type { WorkerIdentity } from '../../src/worker/identity.js';
import { removeTempDirs, startTestCoordinator, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { rawRequest } from '../helpers/https-raw.js';

let c: TestCoordinator;
let worker: WorkerIdentity;
const deb = randomBytes(256 * 1024 + 7);
const DEB_NAME = 'gogrid-worker_0.2.0_amd64.deb';
// electron-updater's name for this platform's channel file (Provider.getChannelFilePrefix).
const CHANNEL_FILE = process.arch === 'x64' ? 'latest-linux.yml' : `latest-linux-${process.arch}.yml`;

/** latest-linux.yml as electron-builder writes it next to the installers. */
function channelFile(version: string, sha512 = createHash('sha512').update(deb).digest('base64')): string {
  return [
    `version: ${version}`,
    'files:',
    `  - url: ${DEB_NAME}`,
    `    sha512: ${sha512}`,
    `    size: ${deb.length}`,
    `path: ${DEB_NAME}`,
    `sha512: ${sha512}`,
    "releaseDate: '2026-01-02T03:04:05.000Z'",
    '',
  ].join('\n');
}

async function enrolled(): Promise<WorkerIdentity> {
  return enroll({ dataDir: await tempDir('gogrid-worker-'), coordinator: { host: '127.0.0.1', port: c.port }, token: await c.createToken() });
}

beforeAll(async () => {
  c = await startTestCoordinator();
  worker = await enrolled();
  const stable = join(updatesDir(c.dataDir), 'stable');
  await mkdir(stable, { recursive: true });
  await writeFile(join(stable, CHANNEL_FILE), channelFile('0.2.0'));
  await writeFile(join(stable, DEB_NAME), deb);
});
afterAll(async () => {
  await c.stop();
  await removeTempDirs();
});

function get(path: string, opts: { identity?: WorkerIdentity | null; headers?: Record<string, string>; method?: 'GET' | 'HEAD' } = {}) {
  const identity = opts.identity === undefined ? worker : opts.identity;
  return rawRequest({
    url: `${c.apiUrl}${path}`,
    method: opts.method,
    ca: c.ca.material.certPem,
    ...(identity ? { cert: identity.certPem, key: identity.keyPem } : {}),
    headers: opts.headers,
  });
}

describe('GET /updates/:channel/:file', () => {
  it('serves the channel file uncached, as YAML, to a worker certificate', async () => {
    const res = await get(`/updates/stable/${CHANNEL_FILE}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/yaml; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.body.toString('utf8')).toBe(channelFile('0.2.0'));
  });

  it('serves an installer whole, in a range, and its size on HEAD', async () => {
    const whole = await get(`/updates/stable/${DEB_NAME}`);
    expect(whole.status).toBe(200);
    expect(whole.headers['content-type']).toBe('application/octet-stream');
    expect(whole.body.equals(deb)).toBe(true);

    const part = await get(`/updates/stable/${DEB_NAME}`, { headers: { range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 1000-1999/${deb.length}`);
    expect(part.body.equals(deb.subarray(1000, 2000))).toBe(true);

    const head = await get(`/updates/stable/${DEB_NAME}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(deb.length));
    expect(head.body.length).toBe(0);

    const outside = await get(`/updates/stable/${DEB_NAME}`, { headers: { range: `bytes=${deb.length}-` } });
    expect(outside.status).toBe(416);
    expect(outside.headers['content-range']).toBe(`bytes */${deb.length}`);
  });

  it('refuses a request without a worker certificate, and a revoked worker', async () => {
    const anonymous = await get(`/updates/stable/${CHANNEL_FILE}`, { identity: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.json()).toMatchObject({ error: { code: 'GG_ERR_UNAUTHENTICATED' } });

    const revoked = await enrolled();
    await c.api('POST', `/v1/workers/${revoked.workerId}/revoke`);
    const res = await get(`/updates/stable/${CHANNEL_FILE}`, { identity: revoked });
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ error: { code: 'GG_ERR_WORKER_REVOKED' } });
  });

  it('lets an operator check the feed with the admin API key', async () => {
    const res = await get(`/updates/stable/${CHANNEL_FILE}`, { identity: null, headers: { authorization: `Bearer ${c.adminKey}` } });
    expect(res.status).toBe(200);
  });

  it('serves nothing outside a channel folder', async () => {
    for (const path of ['/updates/stable/..%2F..%2Fadmin.key', '/updates/..%2F/admin.key', '/updates/stable/.hidden']) {
      const res = await get(path);
      expect(res.status, path).toBe(400);
    }
    const missing = await get('/updates/beta/latest.yml');
    expect(missing.status).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'GG_ERR_NOT_FOUND', message: expect.stringContaining(join(updatesDir(c.dataDir), 'beta')) as unknown } });
  });
});

describe('electron-updater against the served feed', () => {
  /** A Linux deb install as electron-updater sees it, without Electron: an AppAdapter of our own. */
  async function debUpdater(version: string, identity = worker): Promise<AppUpdater> {
    const dir = await tempDir('gogrid-updater-');
    // What electron-builder writes into resources/ for the deb target.
    const configPath = join(dir, 'app-update.yml');
    await writeFile(configPath, 'provider: generic\nurl: https://gogrid-coordinator.invalid/updates/stable\nupdaterCacheDirName: gogrid-worker-updater\n');
    const updater = new electronUpdater.DebUpdater(null, {
      version,
      name: 'GoGrid Worker',
      isPackaged: true,
      appUpdateConfigPath: configPath,
      userDataPath: join(dir, 'user-data'),
      baseCachePath: join(dir, 'cache'),
      whenReady: () => Promise.resolve(),
      relaunch: () => undefined,
      quit: () => undefined,
      onQuit: () => undefined,
    });
    updater.logger = null;
    updater.autoDownload = false;
    const feed = updateFeed(identity);
    useCoordinatorFeed(updater, feed.url, () => feed.tls);
    return updater;
  }

  it('uses the builder-util-runtime that electron-updater itself loads', () => {
    const fromUpdater = createRequire(createRequire(import.meta.url).resolve('electron-updater')).resolve('builder-util-runtime');
    expect(createRequire(join(import.meta.dirname, '../../src/main/updater.ts')).resolve('builder-util-runtime')).toBe(fromUpdater);
  });

  it('finds the newer version and downloads it with its sha512 checked', async () => {
    const updater = await debUpdater('0.1.0');
    const check = await updater.checkForUpdates();
    expect(check?.isUpdateAvailable).toBe(true);
    expect(check?.updateInfo.version).toBe('0.2.0');
    const downloaded = new Promise<{ version: string; downloadedFile: string }>((resolve) => updater.once('update-downloaded', resolve));
    const [file] = await updater.downloadUpdate();
    expect((await readFile(file!)).equals(deb)).toBe(true);
    expect(await downloaded).toMatchObject({ version: '0.2.0', downloadedFile: file });
  });

  it('compares versions as semver: equal and older are not updates', async () => {
    // 0.10.0 is newer than the feed's 0.2.0 (numeric order; as strings it would sort first).
    for (const current of ['0.2.0', '0.10.0', '1.0.0']) {
      const check = await (await debUpdater(current)).checkForUpdates();
      expect(check?.isUpdateAvailable, current).toBe(false);
    }
    for (const current of ['0.1.9', '0.2.0-beta.1']) {
      expect((await (await debUpdater(current)).checkForUpdates())?.isUpdateAvailable, current).toBe(true);
    }
  });

  it('rejects a download whose bytes do not match the channel file', async () => {
    const stable = join(updatesDir(c.dataDir), 'stable');
    await writeFile(join(stable, CHANNEL_FILE), channelFile('0.2.0', createHash('sha512').update('other bytes').digest('base64')));
    try {
      const updater = await debUpdater('0.1.0');
      updater.on('error', () => undefined);
      expect((await updater.checkForUpdates())?.isUpdateAvailable).toBe(true);
      await expect(updater.downloadUpdate()).rejects.toThrow(/sha512 checksum mismatch/);
    } finally {
      await writeFile(join(stable, CHANNEL_FILE), channelFile('0.2.0'));
    }
  });

  it('fails the check for a revoked worker', async () => {
    const revoked = await enrolled();
    await c.api('POST', `/v1/workers/${revoked.workerId}/revoke`);
    const updater = await debUpdater('0.1.0', revoked);
    updater.on('error', () => undefined);
    await expect(updater.checkForUpdates()).rejects.toThrow(/403/);
  });
});

describe('selfUpdateBlocker', () => {
  it('lets an NSIS, macOS or AppImage install update itself, and leaves an MSI or a .deb to how it was deployed', () => {
    expect(selfUpdateBlocker('linux', '/tmp/.mount_x/gogrid-worker', 'GoGrid Worker', { APPIMAGE: '/home/a/GoGrid.AppImage' })).toBeNull();
    expect(selfUpdateBlocker('linux', '/opt/GoGrid Worker/gogrid-worker', 'GoGrid Worker', {})).toMatch(/^installed from a \.deb: updates come with apt/);
    expect(selfUpdateBlocker('darwin')).toBeNull();
    expect(selfUpdateBlocker('win32', 'C:\\Program Files\\GoGrid Worker\\GoGrid Worker.exe')).toMatch(/installed from an \.msi/);
  });
});
