/**
 * The coordinator's small certificate authority: ECDSA P-256 keys, PEM in and
 * out. The CA signs the coordinator's QUIC server certificate and one client
 * certificate per worker; a worker keeps its private key and sends only a CSR.
 *
 *   const ca = await createCa({ commonName: 'GoGrid CA' });
 *   const server = await issueServerCert(ca, { dnsNames: ['gogrid-coordinator'], ipAddresses: ['127.0.0.1'] });
 *   const { keyPem, csrPem } = await createKeyAndCsr('my-laptop');      // on the worker
 *   const certPem = await signCsr(ca, csrPem, { workerId: 'w-123', validityDays: 30 });
 *   certFingerprint(ca.certPem); // the "CA fingerprint" in enrollment tokens
 */
import { createHash, randomBytes, webcrypto } from 'node:crypto';
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the
// Reflect metadata API installed before the library module evaluates.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { GridError } from '../protocol/errors.js';

x509.cryptoProvider.set(webcrypto);
const { subtle } = webcrypto;
type Key = webcrypto.CryptoKey;

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export interface KeyAndCert {
  certPem: string;
  keyPem: string;
}

export interface CertInfo {
  subjectCommonName: string | null;
  /** Lowercase hex sha256 of the DER encoding. */
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  /** The DNS names of its subject alternative names; [] for a worker's certificate. */
  dnsNames: string[];
  /** The IP addresses of its subject alternative names. */
  ipAddresses: string[];
}

const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const EC_SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;
/**
 * Backdating notBefore tolerates a peer whose clock runs behind: a day, since
 * a PC that boots with a wrong clock may take a while to sync it (a minute
 * once stopped a worker 61 s slow for good).
 */
const CLOCK_SKEW_MS = DAY_MS;

/** Creates a self-signed CA certificate and key. */
export async function createCa(opts: { commonName: string; validityDays?: number }): Promise<CaMaterial> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [opts.commonName] }],
    ...validity(opts.validityDays ?? 3650),
    keys,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await exportPrivateKey(keys.privateKey) };
}

/** Lowercase hex sha256 of the certificate's DER; what enrollment tokens pin. */
export function certFingerprint(certPem: string): string {
  return readCert(certPem).fingerprint;
}

/**
 * Issues a TLS server certificate. @matrixai/quic checks it against the host
 * NAME the client asked for, so include a DNS name even when clients dial an IP.
 */
export async function issueServerCert(
  ca: CaMaterial,
  /** `now`: issue as at this time (tests of a clock far off). */
  opts: { dnsNames: string[]; ipAddresses?: string[]; validityDays?: number; now?: Date },
): Promise<KeyAndCert> {
  const keys = await generateKeyPair();
  const names: x509.JsonGeneralName[] = [
    ...opts.dnsNames.map((value) => ({ type: 'dns' as const, value })),
    ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const certPem = await issueLeaf(ca, {
    subject: [{ CN: [opts.dnsNames[0] ?? opts.ipAddresses?.[0] ?? 'gogrid-coordinator'] }],
    publicKey: keys.publicKey,
    validityDays: opts.validityDays ?? 825,
    now: opts.now,
    usage: x509.ExtendedKeyUsage.serverAuth,
    extra: [new x509.SubjectAlternativeNameExtension(names, false)],
  });
  return { certPem, keyPem: await exportPrivateKey(keys.privateKey) };
}

/** Worker side: a fresh key pair and a CSR for it. The key never leaves the worker. */
export async function createKeyAndCsr(commonName: string): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [commonName] }],
    keys,
    signingAlgorithm: EC_SIGN,
  });
  return { keyPem: await exportPrivateKey(keys.privateKey), csrPem: csr.toString('pem') };
}

/**
 * Signs a worker's CSR as a client certificate whose CN is `workerId`; the
 * subject the CSR asked for is ignored, since the coordinator decides identity.
 */
export async function signCsr(
  ca: CaMaterial,
  csrPem: string,
  opts: { workerId: string; validityDays: number },
): Promise<string> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (e) {
    throw new GridError('GG_ERR_CSR_INVALID', 'the certificate signing request could not be parsed', { cause: e });
  }
  if (!isP256(csr.publicKey)) {
    throw new GridError('GG_ERR_CSR_INVALID', 'the certificate signing request must carry an ECDSA P-256 public key');
  }
  let verified: boolean;
  try {
    verified = await csr.verify();
  } catch (e) {
    throw new GridError('GG_ERR_CSR_INVALID', 'the certificate signing request signature could not be checked', { cause: e });
  }
  if (!verified) {
    throw new GridError('GG_ERR_CSR_INVALID', 'the certificate signing request signature does not verify');
  }
  return issueClientCert(ca, [{ CN: [opts.workerId] }], csr.publicKey, opts.validityDays);
}

/**
 * A new client certificate for the same public key and subject as `certPem`
 * (for `cert.renew`). Refuses a certificate this CA did not sign.
 */
export async function renewCert(ca: CaMaterial, certPem: string, validityDays: number): Promise<string> {
  const cert = new x509.X509Certificate(certPem);
  const caCert = new x509.X509Certificate(ca.certPem);
  if (!(await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true }))) {
    throw new GridError('GG_ERR_UNAUTHENTICATED', 'the certificate to renew was not issued by this CA');
  }
  return issueClientCert(ca, cert.subjectName, cert.publicKey, validityDays);
}

export function readCert(certPemOrDer: string | Uint8Array): CertInfo {
  const cert = new x509.X509Certificate(certPemOrDer);
  return {
    subjectCommonName: cert.subjectName.getField('CN')[0] ?? null,
    fingerprint: createHash('sha256').update(new Uint8Array(cert.rawData)).digest('hex'),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    dnsNames: altNames(cert, 'dns'),
    ipAddresses: altNames(cert, 'ip'),
  };
}

function altNames(cert: x509.X509Certificate, type: 'dns' | 'ip'): string[] {
  return (cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? []).filter((n) => n.type === type).map((n) => n.value);
}

/** True when `caCertPem` signed the certificate, it names that CA as issuer, and it is valid now. */
export async function isIssuedBy(certPemOrDer: string | Uint8Array, caCertPem: string): Promise<boolean> {
  const cert = new x509.X509Certificate(certPemOrDer);
  const caCert = new x509.X509Certificate(caCertPem);
  if (cert.issuer !== caCert.subject) return false;
  return cert.verify({ publicKey: caCert.publicKey, date: new Date() });
}

async function issueClientCert(
  ca: CaMaterial,
  subject: x509.JsonName | x509.Name,
  publicKey: x509.PublicKey,
  validityDays: number,
): Promise<string> {
  return issueLeaf(ca, { subject, publicKey, validityDays, usage: x509.ExtendedKeyUsage.clientAuth, extra: [] });
}

async function issueLeaf(
  ca: CaMaterial,
  opts: {
    subject: x509.JsonName | x509.Name;
    publicKey: x509.PublicKeyType;
    validityDays: number;
    now?: Date;
    usage: x509.ExtendedKeyUsage;
    extra: x509.Extension[];
  },
): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKey(ca.keyPem);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: opts.subject,
    issuer: caCert.subjectName,
    ...validity(opts.validityDays, opts.now?.getTime()),
    publicKey: opts.publicKey,
    signingKey: caKey,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([opts.usage], false),
      await x509.SubjectKeyIdentifierExtension.create(opts.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey),
      ...opts.extra,
    ],
  });
  return cert.toString('pem');
}

function isP256(key: x509.PublicKey): boolean {
  const alg: { name?: unknown; namedCurve?: unknown } = key.algorithm;
  return alg.name === EC_KEY.name && alg.namedCurve === EC_KEY.namedCurve;
}

function validity(days: number, now = Date.now()): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: new Date(now + days * DAY_MS) };
}

/** 128 random bits as a positive DER INTEGER (high bit clear, first byte non-zero). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x01;
  return bytes.toString('hex');
}

async function generateKeyPair(): Promise<{ publicKey: Key; privateKey: Key }> {
  return subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
}

async function exportPrivateKey(key: Key): Promise<string> {
  return x509.PemConverter.encode(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

async function importPrivateKey(keyPem: string): Promise<Key> {
  return subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(keyPem), EC_KEY, false, ['sign']);
}
