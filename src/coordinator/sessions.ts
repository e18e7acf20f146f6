/**
 * Worker sessions: one per authenticated connection (QUIC today; any
 * ControlPeer). This is where a worker becomes `online` and `offline`, where
 * heartbeats are taken, and where a revoked or replaced worker is thrown out.
 * Sessions carry messages; the leases they are about are the dispatcher's.
 *
 *   const sessions = new SessionManager({ db, ca, instanceId, timing, maxConnections, connectionCount, logger });
 *   quicServer = await startQuicServer({ …, onConnection: (peer) => sessions.handlePeer(peer) });
 *   await sessions.disconnect(workerId, 'GG_ERR_WORKER_REVOKED', message); // within a second
 *
 * Liveness lives in memory; the store sees transitions (online, offline,
 * paused reason) at once and `last_seen` in one batched statement per
 * flush, because 10,000 workers heartbeating every 30 s would otherwise be
 * 333 single-row writes a second.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { X509Certificate } from 'node:crypto';
import type { ControlPeer, FrameChannel } from '../transport/quic.js';
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
import type { SchedulableWorker } from './scheduler.js';
import type { Db } from './store/db.js';
import { getPolicies, getWorker, markOffline, markOnline, setPausedReason, touchLastSeen, updateCert, type WorkerRow } from './store/index.js';
import type { CoordinatorCa } from './ca.js';
import { TokenBucket } from '../common/token-bucket.js';

export interface SessionTiming {
  heartbeatIntervalSecs: number;
  heartbeatTimeoutSecs: number;
  /** While a worker that can runs jobs (config.ts says why): the interval it is told, and the timeout it is held to. */
  busyHeartbeatIntervalSecs: number;
  busyHeartbeatTimeoutSecs: number;
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
  /** Hears of each connection refused at max_connections (the metrics). */
  refused?: (reason: 'max_connections') => void;
  logger: Logger;
}

interface Session {
  readonly workerId: string;
  readonly peer: ControlPeer;
  readonly channel: FrameChannel;
  readonly hello: Hello;
  /** The client certificate the connection presented (renewed past half its life). */
  readonly certDer: Uint8Array;
  /** From hello, then from heartbeats that change it. */
  slots: number;
  /** performance.now() of its last heartbeat: liveness on the monotonic clock, which a wall-clock step cannot move. */
  lastHeartbeatAt: number;
  /**
   * Since when it has jobs, as far as this side knows (a job sent to it, or a
   * heartbeat listing some); null while idle. A worker with busy heartbeats
   * is then held to the busy timeout.
   */
  busySince: number | null;
  status: WorkerStatus;
  pausedReason: string | null;
  /** Why its owner's policy keeps jobs off its GPU now; null when they may use it. */
  gpuOff: string | null;
  /** An administrator paused it: no jobs whatever the worker reports (an older worker may not apply the pause itself). */
  adminPaused: boolean;
  cachedModels: ReadonlySet<string>;
  loadedModels: ReadonlySet<string>;
  load: Heartbeat['load'] | null;
}

/** A registered worker as the scheduler sees it, but for `running` and `placedVramMiB`, which the dispatcher's leases know. */
export type ConnectedWorker = Omit<SchedulableWorker, 'running' | 'placedVramMiB'>;

/** A message about a job, from the worker that holds its lease (or claims to). */
export type JobMessage = Extract<WorkerMessage, { type: 'job.progress' | 'job.partial' | 'job.result' | 'job.release' }>;

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
  /** Counts policy pushes, so that a session registering during one can tell it missed it. */
  private policyVersion = 0;
  private readonly transitions = new Map<string, Promise<void>>();

  constructor(private readonly opts: SessionManagerOptions) {
    super();
  }

  start(): void {
    const { heartbeatTimeoutSecs, busyHeartbeatTimeoutSecs, heartbeatIntervalSecs } = this.opts.timing;
    const sweepMs = Math.max(50, Math.min(1000, (Math.min(heartbeatTimeoutSecs, busyHeartbeatTimeoutSecs) * 1000) / 4));
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
  handlePeer(peer: ControlPeer): void {
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

  /**
   * A connection's life, in order: admitted (capacity, certificate), hello
   * read and checked, enrollment checked, welcome sent with the
   * administrator's policy, registered (online, schedulable), then its frames
   * served until it ends. A session is visible to the dispatcher only from
   * `register` on, so no job.assign can overtake the welcome.
   */
  private async runPeer(peer: ControlPeer): Promise<void> {
    const channel = await withTimeout(peer.acceptChannel(), this.opts.timing.helloTimeoutMs, peer.closed);
    if (!channel) {
      await peer.close();
      return;
    }
    const frames = channel.frames()[Symbol.asyncIterator]();
    let session: Session;
    let policyVersion: number;
    try {
      const { workerId, certDer } = this.admit(peer);
      const hello = await this.readHello(peer, frames, workerId);
      if (!hello) {
        await peer.close();
        return;
      }
      session = await this.checkEnrolled({ workerId, peer, channel, hello, certDer });
      policyVersion = this.policyVersion;
      await this.welcome(session);
      await this.register(session);
    } catch (e) {
      if (isGridError(e)) return closeWithError(peer, channel, e.code, e.message);
      throw e;
    }
    try {
      // A policy pushed between loading it for the welcome and registering went to the other sessions only.
      if (this.policyVersion !== policyVersion) await this.pushPolicy(session.workerId);
      await this.maybeRenewCert(session);
      await this.serve(session, frames);
    } finally {
      await this.ended(session);
    }
  }

  /** Whether this connection may start a session at all, and for which worker its certificate speaks. */
  private admit(peer: ControlPeer): { workerId: string; certDer: Uint8Array } {
    if (this.stopping) throw new GridError('GG_ERR_SHUTTING_DOWN', 'coordinator is shutting down');
    if (this.opts.connectionCount() > this.opts.maxConnections) {
      this.opts.logger.warn({ remote: peer.remoteAddress, max: this.opts.maxConnections }, 'connection refused: max_connections reached');
      this.opts.refused?.('max_connections');
      throw new GridError('GG_ERR_TOO_MANY_CONNECTIONS', `coordinator is at max_connections (${this.opts.maxConnections}); try again later`);
    }
    const certDer = peer.peerCertificate;
    if (!certDer) throw new GridError('GG_ERR_UNAUTHENTICATED', "a client certificate from this coordinator's CA is required; enroll with `gogrid worker --token`");
    const workerId = readCert(certDer).subjectCommonName;
    if (!workerId) throw new GridError('GG_ERR_UNAUTHENTICATED', 'client certificate has no subject common name');
    return { workerId, certDer };
  }

  /** The first frame, which must be a hello this coordinator can answer, from the worker the certificate names; null if the peer left first. */
  private async readHello(peer: ControlPeer, frames: AsyncIterator<unknown>, workerId: string): Promise<Hello | null> {
    const first = await withTimeout(frames.next(), this.opts.timing.helloTimeoutMs, peer.closed);
    if (!first || first.done) return null;
    const hello = parseWorkerMessage(first.value);
    if (hello.type !== 'hello') throw new GridError('GG_ERR_MESSAGE_UNEXPECTED', `first message must be hello, got ${hello.type}`);
    if (!SUPPORTED_PROTOCOL_VERSIONS.includes(hello.protocolVersion)) {
      throw new GridError(
        'GG_ERR_PROTOCOL_VERSION_UNSUPPORTED',
        `protocol version ${hello.protocolVersion} is not supported; this coordinator speaks ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')}`,
      );
    }
    if (hello.workerId !== workerId) throw new GridError('GG_ERR_UNAUTHENTICATED', `hello names worker ${hello.workerId} but the certificate is for ${workerId}`);
    return hello;
  }

  /** The session of an enrolled, unrevoked worker, its status from hello recorded; not yet visible to anyone. */
  private async checkEnrolled(s: Pick<Session, 'workerId' | 'peer' | 'channel' | 'hello' | 'certDer'>): Promise<Session> {
    const row = await getWorker(this.opts.db, s.workerId);
    if (!row) throw new GridError('GG_ERR_WORKER_UNKNOWN', `worker ${s.workerId} is not enrolled with this coordinator; enroll again with a new token`);
    if (row.state === 'revoked') throw new GridError('GG_ERR_WORKER_REVOKED', revokedMessage(s.workerId));
    const session: Session = {
      ...s,
      slots: s.hello.capabilities.slots,
      lastHeartbeatAt: performance.now(),
      busySince: null,
      status: s.hello.status,
      // Seeded from the store so that a reason left by an earlier session is cleared.
      pausedReason: row.pausedReason,
      gpuOff: s.hello.gpuOff,
      adminPaused: false,
      cachedModels: new Set(s.hello.cachedModels),
      loadedModels: new Set(),
      load: null,
    };
    await this.updateStatus(session, s.hello.status, s.hello.pausedReason);
    return session;
  }

  /** Loads the administrator's policy for the worker and sends it with the welcome. */
  private async welcome(session: Session): Promise<void> {
    const adminPolicy = (await getPolicies(this.opts.db, session.workerId))?.effective ?? {};
    session.adminPaused = adminPolicy.paused === true;
    await send(session.channel, {
      type: 'welcome',
      protocolVersion: PROTOCOL_VERSION,
      workerId: session.workerId,
      heartbeatIntervalSecs: this.opts.timing.heartbeatIntervalSecs,
      heartbeatTimeoutSecs: this.opts.timing.heartbeatTimeoutSecs,
      busyHeartbeatIntervalSecs: this.opts.timing.busyHeartbeatIntervalSecs,
      busyHeartbeatTimeoutSecs: this.opts.timing.busyHeartbeatTimeoutSecs,
      ...(session.hello.capabilities.heartbeatAcks && { heartbeatAcks: true }),
      adminPolicy,
    });
  }

  /**
   * Marks the worker online and makes the session the worker's one: from here
   * the dispatcher sees it. An earlier session of the same worker is closed.
   * Nothing is awaited between the store's answer and the map, so a revocation
   * (store first, then `disconnect`) either is refused here or finds the session.
   */
  private async register(session: Session): Promise<void> {
    const { workerId, hello, peer } = session;
    await this.inTurn(workerId, async () => {
      // Refused for a revoked worker, which covers a revocation since checkEnrolled.
      const online = await markOnline(this.opts.db, workerId, {
        name: hello.name,
        hardware: hello.hardware,
        appVersion: hello.appVersion,
        transport: peer.transport,
        labels: hello.capabilities.labels,
        instanceId: this.opts.instanceId,
        now: new Date(),
      });
      if (!online) throw new GridError('GG_ERR_WORKER_REVOKED', revokedMessage(workerId));
      const previous = this.sessions.get(workerId);
      this.sessions.set(workerId, session);
      this.opts.logger.info({ workerId, name: hello.name, remote: peer.remoteAddress, transport: peer.transport }, 'worker online');
      this.emit('online', workerId);
      if (previous) {
        this.opts.logger.warn({ workerId, old: previous.peer.remoteAddress, new: peer.remoteAddress }, 'same worker connected twice; the newest connection wins');
        void this.closeSession(previous, 'GG_ERR_SESSION_REPLACED', `another connection (${peer.remoteAddress}) presented this worker's certificate`);
      }
    });
  }

  /** The session's frames until it ends; a protocol error closes it with that error. */
  private async serve(session: Session, frames: AsyncIterator<unknown>): Promise<void> {
    const { workerId } = session;
    const budget = new TokenBucket(MESSAGE_RATE);
    try {
      for (let next = await frames.next(); !next.done; next = await frames.next()) {
        await budget.take();
        const msg = parseWorkerMessage(next.value);
        if (msg.type === 'heartbeat') await this.onHeartbeat(session, msg);
        else if (msg.type === 'error') this.opts.logger.warn({ workerId, code: msg.code }, `worker reported: ${msg.message}`);
        else if (msg.type === 'hello') throw new GridError('GG_ERR_MESSAGE_UNEXPECTED', 'hello sent twice');
        else this.emit('job', workerId, msg);
      }
    } catch (e) {
      if (!isGridError(e)) throw e;
      this.opts.logger.warn({ workerId, code: e.code }, `closing session: ${e.message}`);
      await this.closeSession(session, e.code, e.message);
    }
  }

  private async onHeartbeat(session: Session, hb: Heartbeat): Promise<void> {
    session.lastHeartbeatAt = performance.now();
    // First, before any database write: the answer says this process is alive, nothing more.
    if (session.hello.capabilities.heartbeatAcks) {
      // A failed send means a closing connection, which the frame loop notices.
      send(session.channel, { type: 'heartbeat.ack' }).catch((e: unknown) => this.opts.logger.debug({ err: e, workerId: session.workerId }, 'heartbeat.ack not sent'));
    }
    if (hb.runningJobs.length === 0) session.busySince = null;
    else session.busySince ??= session.lastHeartbeatAt;
    this.pendingLastSeen.set(session.workerId, new Date());
    const statusChanged = hb.status !== session.status || (hb.slots !== undefined && hb.slots !== session.slots) || hb.gpuOff !== session.gpuOff;
    if (hb.slots !== undefined) session.slots = hb.slots;
    session.gpuOff = hb.gpuOff;
    session.load = hb.load;
    if (hb.cachedModels) session.cachedModels = new Set(hb.cachedModels);
    if (hb.loadedModels) session.loadedModels = new Set(hb.loadedModels);
    await this.updateStatus(session, hb.status, hb.pausedReason);
    this.emit('heartbeat', session.workerId, hb);
    if (statusChanged || hb.cachedModels || hb.loadedModels) this.emit('capacity', session.workerId);
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
    this.policyVersion++;
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

  /** Registered workers as the scheduler sees them, but for the jobs they run (the dispatcher's leases say). */
  views(): ConnectedWorker[] {
    return [...this.sessions.values()].map((s) => ({
      id: s.workerId,
      hardware: s.hello.hardware,
      executors: s.hello.capabilities.executors,
      labels: s.hello.capabilities.labels,
      slots: s.slots,
      paused: s.adminPaused || s.status === 'paused' || s.status === 'draining',
      gpuOff: s.gpuOff,
      cachedModels: s.cachedModels,
      loadedModels: s.loadedModels,
      cpuLoad: s.load?.cpu ?? null,
      freeMemoryBytes: s.load?.freeMemoryBytes ?? null,
      freeVramMiB: s.load?.freeVramMiB ?? null,
    }));
  }

  /** Sends to a worker's current session; false (logged) if it has none or the send failed. */
  async send(workerId: string, msg: CoordinatorMessageInput): Promise<boolean> {
    const session = this.sessions.get(workerId);
    if (!session) return false;
    if (msg.type === 'job.assign') session.busySince ??= performance.now();
    try {
      await send(session.channel, msg);
      return true;
    } catch (e) {
      this.opts.logger.warn({ err: e, workerId, type: msg.type }, `could not send ${msg.type}`);
      return false;
    }
  }

  private async maybeRenewCert(session: Session): Promise<void> {
    const cert = readCert(session.certDer);
    const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
    if (cert.notAfter.getTime() - Date.now() > lifetime / 2) return;
    const pem = new X509Certificate(session.certDer).toString();
    const renewed = await renewCert(this.opts.ca.material, pem, this.opts.timing.certValidityDays);
    const info = readCert(renewed);
    await updateCert(this.opts.db, session.workerId, info.fingerprint, info.notAfter);
    await send(session.channel, { type: 'cert.renew', certPem: renewed });
    this.opts.logger.info({ workerId: session.workerId, notAfter: info.notAfter }, 'client certificate renewed');
  }

  private sweep(): void {
    const now = performance.now();
    const { heartbeatTimeoutSecs, busyHeartbeatTimeoutSecs } = this.opts.timing;
    for (const session of this.sessions.values()) {
      const busy = session.busySince !== null && session.hello.capabilities.busyHeartbeats;
      // Busy: from its last heartbeat or from when it got its job, whichever is later (its heartbeats were slow till then).
      const since = busy ? Math.max(session.lastHeartbeatAt, session.busySince!) : session.lastHeartbeatAt;
      const timeoutSecs = busy ? busyHeartbeatTimeoutSecs : heartbeatTimeoutSecs;
      if (now - since > timeoutSecs * 1000) {
        this.opts.logger.warn({ workerId: session.workerId, busy }, 'heartbeat timeout');
        void this.closeSession(session, 'GG_ERR_HEARTBEAT_TIMEOUT', `no heartbeat for ${timeoutSecs} s${busy ? ' while running jobs' : ''}`);
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
    const { workerId } = session;
    await this.inTurn(workerId, async () => {
      if (this.sessions.get(workerId) !== session) return;
      this.sessions.delete(workerId);
      this.pendingLastSeen.delete(workerId);
      await markOffline(this.opts.db, workerId, new Date(), this.opts.instanceId);
      this.opts.logger.info({ workerId }, 'worker offline');
      this.emit('offline', workerId);
    });
  }

  /**
   * Runs a worker's online and offline transitions one after another, so that
   * the store's state is the one of the last session, whichever of an old
   * session's end and a new one's start is written first.
   */
  private inTurn(workerId: string, fn: () => Promise<void>): Promise<void> {
    const next = (this.transitions.get(workerId) ?? Promise.resolve()).then(fn);
    const settled = next.catch(() => undefined);
    this.transitions.set(workerId, settled);
    void settled.then(() => {
      if (this.transitions.get(workerId) === settled) this.transitions.delete(workerId);
    });
    return next;
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

/** What a revoked worker is told as its connection closes, by whichever instance holds it. */
export const revokedMessage = (workerId: string) => `worker ${workerId} was revoked by an administrator`;

async function send(channel: FrameChannel, msg: CoordinatorMessageInput): Promise<void> {
  await channel.send(msg);
}

/** Sends a fatal error frame, lets it reach the peer, then closes the connection. */
async function closeWithError(peer: ControlPeer, channel: FrameChannel, code: ErrorCode, message: string): Promise<void> {
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
  const timer = new AbortController();
  const racers: Promise<T | undefined>[] = [p, delay(ms, undefined, { signal: timer.signal })];
  if (abandon) racers.push(abandon.then(() => undefined, () => undefined));
  try {
    return await Promise.race(racers);
  } finally {
    timer.abort();
  }
}
