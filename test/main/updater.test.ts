/**
 * Applying a downloaded update (src/main/updater.ts) with electron-updater
 * stood in for at its boundary (it needs the Electron runtime to install):
 * the worker drains first, the windows are closed before quitAndInstall (a
 * window that only hides would cancel Squirrel.Mac's quit), and an install
 * that does not happen, or fails, gives the worker its jobs back.
 */
import { EventEmitter, once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AppUpdater } from 'electron-updater';
import pino from 'pino';
import { startUpdater, type UpdaterHost } from '../../src/main/updater.js';

/** electron-updater's AppUpdater, as much of it as startUpdater uses; quitAndInstall records and does nothing (the app does not quit here). */
class StandInUpdater extends EventEmitter {
  logger: unknown = null;
  autoDownload = false;
  autoInstallOnAppQuit = false;
  installs = 0;
  setFeedURL(): void {}
  async checkForUpdates(): Promise<null> {
    return null;
  }
  quitAndInstall(): void {
    this.installs++;
    this.emit('test:install');
  }
}

/** A worker host with one running job, which drain() lets finish. */
function host(): UpdaterHost & { events: string[]; undrained: Promise<unknown> } {
  const events: string[] = [];
  const state = { runningJobs: 1, draining: false };
  const signal = new EventEmitter();
  return {
    events,
    undrained: once(signal, 'undrain'),
    feed: () => null,
    jobs: () => ({ ...state }),
    async drain(reason) {
      events.push(`drain: ${reason}`);
      Object.assign(state, { runningJobs: 0, draining: true });
    },
    undrain(reason) {
      events.push(`undrain: ${reason}`);
      state.draining = false;
      signal.emit('undrain');
    },
    beforeInstall: () => events.push('windows closed'),
    logger: pino({ level: 'silent' }),
  };
}

describe('applying an update', () => {
  // Self-update is for AppImages on Linux (selfUpdateBlocker); this test stands in for one.
  beforeEach(() => {
    process.env['APPIMAGE'] = '/tmp/GoGrid.AppImage';
  });
  afterEach(() => {
    delete process.env['APPIMAGE'];
  });

  /** An updater on a stand-in, after an update was downloaded and quitAndInstall called; `stop` ends it. */
  async function installing(h: UpdaterHost, installTimeoutMs: number): Promise<{ updater: StandInUpdater; stop(): void }> {
    const updater = new StandInUpdater();
    const running = startUpdater(h, { updater: updater as unknown as AppUpdater, installTimeoutMs });
    const installed = once(updater, 'test:install');
    updater.emit('update-downloaded', { version: '9.9.9' });
    await installed;
    return { updater, stop: running.stop };
  }

  it('drains, closes the windows, installs, and takes jobs again when the app is still running past the install timeout', async () => {
    const h = host();
    const { updater, stop } = await installing(h, 200);
    try {
      expect(h.events).toEqual(['drain: an update is ready; taking no new jobs until 1 job finish', 'windows closed']);
      await h.undrained;
      expect(h.events[2]).toBe('undrain: the update to 9.9.9 did not install within 0.2 s');
      expect(updater.installs).toBe(1);
    } finally {
      stop();
    }
  });

  it('takes jobs again at once when the installer reports an error', async () => {
    const h = host();
    const { updater, stop } = await installing(h, 60_000);
    try {
      updater.emit('error', new Error('Squirrel.Mac: code signature invalid'));
      await h.undrained;
      expect(h.events.at(-1)).toBe('undrain: the update failed: Squirrel.Mac: code signature invalid');
    } finally {
      stop();
    }
  });
});
