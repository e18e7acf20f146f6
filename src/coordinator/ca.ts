/**
 * The coordinator's certificate authority: created and persisted on first
 * start, or supplied by the operator as `ca.crt` + `ca.key` in the data dir.
 * Every start issues a fresh server certificate from it, so only the CA has
 * to be kept; workers pin the CA's fingerprint, never the server certificate.
 *
 *   const ca = await loadOrCreateCa(dataDir);
 *   const server = await issueServerCert(ca.material, { dnsNames: serverDnsNames() });
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { createCa, certFingerprint, type CaMaterial } from '../transport/pki.js';
import { COORDINATOR_SERVER_NAME } from '../transport/https-client.js';
import { GridError } from '../protocol/index.js';
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

/** Names the server certificate carries; clients always verify COORDINATOR_SERVER_NAME. */
export function serverDnsNames(): string[] {
  return [...new Set([COORDINATOR_SERVER_NAME, 'localhost', hostname()])];
}

async function readOptional(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}
