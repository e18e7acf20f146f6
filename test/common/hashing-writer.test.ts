import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HashingWriter } from '../../src/common/hashing-writer.js';
import { removeTempDirs, tempDir } from '../helpers/grid.js';

afterAll(removeTempDirs);

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function writeInChunks(w: HashingWriter, bytes: Buffer, chunk: number): Promise<void> {
  for (let at = 0; at < bytes.length; at += chunk) await w.write(bytes.subarray(at, at + chunk));
}

describe('HashingWriter', () => {
  it('writes and hashes chunks of any size across its batches', async () => {
    const file = join(await tempDir(), 'f');
    // Odd chunk sizes straddle the 1 MiB batches; 20 MiB passes the background flush point.
    const bytes = randomBytes(20 * 1024 * 1024 + 12_345);
    const w = await HashingWriter.open(file, { flags: 'wx' });
    await writeInChunks(w, bytes, 10_007);
    expect(w.bytes).toBe(bytes.length);
    expect(await w.finish()).toEqual({ sha256: sha(bytes), bytes: bytes.length });
    await w.close(); // after finish: nothing to do
    expect((await readFile(file)).equals(bytes)).toBe(true);
  });

  it('appends after the bytes already in the file, hashing them too', async () => {
    const file = join(await tempDir(), 'f');
    const bytes = randomBytes(3 * 1024 * 1024);
    await writeFile(file, bytes.subarray(0, 1_000_000));
    const w = await HashingWriter.open(file, { flags: 'a' });
    expect(w.bytes).toBe(1_000_000);
    await writeInChunks(w, bytes.subarray(1_000_000), 65_536);
    expect((await w.finish()).sha256).toBe(sha(bytes));
  });

  it('keeps every byte it accepted when closed without a digest', async () => {
    const file = join(await tempDir(), 'f');
    const bytes = randomBytes(2_500_000);
    const w = await HashingWriter.open(file, { flags: 'w' });
    await writeInChunks(w, bytes, 16_384);
    await w.close();
    await w.close();
    expect((await readFile(file)).equals(bytes)).toBe(true);
  });

  it('reports the file system error of open', async () => {
    const file = join(await tempDir(), 'f');
    await writeFile(file, 'taken');
    await expect(HashingWriter.open(file, { flags: 'wx' })).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(HashingWriter.open(join(file, 'not-a-dir', 'x'), { flags: 'a' })).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});
