/**
 * Who is calling the HTTPS API as a worker: the client certificate TLS already
 * checked against the coordinator CA names the worker, and the store says
 * whether it is still enrolled. A certificate outlives a revocation; the
 * store's answer does not.
 *
 *   const workerId = await workerFromCertificate(req, isWorkerAllowed); // throws GG_ERR_UNAUTHENTICATED / GG_ERR_WORKER_REVOKED
 */
import { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';
import { GridError } from '../protocol/index.js';

export async function workerFromCertificate(req: FastifyRequest, isWorkerAllowed: (workerId: string) => Promise<boolean>): Promise<string> {
  const socket = req.raw.socket;
  const peer = socket instanceof TLSSocket ? socket.getPeerCertificate() : null;
  if (!(socket instanceof TLSSocket) || !peer?.subject) {
    throw new GridError('GG_ERR_UNAUTHENTICATED', 'send a worker client certificate, or "Authorization: Bearer <key>"');
  }
  if (!socket.authorized) {
    throw new GridError('GG_ERR_UNAUTHENTICATED', `client certificate refused: ${String(socket.authorizationError ?? 'not issued by this coordinator')}`);
  }
  const workerId: unknown = peer.subject.CN;
  if (typeof workerId !== 'string' || workerId === '') throw new GridError('GG_ERR_UNAUTHENTICATED', 'client certificate names no worker');
  if (!(await isWorkerAllowed(workerId))) {
    throw new GridError('GG_ERR_WORKER_REVOKED', `worker ${workerId} is revoked or no longer enrolled; enroll it again with a new token`);
  }
  return workerId;
}
