/**
 * The coordinator's certificate authority: created and persisted on first
 * start, or supplied by the operator as `ca.crt` + `ca.key` in the data dir.
 * Workers pin the CA's fingerprint, never the server certificate; the server
 * certificate is kept in the data dir too, so that a restart does not move its
 * notBefore (a worker whose clock ran behind a fresh one was shut out).
 *
 *   const ca = await loadOrCreateCa(dataDir);
 *   const server = await loadOrIssueServerCert(dataDir, ca, serverDnsNames());
 */
import { isIP } from 'node:net';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname, networkInterfaces } from 'node:os';
import { createCa, certFingerprint, isIssuedBy, issueServerCert, readCert, type CaMaterial, type KeyAndCert } from '../transport/pki.js';
import { COORDINATOR_SERVER_NAME, GridError } from '../protocol/index.js';
import { writeFileAtomic } from '../common/files.js';

export interface CoordinatorCa {
  material: CaMaterial;
  fingerprint: string;
  /** True when this call created it. */
  created: boolean;
}

export async function loadOrCreateCa(dataDir: string): Promise<CoordinatorCa> {
  const certPath = join(dataDir, 'ca.crt');
  const keyPath = join(dataDir, 'ca.key');
  const [certPem, keyPem] = await Promise.all([readOptional(certPath), readOptional(keyPath)]);
  if (certPem !== null && keyPem !== null) {
    return { material: { certPem, keyPem }, fingerprint: certFingerprint(certPem), created: false };
  }
  if (certPem !== null || keyPem !== null) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `${dataDir}: found only one of ca.crt and ca.key; supply both or neither`);
  }
  const material = await createCa({ commonName: `GoGrid coordinator CA (${hostname()})` });
  // Key first: a crash between the two writes leaves a key without a cert,
  // which the check above reports instead of silently minting a second CA.
  await writeFileAtomic(keyPath, material.keyPem, 0o600);
  await writeFileAtomic(certPath, material.certPem, 0o644);
  return { material, fingerprint: certFingerprint(material.certPem), created: true };
}

/** A kept server certificate is replaced this long before it expires. */
const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

/** The host names and addresses the serving certificate carries. */
export interface ServerNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/**
 * The serving certificate in `server.crt` + `server.key`, issued anew only when
 * there is none, it is not the CA's, it names other hosts or addresses than
 * `names`, or it expires within 30 days.
 */
export async function loadOrIssueServerCert(dataDir: string, ca: CoordinatorCa, names: ServerNames): Promise<KeyAndCert> {
  const certPath = join(dataDir, 'server.crt');
  const keyPath = join(dataDir, 'server.key');
  const [certPem, keyPem] = await Promise.all([readOptional(certPath), readOptional(keyPath)]);
  if (certPem !== null && keyPem !== null && (await stillServes(certPem, ca, names))) return { certPem, keyPem };
  const issued = await issueServerCert(ca.material, { ...names, validityDays: 397 });
  await writeFileAtomic(keyPath, issued.keyPem, 0o600);
  await writeFileAtomic(certPath, issued.certPem, 0o644);
  return issued;
}

async function stillServes(certPem: string, ca: CoordinatorCa, names: ServerNames): Promise<boolean> {
  const same = (a: string[], b: string[]) => [...a].sort().join(',') === [...b].sort().join(',');
  try {
    const info = readCert(certPem);
    return (
      (await isIssuedBy(certPem, ca.material.certPem)) &&
      same(info.dnsNames, names.dnsNames) &&
      same(info.ipAddresses, names.ipAddresses) &&
      info.notAfter.getTime() - Date.now() > RENEW_BEFORE_MS
    );
  } catch {
    return false; // not a certificate at all: issue one
  }
}

/**
 * What the serving certificate names. Workers always ask for
 * COORDINATOR_SERVER_NAME; the host name, `localhost` and the addresses
 * clients may dial (the loopback ones, and the bound address or, bound to
 * all, the machine's) let any HTTPS client (curl, OpenAI's) reach the API
 * however it addresses it. Addresses change with the network: a start that
 * finds others issues a new certificate from the same CA, which nothing that
 * trusts the CA notices. Link-local IPv6 addresses are left out: a URL cannot
 * use them without a zone.
 */
export function serverNames(bindAddr: string, publicNames: readonly string[] = []): ServerNames {
  const ips = new Set(['127.0.0.1', '::1']);
  if (bindAddr !== '0.0.0.0' && bindAddr !== '::') ips.add(bindAddr);
  else for (const a of Object.values(networkInterfaces()).flat()) if (a && !/^fe80:/i.test(a.address)) ips.add(a.address);
  const dns = new Set([COORDINATOR_SERVER_NAME, 'localhost', hostname()]);
  // `[server] public_names`: what clients behind NAT or DNS dial, which the machine cannot know of itself.
  for (const name of publicNames) (isIP(name) ? ips : dns).add(name.toLowerCase());
  return { dnsNames: [...dns], ipAddresses: [...ips] };
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}
