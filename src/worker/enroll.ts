/**
 * Enrollment, as `kubeadm join` does it: fetch the coordinator's CA, check
 * its fingerprint against the token *before* revealing the token's secret,
 * then send the secret with a CSR over a connection pinned to that CA. The
 * private key is generated here and never leaves this machine.
 *
 *   const identity = await enroll({ dataDir, coordinator: { host, port }, token });
 */
import {
  displayFingerprint,
  CaResponse,
  EnrollResponse,
  GridError,
  parseEnrollmentToken,
  type EnrollRequest,
} from '../protocol/index.js';
import { requestJson } from '../transport/https-client.js';
import { certFingerprint, createKeyAndCsr } from '../transport/pki.js';
import { loadOrCreateWorkerConfig, saveIdentity, type WorkerIdentity } from './identity.js';

export interface EnrollOptions {
  dataDir: string;
  coordinator: { host: string; port: number };
  token: string;
  /** Display name; defaults to the one in worker.json (the host name). */
  name?: string;
  timeoutMs?: number;
}

export async function enroll(opts: EnrollOptions): Promise<WorkerIdentity> {
  const token = parseEnrollmentToken(opts.token);
  const local = await loadOrCreateWorkerConfig(opts.dataDir);
  const base = `https://${formatHost(opts.coordinator.host)}:${opts.coordinator.port}`;
  const timeoutMs = opts.timeoutMs ?? 15_000;

  // Unverified on purpose: we do not know the CA yet. Nothing secret is sent,
  // and the answer is trusted only if it hashes to the token's fingerprint.
  const { caPem } = CaResponse.parse(await requestJson({ url: `${base}/v1/enroll/ca`, insecureNoVerify: true, timeoutMs }));
  const actual = certFingerprint(caPem);
  if (actual !== token.caFingerprint) {
    throw new GridError(
      'GG_ERR_CA_MISMATCH',
      `the coordinator at ${opts.coordinator.host}:${opts.coordinator.port} has CA ${displayFingerprint(actual)}, but the token expects ${displayFingerprint(token.caFingerprint)}; the token's secret was not sent (wrong address, or a token from another coordinator)`,
    );
  }

  const { keyPem, csrPem } = await createKeyAndCsr(local.workerId);
  const request: EnrollRequest = {
    tokenId: token.id,
    tokenSecret: token.secret,
    csrPem,
    proposedWorkerId: local.workerId,
    name: opts.name ?? local.name,
  };
  const reply = EnrollResponse.parse(await requestJson({ url: `${base}/v1/enroll`, method: 'POST', body: request, ca: caPem, timeoutMs }));
  const identity: WorkerIdentity = {
    workerId: reply.workerId,
    name: request.name,
    coordinator: { host: opts.coordinator.host, port: opts.coordinator.port, caFingerprint: actual },
    keyPem,
    certPem: reply.certPem,
    caPem,
  };
  await saveIdentity(opts.dataDir, identity);
  return identity;
}

function formatHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
