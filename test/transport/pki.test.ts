import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { isGridError } from '../../src/protocol/errors.js';
import {
  certFingerprint,
  createCa,
  createKeyAndCsr,
  isIssuedBy,
  issueServerCert,
  readCert,
  renewCert,
  signCsr,
  type CaMaterial,
} from '../../src/transport/pki.js';

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

function spki(certPem: string): Buffer {
  return new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
}

async function expectGridError(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isGridError(err) ? err.code : err).toBe(code);
}

describe('pki', () => {
  let ca: CaMaterial;
  let otherCa: CaMaterial;

  beforeAll(async () => {
    ca = await createCa({ commonName: 'GoGrid Test CA' });
    otherCa = await createCa({ commonName: 'Someone Else CA' });
  });

  it('creates a CA certificate that node:crypto sees as a self-signed CA', () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe('CN=GoGrid Test CA');
    expect(cert.verify(cert.publicKey)).toBe(true);
    const years = (readCert(ca.certPem).notAfter.getTime() - Date.now()) / (365 * 24 * 3600 * 1000);
    expect(years).toBeGreaterThan(9.9);
    expect(ca.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it('fingerprints the certificate DER as 64 lowercase hex, stable across calls', () => {
    const fp = certFingerprint(ca.certPem);
    expect(fp).toMatch(/^[0-9a-f]{64}$/);
    expect(certFingerprint(ca.certPem)).toBe(fp);
    expect(fp).toBe(createHash('sha256').update(new X509Certificate(ca.certPem).raw).digest('hex'));
    expect(certFingerprint(otherCa.certPem)).not.toBe(fp);
  });

  it('issues a server certificate for the DNS name and IP, chained to the CA', async () => {
    const server = await issueServerCert(ca, { dnsNames: ['gogrid-coordinator'], ipAddresses: ['127.0.0.1'] });
    const cert = new X509Certificate(server.certPem);
    expect(cert.ca).toBe(false);
    expect(cert.checkHost('gogrid-coordinator')).toBe('gogrid-coordinator');
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkIssued(new X509Certificate(ca.certPem))).toBe(true);
    expect(cert.keyUsage).toEqual([SERVER_AUTH]);
    expect(await isIssuedBy(server.certPem, ca.certPem)).toBe(true);
  });

  it('signs a CSR as a client certificate named after the worker id, whatever the CSR asked for', async () => {
    const { keyPem, csrPem } = await createKeyAndCsr('root-admin');
    const certPem = await signCsr(ca, csrPem, { workerId: 'w-42', validityDays: 30 });
    const info = readCert(certPem);
    expect(info.subjectCommonName).toBe('w-42');
    // notBefore is backdated a day for clock skew; notAfter follows validityDays.
    expect(Date.now() - info.notBefore.getTime()).toBeGreaterThanOrEqual(86_400_000 - 5000);
    expect(Math.round((info.notAfter.getTime() - Date.now()) / 86_400_000)).toBe(30);
    const cert = new X509Certificate(certPem);
    expect(cert.keyUsage).toEqual([CLIENT_AUTH]);
    expect(cert.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(await isIssuedBy(certPem, ca.certPem)).toBe(true);
    expect(await isIssuedBy(new Uint8Array(cert.raw), ca.certPem)).toBe(true);
  });

  it('gives every certificate a distinct serial', async () => {
    const { csrPem } = await createKeyAndCsr('x');
    const a = new X509Certificate(await signCsr(ca, csrPem, { workerId: 'w-1', validityDays: 1 }));
    const b = new X509Certificate(await signCsr(ca, csrPem, { workerId: 'w-1', validityDays: 1 }));
    expect(a.serialNumber).not.toBe(b.serialNumber);
  });

  it('rejects a tampered CSR with GG_ERR_CSR_INVALID', async () => {
    const { csrPem } = await createKeyAndCsr('honest-name');
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    const at = der.indexOf(Buffer.from('honest-name'));
    expect(at).toBeGreaterThan(0);
    der[at] = 'H'.charCodeAt(0); // still parses, but the self-signature no longer matches
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await expectGridError(signCsr(ca, tampered, { workerId: 'w-1', validityDays: 1 }), 'GG_ERR_CSR_INVALID');
    await expectGridError(signCsr(ca, 'not a csr', { workerId: 'w-1', validityDays: 1 }), 'GG_ERR_CSR_INVALID');
  });

  it('renews a client certificate for the same key and subject', async () => {
    const { csrPem } = await createKeyAndCsr('x');
    const original = await signCsr(ca, csrPem, { workerId: 'w-7', validityDays: 1 });
    const renewed = await renewCert(ca, original, 90);
    expect(spki(renewed).equals(spki(original))).toBe(true);
    expect(readCert(renewed).subjectCommonName).toBe('w-7');
    expect(new X509Certificate(renewed).serialNumber).not.toBe(new X509Certificate(original).serialNumber);
    expect(readCert(renewed).notAfter.getTime()).toBeGreaterThan(readCert(original).notAfter.getTime() + 80 * 86_400_000);
    expect(new X509Certificate(renewed).keyUsage).toEqual([CLIENT_AUTH]);
    expect(await isIssuedBy(renewed, ca.certPem)).toBe(true);
  });

  it('refuses to renew a certificate another CA issued', async () => {
    const { csrPem } = await createKeyAndCsr('x');
    const foreign = await signCsr(otherCa, csrPem, { workerId: 'w-7', validityDays: 1 });
    await expectGridError(renewCert(ca, foreign, 30), 'GG_ERR_UNAUTHENTICATED');
  });

  it('isIssuedBy is false for another CA and for an expired certificate', async () => {
    const { csrPem } = await createKeyAndCsr('x');
    const foreign = await signCsr(otherCa, csrPem, { workerId: 'w-1', validityDays: 1 });
    expect(await isIssuedBy(foreign, ca.certPem)).toBe(false);
    expect(await isIssuedBy(foreign, otherCa.certPem)).toBe(true);
    const expired = await signCsr(ca, csrPem, { workerId: 'w-1', validityDays: -1 });
    expect(await isIssuedBy(expired, ca.certPem)).toBe(false);
  });
});
