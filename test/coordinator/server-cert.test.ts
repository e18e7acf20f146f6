/**
 * The coordinator's serving certificate is kept across restarts (a fresh one at
 * every start moved its notBefore, and shut out workers whose clock ran
 * behind), and replaced when it no longer fits.
 */
import tls from 'node:tls';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateCa, loadOrIssueServerCert, serverNames } from '../../src/coordinator/ca.js';
import { createCa, issueServerCert, readCert } from '../../src/transport/pki.js';
import { loadApiCert } from '../../src/coordinator/api-cert.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir } from '../helpers/grid.js';

afterAll(removeTempDirs);

describe('the serving certificate', () => {
  it('names the loopback addresses and the bound one, so HTTPS clients may dial an IP', () => {
    expect(serverNames('10.1.2.3')).toMatchObject({ dnsNames: expect.arrayContaining(['gogrid-coordinator', 'localhost']), ipAddresses: ['127.0.0.1', '::1', '10.1.2.3'] });
    const all = serverNames('0.0.0.0').ipAddresses;
    expect(all).toEqual(expect.arrayContaining(['127.0.0.1', '::1']));
    expect(all.some((ip) => /^fe80:/i.test(ip))).toBe(false);
  });

  it('adds the public names the operator lists, each as a host name or an address', () => {
    const names = serverNames('10.1.2.3', ['Grid.Example.com', '203.0.113.7', '2001:db8::7']);
    expect(names.dnsNames).toEqual(expect.arrayContaining(['gogrid-coordinator', 'localhost', 'grid.example.com']));
    expect(names.ipAddresses).toEqual(['127.0.0.1', '::1', '10.1.2.3', '203.0.113.7', '2001:db8::7']);
  });

  it('lets an HTTPS client that dials a public name verify the coordinator, as curl or the openai client would', async () => {
    const c = await startTestCoordinator({ toml: '[server]\npublic_names = ["grid.example.test", "203.0.113.7"]\n' });
    try {
      const verified = (servername: string) =>
        new Promise<string | null>((resolve) => {
          const socket = tls.connect({ host: '127.0.0.1', port: c.port, servername, ca: c.ca.material.certPem }, () => {
            socket.end();
            resolve(null);
          });
          socket.once('error', (e) => resolve(e.message));
        });
      expect(await verified('grid.example.test')).toBeNull();
      expect(await verified('other.example.test')).toMatch(/Hostname\/IP does not match certificate's altnames/);
      expect(readCert(await readFile(join(c.dataDir, 'server.crt'), 'utf8')).ipAddresses).toContain('203.0.113.7');
    } finally {
      await c.stop();
    }
  });

  it('is issued once, backdated a day, and the same at the next start', async () => {
    const dir = await tempDir();
    const ca = await loadOrCreateCa(dir);
    const first = await loadOrIssueServerCert(dir, ca, { dnsNames: ['gogrid-coordinator', 'localhost'], ipAddresses: ['127.0.0.1', '::1'] });
    expect(await readFile(join(dir, 'server.crt'), 'utf8')).toBe(first.certPem);
    expect(Date.now() - readCert(first.certPem).notBefore.getTime()).toBeGreaterThan(23 * 3600_000);
    expect(await loadOrIssueServerCert(dir, ca, { dnsNames: ['localhost', 'gogrid-coordinator'], ipAddresses: ['::1', '127.0.0.1'] })).toEqual(first);
  });

  it.each([
    ['it names other hosts', async () => undefined, ['gogrid-coordinator', 'grid.example.com']],
    ['it names other addresses', async () => undefined, ['gogrid-coordinator'], 397, ['192.0.2.7']],
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
  ] as const)('is issued anew when %s', async (_why, spoil, names, validityDays?: number, ipAddresses: readonly string[] = []) => {
    const dir = await tempDir();
    const ca = await loadOrCreateCa(dir);
    const kept = await issueServerCert(ca.material, { dnsNames: ['gogrid-coordinator'], validityDays: validityDays ?? 397 });
    await writeFile(join(dir, 'server.crt'), kept.certPem);
    await writeFile(join(dir, 'server.key'), kept.keyPem);
    await spoil(dir);
    const now = await loadOrIssueServerCert(dir, ca, { dnsNames: [...names], ipAddresses: [...ipAddresses] });
    expect(now.certPem).not.toBe(kept.certPem);
    expect(readCert(now.certPem).dnsNames.sort()).toEqual([...names].sort());
    expect(readCert(now.certPem).ipAddresses).toEqual([...ipAddresses]);
    expect(await readFile(join(dir, 'server.crt'), 'utf8')).toBe(now.certPem);
  });
});

describe("the operator's certificate for the API", () => {
  /** Whether a TLS client that trusts only `caPem` and asks for `servername` verifies the coordinator: null, or why not. */
  const verified = (port: number, servername: string, caPem: string) =>
    new Promise<string | null>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: caPem }, () => {
        socket.end();
        resolve(null);
      });
      socket.once('error', (e) => resolve(e.message));
    });

  it('is what API clients see, through their own CAs, while workers still verify the grid by its CA', async () => {
    // A stand-in for a public CA (Let's Encrypt): clients trust it, not the grid's CA.
    const publicCa = await createCa({ commonName: 'Public Test CA' });
    const issued = await issueServerCert(publicCa, { dnsNames: ['grid.example.test'] });
    const dir = await tempDir();
    const [certFile, keyFile] = [join(dir, 'fullchain.pem'), join(dir, 'privkey.pem')];
    await writeFile(certFile, issued.certPem);
    await writeFile(keyFile, issued.keyPem);
    const c = await startTestCoordinator({ toml: `[server]\napi_cert_file = "${certFile}"\napi_key_file = "${keyFile}"\n` });
    try {
      expect(await verified(c.port, 'grid.example.test', publicCa.certPem)).toBeNull();
      expect(await verified(c.port, 'grid.example.test', c.ca.material.certPem)).toMatch(/self[- ]signed|unable to (get|verify)/i);
      // What workers ask for: the grid's own certificate, verified by the CA their token named.
      expect(await verified(c.port, 'gogrid-coordinator', c.ca.material.certPem)).toBeNull();
      const w = await startTestWorker(c, { token: await c.createToken() });
      await w.agent.waitFor('online');
      await w.agent.stop();
    } finally {
      await c.stop();
    }
  });

  it("is refused at start when the key is not the certificate's, naming the file", async () => {
    const publicCa = await createCa({ commonName: 'Public Test CA' });
    const [one, other] = await Promise.all([issueServerCert(publicCa, { dnsNames: ['a.test'] }), issueServerCert(publicCa, { dnsNames: ['b.test'] })]);
    const dir = await tempDir();
    await writeFile(join(dir, 'cert.pem'), one.certPem);
    await writeFile(join(dir, 'key.pem'), other.keyPem);
    await expect(loadApiCert({ certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') })).rejects.toMatchObject({
      code: 'GG_ERR_CONFIG_INVALID',
      message: expect.stringContaining(`[server] api_key_file ${join(dir, 'key.pem')}: not the private key of ${join(dir, 'cert.pem')}`),
    });
    await expect(loadApiCert({ certFile: join(dir, 'missing.pem'), keyFile: join(dir, 'key.pem') })).rejects.toMatchObject({
      message: `[server] ${join(dir, 'missing.pem')}: cannot read it (ENOENT)`,
    });
  });
});
