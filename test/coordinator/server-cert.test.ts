/**
 * The coordinator's serving certificate is kept across restarts (a fresh one at
 * every start moved its notBefore, and shut out workers whose clock ran
 * behind), and replaced when it no longer fits.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateCa, loadOrIssueServerCert } from '../../src/coordinator/ca.js';
import { createCa, issueServerCert, readCert } from '../../src/transport/pki.js';
import { removeTempDirs, tempDir } from '../helpers/grid.js';

afterAll(removeTempDirs);

describe('the serving certificate', () => {
  it('is issued once, backdated a day, and the same at the next start', async () => {
    const dir = await tempDir();
    const ca = await loadOrCreateCa(dir);
    const first = await loadOrIssueServerCert(dir, ca, ['gogrid-coordinator', 'localhost']);
    expect(await readFile(join(dir, 'server.crt'), 'utf8')).toBe(first.certPem);
    expect(Date.now() - readCert(first.certPem).notBefore.getTime()).toBeGreaterThan(23 * 3600_000);
    expect(await loadOrIssueServerCert(dir, ca, ['localhost', 'gogrid-coordinator'])).toEqual(first);
  });

  it.each([
    ['it names other hosts', async () => undefined, ['gogrid-coordinator', 'grid.example.com']],
    [
      'another CA issued it',
      async (dir: string) => {
        const other = await issueServerCert(await createCa({ commonName: 'other' }), { dnsNames: ['gogrid-coordinator'] });
        await writeFile(join(dir, 'server.crt'), other.certPem);
      },
      ['gogrid-coordinator'],
    ],
    ['it expires within 30 days', async () => undefined, ['gogrid-coordinator'], 10],
    ['the file is not a certificate', async (dir: string) => writeFile(join(dir, 'server.crt'), 'garbage'), ['gogrid-coordinator']],
  ] as const)('is issued anew when %s', async (_why, spoil, names, validityDays?: number) => {
    const dir = await tempDir();
    const ca = await loadOrCreateCa(dir);
    const kept = await issueServerCert(ca.material, { dnsNames: ['gogrid-coordinator'], validityDays: validityDays ?? 397 });
    await writeFile(join(dir, 'server.crt'), kept.certPem);
    await writeFile(join(dir, 'server.key'), kept.keyPem);
    await spoil(dir);
    const now = await loadOrIssueServerCert(dir, ca, [...names]);
    expect(now.certPem).not.toBe(kept.certPem);
    expect(readCert(now.certPem).dnsNames.sort()).toEqual([...names].sort());
    expect(await readFile(join(dir, 'server.crt'), 'utf8')).toBe(now.certPem);
  });
});
