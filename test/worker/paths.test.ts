import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { COORDINATOR_DATA_DIR_ENV, WORKER_DATA_DIR_ENV, coordinatorDefaultDataDir, defaultDataDir } from '../../src/worker/paths.js';

const saved = { worker: process.env[WORKER_DATA_DIR_ENV], coordinator: process.env[COORDINATOR_DATA_DIR_ENV] };
function restore(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
afterEach(() => {
  restore(WORKER_DATA_DIR_ENV, saved.worker);
  restore(COORDINATOR_DATA_DIR_ENV, saved.coordinator);
});

describe('default data dirs', () => {
  it('use the per-user data dir named after each app, without env-paths\' "-nodejs" suffix', () => {
    delete process.env[WORKER_DATA_DIR_ENV];
    delete process.env[COORDINATOR_DATA_DIR_ENV];
    const worker = defaultDataDir();
    const coordinator = coordinatorDefaultDataDir();
    expect(path.basename(process.platform === 'win32' ? path.dirname(worker) : worker)).toBe('GoGrid Worker');
    expect(coordinator).toContain('GoGrid Coordinator');
    expect(worker.startsWith(os.homedir()) || process.platform === 'win32').toBe(true);
    expect(path.isAbsolute(worker)).toBe(true);
    expect(`${worker}${coordinator}`).not.toContain('nodejs');
    if (process.platform === 'linux' && !process.env.XDG_DATA_HOME) {
      expect(worker).toBe(path.join(os.homedir(), '.local', 'share', 'GoGrid Worker'));
    }
  });

  it('follow their own environment overrides, resolved to absolute paths', () => {
    process.env[WORKER_DATA_DIR_ENV] = 'relative/worker-data';
    process.env[COORDINATOR_DATA_DIR_ENV] = path.join(os.tmpdir(), 'coord');
    expect(defaultDataDir()).toBe(path.resolve('relative/worker-data'));
    expect(coordinatorDefaultDataDir()).toBe(path.join(os.tmpdir(), 'coord'));
  });

  it('treat an empty override as unset', () => {
    delete process.env[WORKER_DATA_DIR_ENV];
    const fallback = defaultDataDir();
    process.env[WORKER_DATA_DIR_ENV] = '  ';
    expect(defaultDataDir()).toBe(fallback);
  });
});
