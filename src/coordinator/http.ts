/**
 * The coordinator's HTTPS server (TCP, same port number as QUIC): enrollment,
 * which a token authorizes, and the admin API, which an API key authorizes
 * (an admin key every route; an inference key only INFERENCE_ROUTES, http-auth.ts).
 * Connections that ask for ALPN `gogrid/1` are workers' control sessions
 * instead (transport/tls-server.ts), handed to the same session manager as QUIC's.
 * Every body is parsed with the shared schemas in protocol/api.ts, and every
 * failure answers `{ error: { code, message } }` with the code's HTTP status.
 *
 *   const { app, control } = await buildHttpApi({ db, ca, sessions, tls, logger, … });
 *   await app.listen({ host, port });   // control: the same port's control connections over TLS (gogrid/1)
 */
import type { Server as HttpsServer } from 'node:https';
import Fastify, { LogController } from 'fastify';
import type { Logger } from 'pino';
import {
  CreateTokenRequest,
  EnrollRequest,
  GridError,
  isGridError,
  type CreatedToken,
  type EnrollResponse,
  type TokenInfo,
  type WorkerInfo,
} from '../protocol/index.js';
import { acceptControlOverTls, HTTPS_ALPN } from '../transport/tls.js';
import { apiTlsOptions, reloadApiCert, type ApiCert } from './api-cert.js';
import type { CoordinatorCa } from './ca.js';
import type { Db } from './store/db.js';
import { getWorker, getWorkers, listTokens, listWorkers, listWorkerStates, revokeToken, revokeWorker, getToken, type WorkerRow } from './store/index.js';
import { createEnrollmentToken, enrollWorker, toTokenInfo } from './enrollment.js';
import { revokedMessage, type SessionManager } from './sessions.js';
import type { Dispatcher } from './dispatcher.js';
import { answerErrors, frameworkErrors, parseBody } from '../common/http-errors.js';
import { registerJobRoutes, workerJobRoutes, type ModelCatalog } from './http-jobs.js';
import { registerPolicyRoutes } from './http-policy.js';
import type { Cluster } from './cluster.js';
import { activeWorkerCheck, modelRoutes } from './http-models.js';
import { updateRoutes, updatesDir } from './http-updates.js';
import { dirname } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { apiKeyCheck, WrongSecrets } from './http-auth.js';
import { guardConnections, type ConnectionLimits } from './ip-limits.js';
import type { CoordinatorMetrics } from './metrics.js';
import { registerKeyRoutes } from './http-keys.js';
import { registerOpenAiRoutes } from './http-openai.js';
import { registerDashboardRoutes } from './http-dashboard.js';
import { resolveModel } from './models.js';

/** How long /readyz waits for the database. */
const READY_TIMEOUT_MS = 2000;

export interface HttpApiOptions {
  db: Db;
  ca: CoordinatorCa;
  sessions: SessionManager;
  dispatcher: Dispatcher;
  /** Other coordinator instances on the same database hear of policy changes through it. */
  cluster: Cluster;
  models: ModelCatalog;
  /** Where model files are stored (`modelsDir(dataDir)`). */
  modelsDir: string;
  tls: { certPem: string; keyPem: string };
  /** The operator's certificate for API clients (api-cert.ts); null: the grid's for all. */
  apiCert: ApiCert | null;
  certValidityDays: number;
  /** `[llm] keep_text`: keep OpenAI requests' prompts and answers after the answer went out. */
  keepLlmText: boolean;
  /** What one client address may cost (ip-limits.ts). */
  limits: ConnectionLimits;
  /** The sessions' heartbeat timeout: control connections over TCP silent for twice this are closed. */
  heartbeatTimeoutSecs: number;
  metrics: CoordinatorMetrics;
  logger: Logger;
}

export async function buildHttpApi(opts: HttpApiOptions) {
  const { db, ca, sessions } = opts;
  const app = Fastify({
    loggerInstance: opts.logger,
    // Per-request lines would be most of the log at fleet scale; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    frameworkErrors,
    bodyLimit: 1024 * 1024,
    https: {
      ...apiTlsOptions(opts.tls, ca.material.certPem, opts.apiCert),
      // Ask for a client certificate without demanding one: enrollment has
      // none yet, and routes that need mTLS (model files) check it themselves.
      ca: ca.material.certPem,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
      // `gogrid/1` is the control protocol for workers whose UDP is dropped (transport/tls-server.ts).
      ALPNProtocols: HTTPS_ALPN,
      handshakeTimeout: opts.limits.firstRequestMs,
    },
  });
  // First, so that the listeners added below (the connection guard) see control connections too.
  const control = acceptControlOverTls(app.server, {
    // A backstop: the session's own heartbeat timeout closes a silent worker first, with an error frame that says so.
    maxIdleTimeoutMs: 2 * opts.heartbeatTimeoutSecs * 1000,
    onConnection: (peer) => sessions.handlePeer(peer),
    logger: opts.logger.child({ component: 'tls-control' }),
  });
  guardConnections(app.server, opts.limits, opts.logger, (reason) => opts.metrics.refused(reason));
  if (opts.apiCert) {
    const stop = reloadApiCert(app.server as HttpsServer, opts.apiCert, ca.material.certPem, opts.logger);
    app.addHook('onClose', async () => stop());
  }

  answerErrors(app, 'coordinator');

  const wrongSecrets = new WrongSecrets(() => opts.metrics.refused('wrong_secrets'));
  const requireApiKey = apiKeyCheck(db, wrongSecrets);

  // Live: the process answers. Ready: it can also reach its database (what a load balancer or systemd watchdog should ask).
  app.get('/healthz', async () => ({ ok: true, workersOnline: sessions.onlineCount }));
  app.get('/readyz', async () => {
    const answered = await Promise.race([
      db.query('SELECT 1').then(
        () => true,
        () => false,
      ),
      setTimeout(READY_TIMEOUT_MS, false, { ref: false }),
    ]);
    if (!answered) throw new GridError('GG_ERR_DATABASE_UNREACHABLE', `the database did not answer SELECT 1 within ${READY_TIMEOUT_MS} ms`);
    return { ok: true, workersOnline: sessions.onlineCount };
  });

  // Prometheus's text format, for an admin key (Prometheus sends it with `authorization: { credentials_file: … }`).
  app.get('/metrics', { onRequest: requireApiKey }, async (_req, reply) => {
    void reply.type(opts.metrics.contentType);
    return opts.metrics.text();
  });

  // ---------------------------------------------------------------- enrollment
  app.get('/v1/enroll/ca', async () => ({ caPem: ca.material.certPem }));

  app.post('/v1/enroll', async (req): Promise<EnrollResponse> => {
    const body = parseBody(EnrollRequest, req.body);
    wrongSecrets.check(req, body.tokenId);
    const reply = await enrollWorker(db, ca, body, { certValidityDays: opts.certValidityDays }).catch((e: unknown) => {
      if (isGridError(e, 'GG_ERR_TOKEN_INVALID')) wrongSecrets.spend(req, body.tokenId);
      throw e;
    });
    req.log.info({ workerId: reply.workerId, tokenId: body.tokenId, name: body.name }, 'worker enrolled');
    return reply;
  });

  // ---------------------------------------------------------------- models (API key, or a worker's client certificate to download)
  await app.register(modelRoutes, { dir: opts.modelsDir, requireApiKey, isWorkerAllowed: activeWorkerCheck(db) });
  await app.register(workerJobRoutes, { db, dispatcher: opts.dispatcher, isWorkerAllowed: activeWorkerCheck(db) });
  // The data dir is the models dir's parent (models.ts); the update feed sits beside it.
  await app.register(updateRoutes, { dir: updatesDir(dirname(opts.modelsDir)), requireApiKey, isWorkerAllowed: activeWorkerCheck(db) });

  // ---------------------------------------------------------------- admin
  app.register(async (scope) =>
    registerDashboardRoutes(scope, {
      db,
      requireApiKey,
      workerStates: async () => (await listWorkerStates(db)).map((r) => ({ id: r.id, state: stateOf(r) })),
      workers: async (ids) => (await getWorkers(db, ids)).map(toWorkerInfo),
    }),
  );

  app.register(async (admin) => {
    admin.addHook('onRequest', requireApiKey);

    admin.get('/v1/workers', async (): Promise<WorkerInfo[]> => (await listWorkers(db)).map(toWorkerInfo));

    admin.get<{ Params: { id: string } }>('/v1/workers/:id', async (req): Promise<WorkerInfo> => {
      const row = await getWorker(db, req.params.id);
      if (!row) throw new GridError('GG_ERR_NOT_FOUND', `no worker ${req.params.id}`);
      return toWorkerInfo(row);
    });

    admin.post<{ Params: { id: string } }>('/v1/workers/:id/revoke', async (req): Promise<WorkerInfo> => {
      const id = req.params.id;
      if (!(await revokeWorker(db, id, new Date()))) throw new GridError('GG_ERR_NOT_FOUND', `no worker ${id}`);
      await sessions.disconnect(id, 'GG_ERR_WORKER_REVOKED', revokedMessage(id));
      opts.cluster.publish({ type: 'worker.revoked', workerId: id });
      req.log.info({ workerId: id }, 'worker revoked');
      return toWorkerInfo((await getWorker(db, id))!);
    });

    admin.get('/v1/tokens', async (): Promise<TokenInfo[]> => {
      const now = new Date();
      return (await listTokens(db)).map((t) => toTokenInfo(t, now));
    });

    admin.post('/v1/tokens', async (req): Promise<CreatedToken> => {
      const body = parseBody(CreateTokenRequest, req.body ?? {});
      return createEnrollmentToken(db, ca, body);
    });

    registerKeyRoutes(admin, { db });
    // Inference keys reach these (http-auth.ts INFERENCE_ROUTES) as well as admin keys.
    registerOpenAiRoutes(admin, { db, dispatcher: opts.dispatcher, keepText: opts.keepLlmText, modelNamed: (name) => resolveModel(opts.modelsDir, name) });
    registerJobRoutes(admin, { db, dispatcher: opts.dispatcher, models: opts.models });
    registerPolicyRoutes(admin, { db, sessions, cluster: opts.cluster });

    admin.delete<{ Params: { id: string } }>('/v1/tokens/:id', async (req): Promise<TokenInfo> => {
      if (!(await revokeToken(db, req.params.id, new Date()))) throw new GridError('GG_ERR_NOT_FOUND', `no token ${req.params.id}`);
      return toTokenInfo((await getToken(db, req.params.id))!);
    });
  });

  // Not the app alone: a Fastify instance is a thenable, so an async function's `await` would unwrap it to the bare instance.
  return { app, control };

  /** The state the API shows: stored revoked, else online as the sessions (of any instance) see it, paused by its reason. */
  function stateOf(row: Pick<WorkerRow, 'id' | 'state' | 'pausedReason' | 'instanceId' | 'lastSeen'>): WorkerInfo['state'] {
    return row.state === 'revoked' ? 'revoked' : !sessions.isOnline(row) ? 'offline' : row.pausedReason ? 'paused' : 'online';
  }

  function toWorkerInfo(row: WorkerRow): WorkerInfo {
    const state = stateOf(row);
    return {
      id: row.id,
      name: row.name,
      state,
      pausedReason: state === 'paused' ? row.pausedReason : null,
      lastSeen: row.lastSeen?.toISOString() ?? null,
      enrolledAt: row.enrolledAt.toISOString(),
      appVersion: row.appVersion,
      hardware: row.hardware,
      certNotAfter: row.certNotAfter.toISOString(),
      transport: row.transport,
      labels: row.labels,
    };
  }
}
