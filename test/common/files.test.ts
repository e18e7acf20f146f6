import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { readJsonFile } from '../../src/common/files.js';

const Info = z.object({ port: z.number().int(), name: z.string().default('grid') });
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gogrid-files-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function failure(file: string): Promise<{ code: string; message: string }> {
  return readJsonFile(file, Info).then(
    () => expect.unreachable(),
    (e: { code: string; message: string }) => ({ code: e.code, message: e.message }),
  );
}

describe('readJsonFile', () => {
  it("returns the schema's output, defaults filled in", async () => {
    await writeFile(join(dir, 'a.json'), '{"port": 8443}');
    expect(await readJsonFile(join(dir, 'a.json'), Info)).toEqual({ port: 8443, name: 'grid' });
  });

  it('returns null for a file that does not exist', async () => {
    expect(await readJsonFile(join(dir, 'none.json'), Info)).toBeNull();
  });

  it.each([
    ['not JSON', '{"port": ', /^FILE is not valid JSON \(.+\)$/],
    ['empty', '', /^FILE is not valid JSON \(.+\)$/],
    ['a bad field', '{"port": "x"}', /^FILE: port: Invalid input: expected number, received string$/],
    ['not an object', '[]', /^FILE: \(root\): Invalid input: expected object, received array$/],
  ])('names the file and the problem when it is %s', async (_name, text, message) => {
    const file = join(dir, 'a.json');
    await writeFile(file, text);
    const e = await failure(file);
    expect(e.code).toBe('GG_ERR_CONFIG_INVALID');
    expect(e.message.replace(file, 'FILE')).toMatch(message);
  });

  it('names a file it cannot read', async () => {
    const file = join(dir, 'a.json');
    await mkdir(file);
    expect(await failure(file)).toEqual({ code: 'GG_ERR_CONFIG_INVALID', message: expect.stringMatching(new RegExp(`^cannot read ${file}: EISDIR`)) });
  });
});
