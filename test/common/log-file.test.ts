/** Logs on disk (src/common/log-file.ts): real files, real pino. */
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { LOG_FILES, openLogFile } from '../../src/common/log-file.js';
import { isGridError } from '../../src/protocol/index.js';
import { removeTempDirs, tempDir } from '../helpers/grid.js';

afterAll(removeTempDirs);

describe('openLogFile', () => {
  it('writes each line before the call returns, as JSON, creating the folders private', async () => {
    const dir = join(await tempDir(), 'data', 'logs');
    const file = await openLogFile(join(dir, 'worker'));
    const logger = pino({ level: 'info' }, file.stream);
    logger.info({ jobId: 'j-1' }, 'job succeeded');
    expect(file.dir).toBe(dir);
    if (process.platform !== 'win32') {
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
      expect((await stat(dirname(dir))).mode & 0o777).toBe(0o700);
    }
    const lines = (await readFile(join(dir, 'worker.1.log'), 'utf8')).trim().split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([expect.objectContaining({ level: 30, jobId: 'j-1', msg: 'job succeeded' })]);
  });

  it('keeps its files private (0600), also one an earlier version left readable by everyone', async () => {
    if (process.platform === 'win32') return;
    const dir = await tempDir();
    await writeFile(join(dir, 'worker.1.log'), '{}\n', { mode: 0o644 });
    await chmod(join(dir, 'worker.1.log'), 0o644);
    const file = await openLogFile(join(dir, 'worker'));
    pino({ level: 'info' }, file.stream).info('after the upgrade');
    file.close();
    expect((await stat(join(dir, 'worker.1.log'))).mode & 0o777).toBe(0o600);
    // A file it creates itself is private from the start (the first test's, in a new folder).
    const fresh = await openLogFile(join(dir, 'new', 'worker'));
    fresh.close();
    expect((await stat(join(dir, 'new', 'worker.1.log'))).mode & 0o777).toBe(0o600);
  });

  it(`rolls over at its size and keeps the newest ${LOG_FILES} files across restarts`, async () => {
    const dir = await tempDir();
    const line = 'x'.repeat(300);
    for (let run = 0; run < 4; run++) {
      const file = await openLogFile(join(dir, 'worker'), { maxBytes: 2048 });
      const logger = pino({ level: 'info' }, file.stream);
      for (let i = 0; i < 20; i++) logger.info({ run, i }, line);
      file.close();
    }
    const files = (await readdir(dir)).filter((f) => f.endsWith('.log')).sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]));
    expect(files.length).toBeLessThanOrEqual(LOG_FILES);
    // The newest file holds the last run's last line.
    const last = (await readFile(join(dir, files.at(-1)!), 'utf8')).trim().split('\n').at(-1)!;
    expect(JSON.parse(last)).toMatchObject({ run: 3, i: 19 });
  });

  it('says which path it cannot write to', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'not-a-folder'), '');
    const err = await openLogFile(join(dir, 'not-a-folder', 'worker')).catch((e: unknown) => e);
    expect(isGridError(err, 'GG_ERR_CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toContain(join(dir, 'not-a-folder', 'worker'));
  });
});
