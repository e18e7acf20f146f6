// `npm start` where the Electron runtime is missing (these machines): one
// line that says so and points to the headless equivalent, exit code 1,
// and no attempt to download the runtime.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../scripts/start-app.mjs', import.meta.url));

function startApp(env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SCRIPT], { env: { ...process.env, ...env }, timeout: 20_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

describe('npm start without the Electron runtime', () => {
  it('says so in one line, points to gogrid local, and exits 1', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'gogrid-no-electron-'));
    try {
      // An override dist without a binary: missing however electron's package looks on this machine.
      const { code, stdout, stderr } = await startApp({ ELECTRON_OVERRIDE_DIST_PATH: empty });
      expect(code).toBe(1);
      expect(stdout).toBe('');
      expect(stderr.split('\n').filter(Boolean)).toEqual([expect.stringMatching(/^npm start: the Electron runtime is not installed here .*`npx gogrid local`/)]);
      expect(stderr).not.toMatch(/Downloading Electron/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
