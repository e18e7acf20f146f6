import fs from 'node:fs/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { controlFilePath, readControlFile, removeControlFile, writeControlFile } from '../../../src/worker/control/control-file.js';

let dir: string;
const info = { url: 'http://127.0.0.1:4567', token: 't0k3n', pid: 4242 };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gogrid-control-file-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await rm(dir, { recursive: true, force: true });
});

describe('control.json', () => {
  it('reads back what was written, and null when there is none', async () => {
    expect(await readControlFile(dir)).toBeNull();
    await writeControlFile(dir, info);
    expect(await readControlFile(dir)).toEqual(info);
    expect((await fs.stat(controlFilePath(dir))).mode & 0o777).toBe(0o600);
  });

  it('tells another user to run as the worker’s user', async () => {
    vi.spyOn(fs, 'readFile').mockRejectedValueOnce(Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' }));
    await expect(readControlFile(dir)).rejects.toMatchObject({ code: 'GG_ERR_UNAUTHENTICATED', message: `cannot read ${controlFilePath(dir)}: run this as the user the worker runs as` });
  });

  it('names the bad field of a file that is not a control file', async () => {
    await writeFile(controlFilePath(dir), JSON.stringify({ ...info, pid: -1 }));
    await expect(readControlFile(dir)).rejects.toMatchObject({ code: 'GG_ERR_CONFIG_INVALID', message: expect.stringMatching(/control\.json: pid: Too small/) });
  });

  it('removes the file only while it names this endpoint', async () => {
    await writeControlFile(dir, info);
    await removeControlFile(dir, 'another token');
    expect(await readControlFile(dir)).toEqual(info);
    await removeControlFile(dir, info.token);
    expect(await readControlFile(dir)).toBeNull();
  });
});
