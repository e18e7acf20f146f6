import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockDataDir } from '../../src/common/lock.js';

let dir: string;
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fresh(): Promise<string> {
  dir = await mkdtemp(join(tmpdir(), 'gogrid-lock-'));
  return dir;
}

describe('data dir lock', () => {
  it('writes our pid and removes the file on release', async () => {
    const d = await fresh();
    const lock = await lockDataDir(d, 'worker');
    expect((await readFile(join(d, 'lock.pid'), 'utf8')).split('\n')).toEqual([String(process.pid), basename(process.execPath), '']);
    await lock.release();
    await expect(readFile(join(d, 'lock.pid'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a data dir held by another live process, naming its pid', async () => {
    const d = await fresh();
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      await writeFile(join(d, 'lock.pid'), `${other.pid}\n`);
      await expect(lockDataDir(d, 'coordinator')).rejects.toMatchObject({
        code: 'GG_ERR_CONFIG_INVALID',
        message: expect.stringContaining(`another coordinator (pid ${other.pid})`),
      });
    } finally {
      other.kill('SIGKILL');
      await once(other, 'exit');
    }
    // Once that process is gone, its lock is stale and taken over.
    const lock = await lockDataDir(d, 'coordinator');
    expect((await readFile(join(d, 'lock.pid'), 'utf8')).split('\n')[0]).toBe(String(process.pid));
    await lock.release();
  });

  it('takes over a lock whose pid now belongs to another program (a pid reused after a logoff), and keeps one whose program matches', async () => {
    const d = await fresh();
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    try {
      // Written by the desktop app, long gone; its pid now runs node.
      await writeFile(join(d, 'lock.pid'), `${other.pid}\nGoGrid Worker.exe\n`);
      const lock = await lockDataDir(d, 'worker');
      expect((await readFile(join(d, 'lock.pid'), 'utf8')).split('\n')[0]).toBe(String(process.pid));
      await lock.release();
      // The same pid, naming the program it runs: a live owner, refused.
      await writeFile(join(d, 'lock.pid'), `${other.pid}\n${basename(process.execPath)}\n`);
      await expect(lockDataDir(d, 'worker')).rejects.toMatchObject({ message: expect.stringContaining(`another worker (pid ${other.pid})`) });
    } finally {
      other.kill('SIGKILL');
      await once(other, 'exit');
    }
  });

  it('takes over a lock file with garbage in it', async () => {
    const d = await fresh();
    await writeFile(join(d, 'lock.pid'), 'not a pid');
    const lock = await lockDataDir(d, 'worker');
    await lock.release();
  });
});
