/**
 * Worker sessions: one per authenticated QUIC connection. This is where a
 * worker becomes `online` and `offline`, where heartbeats are taken, and
 * where a revoked or replaced worker is thrown out.
 *
 *   const sessions = new SessionManager({ db, ca, instanceId, timing, logger, connectionCount });
 *   quicServer = await startQuicServer({ …, onConnection: (peer) => sessions.handlePeer(peer) });
 *   await sessions.revoke(workerId); // disconnects it within a second
 *
 * Liveness lives in memory; the store sees transitions (online, offline,
 * paused reason) at once and `last_seen` in one batched statement per
 * flush, because 10,000 workers heartbeating every 30 s would otherwise be
 * 333 single-row writes a second.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { X509Certificate } from 'node:crypto';
import type { FrameChannel, QuicPeer } from '../transport/quic.js';
import { readCert, renewCert } from '../transport/pki.js';
import {
  GridError,
  isGridError,
  parseWorkerMessage,
  PROTOCOL_VERSION,
  SUPPORTED_PROTOCOL_VERSIONS,
  type CoordinatorMessageInput,
  type ErrorCode,
  type Heartbeat,
  type Hello,
  type WorkerMessage,
  type WorkerStatus,
} from '../protocol/index.js';
import type { WorkerView } from './scheduler.js';
import type { Db } from './store/db.js';
import { getPolicies, getWorker, markOffline, markOnline, setPausedReason, touchLastSeen, updateCert, type WorkerRow } from './store/index.js';
import type { CoordinatorCa } from './ca.js';
import { TokenBucket } from '../common/token-bucket.js';

export interface SessionTiming {
  heartbeatIntervalSecs: number;
  heartbeatTimeoutSecs: number;
  /** How long a new connection may take to open its stream and say hello. */
  helloTimeoutMs: number;
  /** Lifetime of client certificates issued at enrollment and renewal. */
  certValidityDays: number;
}

export interface SessionManagerOptions {
  db: Db;
  ca: CoordinatorCa;
  instanceId: string;
  timing: SessionTiming;
  maxConnections: number;
  /** Live QUIC connections, counted by the transport (including ones not yet authenticated). */
  connectionCount: () => number;
  logger: Logger;
}

interface Session {
  readonly workerId: string;
  readonly peer: QuicPeer;
  readonly channel: FrameChannel;
  readonly hello: Hello;
  /** From hello, then from heartbeats that change it. */
  slots: number;
  lastHeartbeatAt: number;
  status: WorkerStatus;
  pausedReason: string | null;
  /** An administrator paused it: no jobs whatever the worker reports (an older worker may not apply the pause itself). */
  adminPaused: boolean;
  cachedModels: ReadonlySet<string>;
  load: Heartbeat['load'] | null;
  /** Jobs leased to this worker through this session. */
  readonly leases: Map<string, HeldLease>;
}

/** A job's lease as the session holding it knows it: the fencing token, and the kind that says what its output must be. */
export interface HeldLease {
  leaseId: string;
  kind: string;
}

/** A message about a job, from the worker that holds its lease (or claims to). */
export type JobMessage = Extract<WorkerMessage, { type: 'job.progress' | 'job.result' | 'job.release' }>;

export interface SessionEvents {
  online: [workerId: string];
  offline: [workerId: string];
  job: [workerId: string, msg: JobMessage];
  heartbeat: [workerId: string, hb: Heartbeat];
  /** Something the scheduler looks at changed: paused/resumed, cached models. */
  capacity: [workerId: string];
}

/**
 * How fast one session's messages are read: far above an honest worker's
 * (a heartbeat every interval, a result per job, progress at most once a
 * second per job), far below a flood, whose sender QUIC flow control then
 * slows. One worker's heartbeat flood once took the API's p50 from 8 to 223 ms.
 */
const MESSAGE_RATE = { burst: 1000, perSecond: 1000 };

/** Close frames are flushed before the connection goes; a peer that does not hang up is cut off after this. */
const CLOSE_GRACE_MS = 1000;
/** Heartbeats reach the store's last_seen at least this often (sooner at short heartbeat intervals). */
const LAST_SEEN_FLUSH_MAX_MS = 5000;

export class SessionManager extends EventEmitter<SessionEvents> {
  private readonly sessions = new Map<string, Session>();
  private readonly pendingLastSeen = new Map<string, Date>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(private readonly opts: SessionManagerOptions) {
    super();
  }

  start(): void {
    const { heartbeatTimeoutSecs, heartbeatIntervalSecs } = this.opts.timing;
    const sweepMs = Math.max(50, Math.min(1000, (heartbeatTimeoutSecs * 1000) / 4));
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs);
    this.sweepTimer.unref();
    const flushMs = Math.max(100, Math.min(LAST_SEEN_FLUSH_MAX_MS, heartbeatIntervalSecs * 1000));
    this.flushTimer = setInterval(() => void this.flushLastSeen(), flushMs);
    this.flushTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweepTimer);
    clearInterval(this.flushTimer);
    await Promise.all([...this.sessions.values()].map((s) => this.closeSession(s, 'GG_ERR_SHUTTING_DOWN', 'coordinator is shutting down')));
    await this.flushLastSeen();
  }

  get onlineCount(): number {
    return this.sessions.size;
  }

  /**
   * Whether a worker the store calls online is: connected here, or to another
   * instance on the same database that still refreshes its last_seen (with
   * every heartbeat, written within LAST_SEEN_FLUSH_MAX_MS). A row an instance
   * left online when it died counts no more once the heartbeat timeout passed.
   */
  isOnline(row: Pick<WorkerRow, 'id' | 'state' | 'instanceId' | 'lastSeen'>, now = Date.now()): boolean {
    if (row.state !== 'online') return false;
    if (this.sessions.has(row.id)) return true;
    if (row.instanceId === this.opts.instanceId || row.lastSeen === null) return false;
    return now - row.lastSeen.getTime() <= this.opts.timing.heartbeatTimeoutSecs * 1000 + LAST_SEEN_FLUSH_MAX_MS;
  }

  /** Entry point for every accepted QUIC connection; never throws or rejects. */
  handlePeer(peer: QuicPeer): void {
    this.runPeer(peer).catch((e: unknown) => {
      this.opts.logger.error({ err: e, remote: peer.remoteAddress }, 'session failed');
      void peer.close().catch(() => undefined);
    });
  }

  /** Revocation takes effect on the live connection too; refusal of later ones is the store's revoked state. */
  async disconnect(workerId: string, code: ErrorCode, message: string): Promise<boolean> {
    const session = this.sessions.get(workerId);
    if (!session) return false;
    await this.closeSession(session, code, message);
    return true;
  }

  private async runPeer(peer: QuicPeer): Promise<void> {
    const log = this.opts.logger;
    const channel = await withTimeout(peer.acceptChannel(), this.opts.timing.helloTimeoutMs, peer.closed);
    if (!channel) {
      await peer.close();
      return;
    }
    const refuse = (code: ErrorCode, message: string) => closeWithError(peer, channel, code, message);

    if (this.stopping) return refuse('GG_ERR_SHUTTING_DOWN', 'coordinator is shutting down');
    if (this.opts.connectionCount() > this.opts.maxConnections) {
      log.warn({ remote: peer.remoteAddress, max: this.opts.maxConnections }, 'connection refused: max_connections reached');
      return refuse('GG_ERR_TOO_MANY_CONNECTIONS', `coordinator is at max_connections (${this.opts.maxConnections}); try again later`);
    }
    const certDer = peer.peerCertificate;
    if (!certDer) return refuse('GG_ERR_UNAUTHENTICATED', 'a client certificate is required; enroll with `gogrid worker --token`');
    const cert = readCert(certDer);
    const workerId = cert.subjectCommonName;
    if (!workerId) return refuse('GG_ERR_UNAUTHENTICATED', 'client certificate has no subject common name');

    const frames = channel.frames()[Symbol.asyncIterator]();
    let hello: Hello;
    try {
      const first = await withTimeout(frames.next(), this.opts.timing.helloTimeoutMs, peer.closed);
      if (!first || first.done) {
        await peer.close();
        return;
      }
      const msg = parseWorkerMessage(first.value);
      if (msg.type !== 'hello') return refuse('GG_ERR_MESSAGE_UNEXPECTED', `first message must be hello, got ${msg.type}`);
      hello = msg;
    } catch (e) {
      if (isGridError(e)) return refuse(e.code, e.message);
      throw e;
    }
    if (!SUPPORTED_PROTOCOL_VERSIONS.includes(hello.protocolVersion)) {
      return refuse(
        'GG_ERR_PROTOCOL_VERSION_UNSUPPORTED',
        `protocol version ${hello.protocolVersion} is not supported; this coordinator speaks ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`,
      );
    }
    if (hello.workerId !== workerId) {
      return refuse('GG_ERR_UNAUTHENTICATED', `hello names worker ${hello.workerId} but the certificate is for ${workerId}`);
    }
    const row = await getWorker(this.opts.db, workerId);
    if (!row) return refuse('GG_ERR_WORKER_UNKNOWN', `worker ${workerId} is not enrolled with this coordinator; enroll again with a new token`);
    if (row.state === 'revoked') return refuse('GG_ERR_WORKER_REVOKED', `worker ${workerId} was revoked by an administrator`);

    // markOnline refuses a revoked worker, which also covers a revocation
    // that lands between the check above and this write.
    const online = await markOnline(this.opts.db, workerId, {
      name: hello.name,
      hardware: hello.hardware,
      appVersion: hello.appVersion,
      instanceId: this.opts.instanceId,
      now: new Date(),
    });
    if (!online) return refuse('GG_ERR_WORKER_REVOKED', `worker ${workerId} was revoked by an administrator`);

    // Seeded from the store so the first heartbeat clears a reason left by an earlier session.
    const session: Session = {
      workerId,
      peer,
      channel,
      hello,
      slots: hello.capabilities.slots,
      lastHeartbeatAt: Date.now(),
      status: hello.status,
      pausedReason: online.pausedReason,
      adminPaused: false,
      cachedModels: new Set(hello.cachedModels),
      load: null,
      leases: new Map(),
    };
    const previous = this.sessions.get(workerId);
    this.sessions.set(workerId, session);
    if (previous) {
      log.warn({ workerId, old: previous.peer.remoteAddress, new: peer.remoteAddress }, 'same worker connected twice; the newest connection wins');
      void this.closeSession(previous, 'GG_ERR_SESSION_REPLACED', `another connection (${peer.remoteAddress}) presented this worker's certificate`);
    }
    const adminPolicy = (await getPolicies(this.opts.db, workerId))?.effective ?? {};
    session.adminPaused = adminPolicy.paused === true;
    await send(channel, {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      workerId,
      heartbeatIntervalSecs: this.opts.timing.heartbeatIntervalSecs,
      heartbeatTimeoutSecs: this.opts.timing.heartbeatTimeoutSecs,
      adminPolicy,
    });
    await this.updateStatus(session, hello.status, hello.pausedReason);
    log.info({ workerId, name: hello.name, remote: peer.remoteAddress }, 'worker online');
    this.emit('online', workerId);
    await this.maybeRenewCert(session, certDer);

    const budget = new TokenBucket(MESSAGE_RATE);
    try {
      for (let next = await frames.next(); !next.done; next = await frames.next()) {
        await budget.take();
        const msg = parseWorkerMessage(next.value);
        if (msg.type === 'heartbeat') await this.onHeartbeat(session, msg);
        else if (msg.type === 'error') log.warn({ workerId, code: msg.code }, `worker reported: ${msg.message}`);
        else if (msg.type === 'hello') throw new GridError('GG_ERR_MESSAGE_UNEXPECTED', 'hello sent twice');
        else this.emit('job', workerId, msg);
      }
    } catch (e) {
      if (!isGridError(e)) throw e;
      log.warn({ workerId, code: e.code }, `closing session: ${e.message}`);
      await this.closeSession(session, e.code, e.message);
    } finally {
      await this.ended(session);
    }
  }

  private async onHeartbeat(session: Session, hb: Heartbeat): Promise<void> {
    session.lastHeartbeatAt = Date.now();
    this.pendingLastSeen.set(session.workerId, new Date(session.lastHeartbeatAt));
    const statusChanged = hb.status !== session.status || (hb.slots !== undefined && hb.slots !== session.slots);
    if (hb.slots !== undefined) session.slots = hb.slots;
    session.load = hb.load;
    if (hb.cachedModels) session.cachedModels = new Set(hb.cachedModels);
    await this.updateStatus(session, hb.status, hb.pausedReason);
    this.emit('heartbeat', session.workerId, hb);
    if (statusChanged || hb.cachedModels) this.emit('capacity', session.workerId);
  }

  /** The worker's own account of whether it takes jobs; the reason is stored for `gogrid workers`. */
  private async updateStatus(session: Session, status: WorkerStatus, pausedReason: string | null): Promise<void> {
    session.status = status;
    const reason = status === 'paused' || status === 'draining' ? (pausedReason ?? (status === 'paused' ? 'Paused' : 'Finishing')) : null;
    if (reason === session.pausedReason) return;
    session.pausedReason = reason;
    await setPausedReason(this.opts.db, session.workerId, reason);
  }

  /**
   * Sends the administrator's current override to the worker, or to every
   * worker connected here (the coordinator calls it again when another
   * instance says a policy changed).
   */
  async pushPolicy(workerId?: string): Promise<number> {
    const targets = workerId === undefined ? [...this.sessions.values()] : [this.sessions.get(workerId)].filter((s) => s !== undefined);
    let sent = 0;
    for (const session of targets) {
      const policies = await getPolicies(this.opts.db, session.workerId);
      if (!policies) continue;
      const adminPaused = policies.effective.paused === true;
      if (adminPaused !== session.adminPaused) {
        session.adminPaused = adminPaused;
        this.emit('capacity', session.workerId);
      }
      try {
        await send(session.channel, { type: 'worker.policy', adminPolicy: policies.effective });
        sent++;
      } catch (e) {
        this.opts.logger.warn({ err: e, workerId: session.workerId }, 'could not send worker.policy');
      }
    }
    return sent;
  }

  // ---------------------------------------------------------------- the dispatcher's view

  /** Connected workers as the scheduler sees them. */
  views(): WorkerView[] {
    return [...this.sessions.values()].map((s) => ({
      id: s.workerId,
      hardware: s.hello.hardware,
      executors: s.hello.capabilities.executors,
      labels: s.hello.capabilities.labels,
      slots: s.slots,
      running: s.leases.size,
      paused: s.adminPaused || s.status === 'paused' || s.status === 'draining',
      cachedModels: s.cachedModels,
      cpuLoad: s.load?.cpu ?? null,
      freeMemoryBytes: s.load?.freeMemoryBytes ?? null,
    }));
  }

  /** Every lease the worker holds through its current session. */
  leasesOf(workerId: string): string[] {
    return [...(this.sessions.get(workerId)?.leases.values() ?? [])].map((l) => l.leaseId);
  }

  /** The lease the worker holds for a job through its current session, if any. */
  leaseOf(workerId: string, jobId: string): HeldLease | undefined {
    return this.sessions.get(workerId)?.leases.get(jobId);
  }

  /** Sends a job to a connected worker and records its lease; false if the worker is gone. */
  async assign(workerId: string, msg: Extract<CoordinatorMessageInput, { type: 'job.assign' }>): Promise<boolean> {
    const session = this.sessions.get(workerId);
    if (!session) return false;
    session.leases.set(msg.job.jobId, { leaseId: msg.leaseId, kind: msg.job.kind });
    try {
      await send(session.channel, msg);
      return true;
    } catch (e) {
      session.leases.delete(msg.job.jobId);
      this.opts.logger.warn({ err: e, workerId, jobId: msg.job.jobId }, 'could not send job.assign');
      return false;
    }
  }

  /** Forgets a lease (result taken, lease released); with `cancel`, also tells the worker to stop the job. */
  async endLease(workerId: string, jobId: string, cancel?: { reason: string }): Promise<void> {
    const session = this.sessions.get(workerId);
    const lease = session?.leases.get(jobId);
    if (!session || lease === undefined) return;
    session.leases.delete(jobId);
    if (cancel) await send(session.channel, { type: 'job.cancel', jobId, leaseId: lease.leaseId, reason: cancel.reason }).catch(() => undefined);
  }

  private async maybeRenewCert(session: Session, certDer: Uint8Array): Promise<void> {
    const cert = readCert(certDer);
    const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
    if (cert.notAfter.getTime() - Date.now() > lifetime / 2) return;
    const pem = new X509Certificate(certDer).toString();
    const renewed = await renewCert(this.opts.ca.material, pem, this.opts.timing.certValidityDays);
    const info = readCert(renewed);
    await updateCert(this.opts.db, session.workerId, info.fingerprint, info.notAfter);
    await send(session.channel, { type: 'cert.renew', certPem: renewed });
    this.opts.logger.info({ workerId: session.workerId, notAfter: info.notAfter }, 'client certificate renewed');
  }

  private sweep(): void {
    const deadline = Date.now() - this.opts.timing.heartbeatTimeoutSecs * 1000;
    for (const session of this.sessions.values()) {
      if (session.lastHeartbeatAt < deadline) {
        this.opts.logger.warn({ workerId: session.workerId }, 'heartbeat timeout');
        void this.closeSession(session, 'GG_ERR_HEARTBEAT_TIMEOUT', `no heartbeat for ${this.opts.timing.heartbeatTimeoutSecs} s`);
      }
    }
  }

  private async closeSession(session: Session, code: ErrorCode, message: string): Promise<void> {
    try {
      await closeWithError(session.peer, session.channel, code, message);
    } finally {
      await this.ended(session);
    }
  }

  /** Marks the worker offline unless a newer session for it has taken over. */
  private async ended(session: Session): Promise<void> {
    if (this.sessions.get(session.workerId) !== session) return;
    this.sessions.delete(session.workerId);
    this.pendingLastSeen.delete(session.workerId);
    await markOffline(this.opts.db, session.workerId, new Date(), this.opts.instanceId);
    this.opts.logger.info({ workerId: session.workerId }, 'worker offline');
    this.emit('offline', session.workerId);
  }

  private async flushLastSeen(): Promise<void> {
    if (this.pendingLastSeen.size === 0) return;
    const entries = [...this.pendingLastSeen].map(([id, at]) => ({ id, at }));
    this.pendingLastSeen.clear();
    try {
      await touchLastSeen(this.opts.db, entries);
    } catch (e) {
      this.opts.logger.error({ err: e }, 'could not record last_seen');
    }
  }
}

async function send(channel: FrameChannel, msg: CoordinatorMessageInput): Promise<void> {
  await channel.send(msg);
}

/** Sends a fatal error frame, lets it reach the peer, then closes the connection. */
async function closeWithError(peer: QuicPeer, channel: FrameChannel, code: ErrorCode, message: string): Promise<void> {
  try {
    await send(channel, { type: 'error', code, message, fatal: true });
    await channel.close();
  } catch {
    // The peer may already be gone; closing below is all that is left to do.
  }
  await withTimeout(peer.closed, CLOSE_GRACE_MS);
  await peer.close({ reason: code }).catch(() => undefined);
}

/** Resolves with the value, or undefined if the time runs out or `abandon` settles first. */
async function withTimeout<T>(p: Promise<T>, ms: number, abandon?: Promise<unknown>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  const racers: Promise<T | undefined>[] = [p, timeout];
  if (abandon) racers.push(abandon.then(() => undefined, () => undefined));
  try {
    return await Promise.race(racers);
  } finally {
    clearTimeout(timer);
  }
}
