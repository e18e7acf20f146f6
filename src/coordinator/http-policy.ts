/**
 * Administrators' policy overrides (registered inside buildHttpApi's
 * authenticated scope). A change reaches the workers connected to this
 * instance at once (`worker.policy`), the others at their next connect.
 *
 *   GET    /v1/workers/:id/policy            → WorkerPolicyResponse
 *   PUT    /v1/workers/:id/policy  AdminOverride → WorkerPolicyResponse
 *   DELETE /v1/workers/:id/policy            → WorkerPolicyResponse (the fleet's applies again)
 *   GET    /v1/policy                        → FleetPolicyResponse
 *   PUT    /v1/policy              AdminOverride → FleetPolicyResponse (every worker without its own)
 *   DELETE /v1/policy                        → FleetPolicyResponse
 */
import type { FastifyInstance } from 'fastify';
import { AdminOverride, GridError, type FleetPolicyResponse, type WorkerPolicyResponse } from '../protocol/index.js';
import type { Db } from './store/db.js';
import { getFleetPolicy, getPolicies, setFleetPolicy, setWorkerPolicy } from './store/index.js';
import { parseBody } from '../common/http-errors.js';
import type { SessionManager } from './sessions.js';
import type { Cluster } from './cluster.js';

export function registerPolicyRoutes(app: FastifyInstance, deps: { db: Db; sessions: Pick<SessionManager, 'pushPolicy'>; cluster: Pick<Cluster, 'publish'> }): void {
  const { db, sessions, cluster } = deps;

  const workerPolicy = async (workerId: string): Promise<WorkerPolicyResponse> => {
    const p = await getPolicies(db, workerId);
    if (!p) throw new GridError('GG_ERR_NOT_FOUND', `no worker ${workerId}`);
    return { workerId, ...p };
  };
  const setForWorker = async (workerId: string, override: AdminOverride | null): Promise<WorkerPolicyResponse> => {
    if (!(await setWorkerPolicy(db, workerId, override))) throw new GridError('GG_ERR_NOT_FOUND', `no worker ${workerId}`);
    await sessions.pushPolicy(workerId);
    cluster.publish({ type: 'policy.changed', workerId });
    return workerPolicy(workerId);
  };
  const setForFleet = async (override: AdminOverride | null): Promise<FleetPolicyResponse> => {
    await setFleetPolicy(db, override, new Date());
    await sessions.pushPolicy();
    cluster.publish({ type: 'policy.changed', workerId: null });
    return { fleet: await getFleetPolicy(db) };
  };

  app.get<{ Params: { id: string } }>('/v1/workers/:id/policy', (req) => workerPolicy(req.params.id));
  app.put<{ Params: { id: string } }>('/v1/workers/:id/policy', (req) => setForWorker(req.params.id, parseBody(AdminOverride, req.body ?? {})));
  app.delete<{ Params: { id: string } }>('/v1/workers/:id/policy', (req) => setForWorker(req.params.id, null));
  app.get('/v1/policy', async (): Promise<FleetPolicyResponse> => ({ fleet: await getFleetPolicy(db) }));
  app.put('/v1/policy', (req) => setForFleet(parseBody(AdminOverride, req.body ?? {})));
  app.delete('/v1/policy', () => setForFleet(null));
}
