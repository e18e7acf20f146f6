/**
 * The embedded coordinator: wires the CA, the store, the QUIC server for
 * worker sessions and the HTTPS API (same port number, UDP and TCP).
 *
 *   const c = await startCoordinator({ config, dataDir, logger });
 *   console.log(c.apiUrl, c.port, c.adminKey);
 *   await c.stop();
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { addressUnavailable, startQuicServer } from '../transport/quic.js';
import type { TlsControlHandle } from '../transport/tls.js';
import { ensurePrivateDir, writeFileAtomic } from '../common/files.js';
import { lockDataDir, type DataDirLock } from '../common/lock.js';
import { loadApiCert, type ApiCert } from './api-cert.js';
import { runtimeSettings, type CoordinatorConfig, type CoordinatorTuning, type RuntimeSettings } from './config.js';
import { loadOrCreateCa, loadOrIssueServerCert, serverNames, type CoordinatorCa } from './ca.js';
import { openDb, type Db } from './store/db.js';
import { migrate, countApiKeys, createApiKey, findApiKeyBySha256, getJob, markInstanceWorkersOffline, type JobRow } from './store/index.js';
import { revokedMessage, SessionManager } from './sessions.js';
import { Dispatcher } from './dispatcher.js';
import { openCluster, type Cluster } from './cluster.js';
import { getModelInfo, modelsDir } from './models.js';
import type { ModelCatalog } from './http-jobs.js';
import { displayFingerprint, TERMINAL_JOB_STATES, type CreatedToken, type CreateTokenRequest, type ModelInfo, type ModelRef, type SubmitJobRequest } from '../protocol/index.js';
import { buildHttpApi } from './http.js';
import { CoordinatorMetrics } from './metrics.js';
import { ipKey, Throttle } from './ip-limits.js';
import { issueApiKey } from './http-keys.js';
import { createEnrollmentToken, sha256Hex } from './enrollment.js';
import { type ApiInfo, apiInfoPath, adminKeyPath } from './local-files.js';

export interface StartCoordinatorOptions {
  config: CoordinatorConfig;
  dataDir: string;
  logger: Logger;
  /** Shorter timings for tests and benchmarks; a deployment runs with DEFAULT_TUNING. */
  tuning?: Partial<CoordinatorTuning>;
}

export interface Coordinator {
  readonly port: number;
  readonly host: string;
  readonly apiUrl: string;
  readonly dataDir: string;
  readonly ca: CoordinatorCa;
  /** The API key created at first start; null when one already existed. */
  readonly newAdminKey: string | null;
  /** A new enrollment token, as `POST /v1/tokens` makes one. */
  createEnrollmentToken(req: CreateTokenRequest): Promise<CreatedToken>;
  /** Queues a job on a stored model; resolves with its row once it is final. */
  runJob(request: SubmitJobRequest, model: ModelRef): Promise<JobRow>;
  /**
   * The coordinator's own modules, for tests and benchmarks that watch or
   * drive them directly. Commands go through the methods above or the API.
   */
  readonly parts: { readonly db: Db; readonly sessions: SessionManager; readonly dispatcher: Dispatcher };
  stop(): Promise<void>;
}

export async function startCoordinator(opts: StartCoordinatorOptions): Promise<Coordinator> {
  const { dataDir } = opts;
  await ensurePrivateDir(dataDir);
  const lock = await lockDataDir(dataDir, 'coordinator');
  try {
    return await start(opts, lock);
  } catch (e) {
    await lock.release();
    throw e;
  }
}

async function start(opts: StartCoordinatorOptions, lock: DataDirLock): Promise<Coordinator> {
  const { config, dataDir, logger } = opts;
  const ca = await loadOrCreateCa(dataDir);
  if (ca.created) logger.info({ fingerprint: displayFingerprint(ca.fingerprint) }, 'created a new coordinator CA');
  const instanceId = await loadOrCreateInstanceId(dataDir);

  const db = await openDb(config.database.url ?? `pglite://${resolve(dataDir, 'db')}`, {
    poolSize: config.database.maxConnections,
    ...(opts.tuning?.memorySnapshot && { memorySnapshot: opts.tuning.memorySnapshot }),
  });
  let cluster: Cluster | undefined;
  try {
    await migrate(db);
    await markInstanceWorkersOffline(db, instanceId, new Date());
    cluster = await openCluster({ db, databaseUrl: config.database.url, instanceId, logger: logger.child({ component: 'cluster' }) });
    const newAdminKey = await ensureAdminKey(db, dataDir);
    const serverCert = await loadOrIssueServerCert(dataDir, ca, serverNames(config.server.bindAddr, config.server.publicNames));
    const apiCert = config.server.apiCert && (await loadApiCert(config.server.apiCert));
    const runtime = runtimeSettings(config, opts.tuning);
    const listening = await listenBoth({ config, runtime, ca, db, cluster, serverCert, apiCert, instanceId, dataDir, logger });
    const apiUrl = `https://${displayHost(config.server.bindAddr)}:${listening.port}`;
    await writeFileAtomic(
      apiInfoPath(dataDir),
      JSON.stringify({ apiUrl, port: listening.port, caFingerprint: ca.fingerprint, pid: process.pid } satisfies ApiInfo, null, 2),
      0o600,
    );
    logger.info({ port: listening.port, apiUrl, fingerprint: displayFingerprint(ca.fingerprint) }, 'coordinator listening (QUIC on UDP; HTTPS and TLS control on TCP)');

    let stopped = false;
    return {
      port: listening.port,
      host: config.server.bindAddr,
      apiUrl,
      dataDir,
      ca,
      newAdminKey,
      createEnrollmentToken: (req) => createEnrollmentToken(db, ca, req),
      runJob: (request, model) => runJob(db, listening.dispatcher, request, model),
      parts: { db, sessions: listening.sessions, dispatcher: listening.dispatcher },
      async stop() {
        if (stopped) return;
        stopped = true;
        // Every step runs even when one before it fails (a database gone away
        // fails the last writes): the ports and the data dir are let go regardless.
        const failures: unknown[] = [];
        const step = async (fn: () => Promise<unknown>) => {
          await fn().catch((e: unknown) => failures.push(e));
        };
        await step(() => listening.sessions.stop());
        await step(() => listening.dispatcher.stop());
        await Promise.allSettled([listening.quic.stop({ force: true }), listening.tcp.stop({ force: true })]);
        await listening.http.app.close().catch(() => undefined);
        await step(async () => cluster?.close());
        await step(() => db.close());
        await step(() => lock.release());
        if (failures.length > 0) throw failures[0];
      },
    };
  } catch (e) {
    await cluster?.close();
    await db.close();
    throw e;
  }
}

async function listenBoth(args: {
  config: CoordinatorConfig;
  runtime: RuntimeSettings;
  ca: CoordinatorCa;
  db: Db;
  cluster: Cluster;
  serverCert: { certPem: string; keyPem: string };
  apiCert: ApiCert | null;
  instanceId: string;
  dataDir: string;
  logger: Logger;
}): Promise<{
  port: number;
  sessions: SessionManager;
  dispatcher: Dispatcher;
  quic: Awaited<ReturnType<typeof startQuicServer>>;
  tcp: TlsControlHandle;
  http: Awaited<ReturnType<typeof buildHttpApi>>;
}> {
  const { config, ca, db, cluster, serverCert, logger } = args;
  const timing = args.runtime.sessions;
  // With port 0 the UDP port is picked first and TCP must take the same
  // number; another program may hold it on TCP, so try a few ports.
  const attempts = config.server.port === 0 ? 5 : 1;
  for (let attempt = 1; ; attempt++) {
    let quic: Awaited<ReturnType<typeof startQuicServer>> | undefined;
    let tcp: TlsControlHandle | undefined;
    let sessions: SessionManager | undefined;
    try {
      const connectionCount = () => (quic?.connectionCount() ?? 0) + (tcp?.connectionCount() ?? 0);
      // New QUIC handshakes per client address (the seed's 100 connections/s per IP).
      const handshakes = new Throttle({ burst: 2 * args.runtime.quicPerIpPerSec, perSecond: args.runtime.quicPerIpPerSec });
      const told = new Throttle({ burst: 1, perSecond: 1 / 60 });
      const metrics = new CoordinatorMetrics({ db, onlineWorkers: () => sessions?.onlineCount ?? 0, connections: connectionCount });
      sessions = new SessionManager({
        db,
        ca,
        instanceId: args.instanceId,
        timing,
        maxConnections: config.server.maxConnections,
        connectionCount,
        refused: (reason) => metrics.refused(reason),
        logger: logger.child({ component: 'sessions' }),
      });
      const s = sessions;
      const dispatcher = new Dispatcher({
        db,
        sessions,
        instanceId: args.instanceId,
        ...args.runtime.dispatch,
        cluster,
        logger: logger.child({ component: 'dispatcher' }),
      });
      metrics.watch(dispatcher);
      quic = await startQuicServer({
        host: config.server.bindAddr,
        port: config.server.port,
        tls: { certPem: serverCert.certPem, keyPem: serverCert.keyPem, caPem: ca.material.certPem },
        // The application heartbeat is the keep-alive: any packet resets the
        // idle timer, so the coordinator sends no pings of its own and a dead
        // worker is dropped once heartbeat_timeout_secs pass in silence.
        maxIdleTimeoutMs: timing.heartbeatTimeoutSecs * 1000,
        onConnection: (peer) => s.handlePeer(peer),
        admit: (host) => {
          const key = ipKey(host);
          if (handshakes.spend(key)) return true;
          metrics.refused('quic_per_ip_rate');
          if (told.spend(key)) logger.warn({ remote: key }, `QUIC handshakes refused: more than ${args.runtime.quicPerIpPerSec} a second from this address (logged once a minute per address)`);
          return false;
        },
        logger: logger.child({ component: 'quic' }),
      });
      const http = await buildHttpApi({
        db,
        ca,
        sessions,
        dispatcher,
        cluster,
        models: catalog(modelsDir(args.dataDir)),
        modelsDir: modelsDir(args.dataDir),
        tls: serverCert,
        apiCert: args.apiCert,
        certValidityDays: timing.certValidityDays,
        keepLlmText: config.llm.keepText,
        limits: args.runtime.https,
        heartbeatTimeoutSecs: timing.heartbeatTimeoutSecs,
        metrics,
        logger: logger.child({ component: 'http' }),
      });
      tcp = http.control;
      await http.app.listen({ host: config.server.bindAddr, port: quic.port }).catch((e: unknown) => {
        // With port 0 a taken TCP port is tried again below with another number.
        if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < attempts) throw e;
        throw addressUnavailable('TCP', config.server.bindAddr, quic!.port, e);
      });
      // An administrator's policy set through another instance reaches the workers connected here.
      const push = (workerId?: string) =>
        void s.pushPolicy(workerId).catch((err: unknown) => logger.warn({ err, workerId }, 'could not push a policy changed through another instance'));
      cluster.on('event', (e) => {
        if (e.type === 'policy.changed') push(e.workerId ?? undefined);
        if (e.type === 'worker.revoked') {
          s.disconnect(e.workerId, 'GG_ERR_WORKER_REVOKED', revokedMessage(e.workerId)).catch((err: unknown) => logger.warn({ err, workerId: e.workerId }, 'could not disconnect a revoked worker'));
        }
      });
      cluster.on('resync', () => push());
      sessions.start();
      await dispatcher.start();
      return { port: quic.port, sessions, dispatcher, quic, tcp, http };
    } catch (e) {
      await quic?.stop({ force: true }).catch(() => undefined);
      if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= attempts) throw e;
    }
  }
}

async function runJob(db: Db, dispatcher: Dispatcher, request: SubmitJobRequest, model: ModelRef): Promise<JobRow> {
  const { id } = await dispatcher.submit(request, model);
  for (;;) {
    // Waiting first, then reading: a job that ends in between still wakes us.
    const reread = new AbortController();
    const woken = dispatcher.whenFinished(id, reread.signal);
    const row = await getJob(db, id);
    if (row && TERMINAL_JOB_STATES.includes(row.state)) {
      reread.abort();
      return row;
    }
    await woken;
  }
}

/**
 * Makes sure an admin API key exists. The first key is written to
 * `admin.key` (0600) so `gogrid` commands on this machine find it, and it is
 * registered again from that file if the store is fresh (an in-memory store).
 */
async function ensureAdminKey(db: Db, dataDir: string): Promise<string | null> {
  const path = adminKeyPath(dataDir);
  const existing = await readFile(path, 'utf8').then((s) => s.trim(), () => null);
  if (existing) {
    if (!(await findApiKeyBySha256(db, sha256Hex(existing)))) {
      await createApiKey(db, { id: 'admin', keySha256: sha256Hex(existing), name: 'admin.key', scope: 'admin', now: new Date() });
    }
    return null;
  }
  if ((await countApiKeys(db)) > 0) return null;
  const { key } = await issueApiKey(db, { id: 'admin', name: 'admin.key', scope: 'admin' });
  await writeFileAtomic(path, `${key}\n`, 0o600);
  return key;
}

async function loadOrCreateInstanceId(dataDir: string): Promise<string> {
  const path = join(dataDir, 'instance-id');
  const existing = await readFile(path, 'utf8').then((s) => s.trim(), () => '');
  if (existing) return existing;
  const id = `c-${randomBytes(8).toString('hex')}`;
  await writeFileAtomic(path, `${id}\n`, 0o644);
  return id;
}

/**
 * Model lookups for job submissions. A stored model never changes under its
 * hash, so a found one is remembered instead of reading its sidecar per submit.
 */
function catalog(dir: string): ModelCatalog {
  const found = new Map<string, ModelInfo>();
  return {
    async info(sha256) {
      const known = found.get(sha256);
      if (known) return known;
      const info = await getModelInfo(dir, sha256);
      if (info) found.set(sha256, info);
      return info;
    },
  };
}

function displayHost(bindAddr: string): string {
  if (bindAddr === '0.0.0.0') return '127.0.0.1';
  if (bindAddr === '::') return '[::1]';
  return bindAddr.includes(':') ? `[${bindAddr}]` : bindAddr;
}
