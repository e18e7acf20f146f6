/**
 * The worker's phone-home agent: an explicit state machine that holds one
 * mTLS connection to the coordinator (QUIC, or TLS on TCP where UDP does not
 * get through: dial.ts), says hello, heartbeats at the interval the
 * coordinator chose, and reconnects with backoff.
 *
 *   const agent = new WorkerAgent({ dataDir, identity, appVersion, logger, probes });
 *   agent.on('state', (s) => console.log(s.state, s.detail));
 *   agent.start();
 *   await agent.stop(); // or: await agent.done, which rejects on a fatal error
 *
 *   stopped ─start→ connecting ─welcome→ online ─lost→ waiting ─delay→ connecting …
 *   any ─fatal error (revoked, replaced, unsupported version), or a bug→ failed
 *   any ─stop()→ stopping → stopped
 *
 * Only an error the registry (protocol/errors.ts) calls retryable leads to a
 * reconnect. The transport reports every network failure as a GridError, so
 * anything else is a bug here: retrying it would loop forever, so it fails.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import {
  COORDINATOR_SERVER_NAME,
  GridError,
  isGridError,
  parseCoordinatorMessage,
  PROTOCOL_VERSION,
  type CoordinatorMessage,
  type AdminOverride,
  type HardwareReport,
  type Heartbeat,
  type WorkerMessageInput,
  type WorkerStatus,
} from '../protocol/index.js';
import { connectQuic, type FrameChannel, type QuicConnectOptions } from '../transport/quic.js';
import { connectTls, proxyFor } from '../transport/tls.js';
import type { ControlConnection } from '../transport/frame-channel.js';
import { dialPlan, dialRace, networkKey, TransportMemory, type TransportMode } from './dial.js';
import { backoffDelayMs } from './backoff.js';
import { saveCertificate, type WorkerIdentity } from './identity.js';
import { SilenceWatch, silenceDeadlineMs } from './silence-watch.js';
import type { JobRunner } from './job-runner.js';
import { peerError } from './peer-error.js';
import { WORKER_DEFAULTS } from './worker-config.js';

export type AgentState = 'stopped' | 'connecting' | 'online' | 'waiting' | 'stopping' | 'failed';

export interface AgentStateEvent {
  state: AgentState;
  /** One line for a person: why we are waiting, what failed. */
  detail: string | null;
  error: GridError | null;
}

export interface AgentProbes {
  hardware(): Promise<HardwareReport>;
  load(): Promise<{ cpu: number | null; freeMemoryBytes: number | null }>;
}

/** After this long without a session, the waiting state says the coordinator may have moved. */
const MOVED_HINT_MS = 10 * 60_000;
const MOVED_HINT = 'if the coordinator moved, give its new address (--coordinator HOST:PORT, or Coordinator in the status window)';

/** Timing defaults: WORKER_DEFAULTS (worker-config.ts). */
export interface AgentOptions {
  dataDir: string;
  identity: WorkerIdentity;
  appVersion: string;
  logger: Logger;
  probes: AgentProbes;
  connectTimeoutMs?: number;
  /** Upper bound on how long a silent coordinator goes unnoticed (the peers agree on the smaller of both sides' values). */
  maxIdleTimeoutMs?: number;
  /**
   * QUIC pings on top of heartbeats, for NATs that drop UDP mappings faster
   * than the heartbeat interval. Each ping costs coordinator CPU (BENCHMARKS.md).
   */
  keepAliveIntervalMs?: number | null;
  /** How long it dials in vain before its state says the coordinator may have moved. @default 10 min */
  movedHintMs?: number;
  /** Reconnect delays. @default backoff.ts's */
  backoff?: { baseMs: number; capMs: number };
  /** Passed to connectQuic: one UDP socket shared by many agents in one process (bench/). @default none */
  socket?: QuicConnectOptions['socket'];
  /** QUIC, TLS on TCP, or QUIC with TCP raced in when UDP does not get through (dial.ts). @default auto */
  transport?: TransportMode;
  /** How long QUIC has to connect before TCP is raced in. @default WORKER_DEFAULTS.quicHeadStartMs */
  quicHeadStartMs?: number;
  /** While on TCP in auto mode, how often a QUIC handshake is tried to move back. @default WORKER_DEFAULTS.quicRetryMs */
  quicRetryMs?: number;
  /**
   * Whether the worker takes jobs now and why not, sent in `hello` and every
   * heartbeat (and at once on a change: call `statusChanged()`).
   * @default running, or `working` while jobs run
   */
  status?: () => { status: WorkerStatus; pausedReason: string | null; gpuOff?: string | null };
  /**
   * Whether a job assigned now may start. A job the coordinator sent before
   * it heard of a pause is given back at once (`job.release`), not run.
   * @default always
   */
  accepting?: () => boolean;
  /** Runs assigned jobs; without one the worker offers no executors (a connection-only worker, as in the fleet benchmark). */
  jobs?: {
    runner: JobRunner;
    models: { cached(): string[] };
    /** The models its warm job processes hold loaded, for the coordinator to send a model's jobs where it is. @default none */
    loaded?(): string[];
    capabilities: { executors: string[]; slots: number; labels: string[] };
  };
}

const ALLOWED: Record<AgentState, readonly AgentState[]> = {
  stopped: ['connecting'],
  connecting: ['online', 'waiting', 'stopping', 'failed'],
  online: ['waiting', 'stopping', 'failed'],
  waiting: ['connecting', 'stopping'],
  stopping: ['stopped'],
  failed: [],
};

interface AgentEvents {
  state: [AgentStateEvent];
  welcome: [{ heartbeatIntervalSecs: number }];
  /** The administrator's override for this worker, from `welcome` and each `worker.policy`. */
  adminPolicy: [AdminOverride];
}

export class WorkerAgent extends EventEmitter<AgentEvents> {
  private current: AgentStateEvent = { state: 'stopped', detail: null, error: null };
  private readonly abort = new AbortController();
  private closeConnection: (() => Promise<void>) | undefined;
  private loop: Promise<void> | undefined;
  private identity: WorkerIdentity;
  /** What worked per coordinator and network (dial.ts), loaded at the first dial. */
  private transports: TransportMemory | undefined;
  /** Set when a TCP session is closed on purpose because QUIC works again: reconnect at once. */
  private movingToQuic = false;
  /** The cached-model list as last sent, to send it again only when it changes. */
  private reportedModels = '';
  /** The same for loaded models. */
  private reportedLoaded = '';
  /** Sends a heartbeat now, while a connection is up. */
  private beatNow: (() => void) | null = null;
  /** The latest load sample: heartbeats carry it, so it is at most one interval old. */
  private lastLoad: Heartbeat['load'] = { cpu: null, freeMemoryBytes: null };
  private sampling = false;

  constructor(private readonly opts: AgentOptions) {
    super();
    this.identity = opts.identity;
  }

  get state(): AgentStateEvent {
    return this.current;
  }

  get workerId(): string {
    return this.identity.workerId;
  }

  /** The identity in use, with a renewed certificate once the coordinator sent one. */
  get currentIdentity(): WorkerIdentity {
    return this.identity;
  }

  /** Settles when the agent stops: resolves after stop(), rejects with the GridError (or the bug) that made it fail. */
  get done(): Promise<void> {
    if (!this.loop) throw new Error('WorkerAgent.done read before start()');
    return this.loop;
  }

  start(): void {
    this.loop = this.run();
    // Callers may only look at `state` events; a fatal error is also reported there.
    this.loop.catch(() => undefined);
  }

  async stop(): Promise<void> {
    if (this.current.state === 'stopped' || this.current.state === 'failed') return;
    this.transition('stopping', null);
    this.abort.abort();
    await this.closeConnection?.();
    await this.loop?.catch(() => undefined);
  }

  /**
   * The status (paused, its reason) changed: tell the coordinator now rather
   * than at the next heartbeat, so it stops assigning jobs at once.
   */
  statusChanged(): void {
    this.beatNow?.();
  }

  /** Resolves the next time the agent reaches `state`. */
  waitFor(state: AgentState): Promise<AgentStateEvent> {
    if (this.current.state === state) return Promise.resolve(this.current);
    return new Promise((resolve) => {
      const on = (e: AgentStateEvent) => {
        if (e.state !== state) return;
        this.off('state', on);
        resolve(e);
      };
      this.on('state', on);
    });
  }

  private transition(state: AgentState, detail: string | null, error: GridError | null = null): void {
    if (!ALLOWED[this.current.state].includes(state)) {
      throw new Error(`illegal agent transition ${this.current.state} → ${state}`);
    }
    this.current = { state, detail, error };
    this.emit('state', this.current);
  }

  private async run(): Promise<void> {
    const { logger } = this.opts;
    const hardware = await this.opts.probes.hardware();
    let attempt = 0;
    // Since when no session got as far as a welcome, and whether the log said so yet.
    let downSince = performance.now();
    let saidMoved = false;
    this.transition('connecting', `connecting to ${this.address()}`);
    for (;;) {
      try {
        await this.session(hardware, () => {
          attempt = 0;
          downSince = performance.now();
          saidMoved = false;
        });
        if (this.abort.signal.aborted) break;
        if (this.movingToQuic) {
          this.movingToQuic = false;
          this.transition('waiting', 'moving to QUIC');
          this.transition('connecting', `connecting to ${this.address()}`);
          continue;
        }
        logger.warn('connection to the coordinator was lost');
      } catch (e) {
        if (this.abort.signal.aborted) break;
        if (!isGridError(e)) {
          const bug = new GridError('GG_ERR_INTERNAL', `internal error: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
          logger.error({ err: e }, bug.message);
          this.transition('failed', bug.message, bug);
          throw e;
        }
        if (!e.retryable) {
          logger.error({ code: e.code }, e.message);
          this.transition('failed', e.message, e);
          throw e;
        }
        logger.warn({ code: e.code }, e.message);
      }
      const waitMs = backoffDelayMs(attempt++, this.opts.backoff);
      // A coordinator that moved (another port, another machine) is dialled at its old address for ever: say what to do.
      const downMs = performance.now() - downSince;
      const moved = downMs >= (this.opts.movedHintMs ?? MOVED_HINT_MS) ? `no answer from ${this.address()} for ${Math.round(downMs / 60_000)} min; ${MOVED_HINT}` : null;
      if (moved !== null && !saidMoved) logger.warn(moved);
      saidMoved ||= moved !== null;
      this.transition('waiting', `reconnecting in ${Math.ceil(waitMs / 1000)} s${moved === null ? '' : ` (${moved})`}`);
      const waited = await delay(waitMs, true, { signal: this.abort.signal }).catch(() => false);
      if (!waited) break;
      this.transition('connecting', `connecting to ${this.address()}`);
    }
    this.transition('stopped', null);
  }

  /** What a connection to the coordinator takes over either transport: where, the pinned CA, our identity, the deadlines. */
  private dialOptions() {
    const { identity } = this;
    return {
      host: identity.coordinator.host,
      port: identity.coordinator.port,
      serverName: COORDINATOR_SERVER_NAME,
      tls: { caPem: identity.caPem, certPem: identity.certPem, keyPem: identity.keyPem },
      connectTimeoutMs: this.opts.connectTimeoutMs ?? WORKER_DEFAULTS.connectTimeoutMs,
      maxIdleTimeoutMs: this.opts.maxIdleTimeoutMs ?? WORKER_DEFAULTS.maxIdleTimeoutMs,
    };
  }

  private dialQuic(): Promise<ControlConnection> {
    return connectQuic({
      ...this.dialOptions(),
      keepAliveIntervalMs: this.opts.keepAliveIntervalMs ?? WORKER_DEFAULTS.keepAliveIntervalMs,
      logger: this.opts.logger,
      socket: this.opts.socket,
    });
  }

  private dialTcp(): Promise<ControlConnection> {
    const o = this.dialOptions();
    return connectTls({ ...o, proxy: proxyFor(o.host, o.port) });
  }

  /** The key what worked is remembered under: this coordinator, on this network. */
  private transportKey(): string {
    return `${this.address()}|${networkKey()}`;
  }

  /** A connection by the transport plan (dial.ts); in auto mode, what won is remembered. */
  private async dial(): Promise<ControlConnection> {
    const mode = this.opts.transport ?? 'auto';
    const memory = (this.transports ??= await TransportMemory.load(this.opts.dataDir));
    const key = this.transportKey();
    const plan = dialPlan(mode, mode === 'auto' ? memory.get(key) : null, this.opts.quicHeadStartMs ?? WORKER_DEFAULTS.quicHeadStartMs);
    const conn = await dialRace(plan, (kind) => (kind === 'quic' ? this.dialQuic() : this.dialTcp()));
    if (mode === 'auto') {
      if (conn.transport === 'tcp') this.opts.logger.warn(`no QUIC (UDP) connection to ${this.address()}; connected over TCP instead`);
      await memory.set(key, conn.transport);
    }
    return conn;
  }

  /**
   * On TCP in auto mode: every `quicRetryMs`, while no job runs (a reconnect
   * hands running jobs back), try a QUIC handshake; once one succeeds, close
   * this connection so the next one goes over QUIC.
   */
  private watchForQuic(conn: ControlConnection): () => void {
    if (conn.transport !== 'tcp' || (this.opts.transport ?? 'auto') !== 'auto') return () => undefined;
    let trying = false;
    const timer = setInterval(() => {
      if (trying || (this.opts.jobs?.runner.busy ?? 0) > 0) return;
      trying = true;
      this.dialQuic()
        .then(async (probe) => {
          await probe.close();
          await this.transports?.set(this.transportKey(), 'quic');
          this.opts.logger.info(`UDP gets through to ${this.address()} again: moving to QUIC`);
          this.movingToQuic = true;
          await conn.close();
        })
        .catch(() => undefined)
        .finally(() => (trying = false));
    }, this.opts.quicRetryMs ?? WORKER_DEFAULTS.quicRetryMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  /** One connection, from connect to loss. Resolves when the connection ends; throws on errors. */
  private async session(hardware: HardwareReport, onWelcome: () => void): Promise<void> {
    const { identity } = this;
    const conn = await this.dial();
    this.closeConnection = () => conn.close();
    const stopWatching = this.watchForQuic(conn);
    let heartbeat: NodeJS.Timeout | undefined;
    let silence: SilenceWatch | undefined;
    const jobs = this.opts.jobs;
    try {
      if (this.abort.signal.aborted) return;
      const cachedModels = jobs?.models.cached() ?? [];
      this.reportedModels = cachedModels.join();
      // A new session knows of no loaded model: the first heartbeat says which.
      this.reportedLoaded = '';
      await send(conn.channel, {
        type: 'hello',
        protocolVersion: PROTOCOL_VERSION,
        workerId: identity.workerId,
        name: identity.name,
        appVersion: this.opts.appVersion,
        hardware,
        cachedModels,
        ...this.currentStatus(),
        capabilities: { ...(jobs ? { ...jobs.capabilities, slots: jobs.runner.slotCount } : { executors: [], slots: 0, labels: [] }), busyHeartbeats: true, heartbeatAcks: true },
      });
      for await (const raw of conn.channel.frames()) {
        silence?.heard();
        const msg = parseCoordinatorMessage(raw);
        if (msg.type === 'welcome') {
          onWelcome();
          jobs?.runner.attach((m) => send(conn.channel, m));
          this.emit('adminPolicy', msg.adminPolicy);
          if (msg.heartbeatAcks === true) {
            const deadlineMs = silenceDeadlineMs(msg.heartbeatTimeoutSecs);
            silence = new SilenceWatch(deadlineMs, () => {
              this.opts.logger.warn(`the coordinator did not answer a heartbeat within ${deadlineMs / 1000} s; connecting again`);
              void conn.close().catch(() => undefined);
            });
          }
          heartbeat = this.startHeartbeat(conn.channel, msg.heartbeatIntervalSecs, msg.busyHeartbeatIntervalSecs, silence);
          this.transition('online', `connected to ${this.address()}${conn.transport === 'tcp' ? ' over TCP' : ''}`);
          this.emit('welcome', { heartbeatIntervalSecs: msg.heartbeatIntervalSecs });
        } else {
          await this.handle(msg, (m) => send(conn.channel, m));
        }
      }
    } finally {
      stopWatching();
      clearInterval(heartbeat);
      silence?.stop();
      this.beatNow = null;
      this.closeConnection = undefined;
      await jobs?.runner.detach();
      await conn.close().catch(() => undefined);
    }
  }

  private async handle(msg: CoordinatorMessage, reply: (m: WorkerMessageInput) => Promise<void>): Promise<void> {
    switch (msg.type) {
      case 'error':
        throw peerError(msg.code, `coordinator: ${msg.message}`);
      case 'cert.renew':
        await saveCertificate(this.opts.dataDir, msg.certPem);
        this.identity = { ...this.identity, certPem: msg.certPem };
        this.opts.logger.info('client certificate renewed');
        return;
      case 'welcome':
        throw new GridError('GG_ERR_MESSAGE_UNEXPECTED', 'welcome received twice');
      case 'heartbeat.ack':
        return;
      case 'job.assign':
        if (!this.opts.jobs) {
          this.opts.logger.warn({ jobId: msg.job.jobId }, 'job assigned to a worker that runs no jobs');
        } else if (this.opts.accepting && !this.opts.accepting()) {
          const reason = this.currentStatus().pausedReason ?? 'paused';
          await reply({ type: 'job.release', jobId: msg.job.jobId, leaseId: msg.leaseId, reason });
        } else {
          this.opts.jobs.runner.accept(msg);
        }
        return;
      case 'job.cancel':
        this.opts.jobs?.runner.cancel(msg.jobId, msg.leaseId);
        return;
      case 'worker.policy':
        this.emit('adminPolicy', msg.adminPolicy);
        return;
      default:
        this.opts.logger.warn({ type: msg.type }, 'message not handled by this worker version');
    }
  }

  /**
   * Heartbeats every `intervalSecs`, and every `busySecs` while jobs run
   * (where the coordinator asks for it): a coordinator that hears nothing
   * from a busy worker for a few seconds moves its jobs on.
   */
  private startHeartbeat(channel: FrameChannel, intervalSecs: number, busySecs = intervalSecs, silence?: SilenceWatch): NodeJS.Timeout {
    let sentAt = performance.now();
    const beat = () => {
      sentAt = performance.now();
      silence?.sent();
      send(channel, this.heartbeat(this.lastLoad))
        // A closed connection is noticed by the frame loop; anything else is a bug, which must show in the log.
        .catch((e: unknown) => (isGridError(e) ? this.opts.logger.debug({ err: e }, 'heartbeat not sent') : this.opts.logger.error({ err: e }, 'heartbeat not sent')));
      this.sampleLoad();
    };
    this.beatNow = beat;
    this.sampleLoad();
    const tickSecs = Math.min(intervalSecs, busySecs);
    return setInterval(() => {
      const busy = (this.opts.jobs?.runner.busy ?? 0) > 0;
      // A tick's timer can fire a hair early: 5 % of the interval counts as on time.
      if (busy || performance.now() - sentAt >= intervalSecs * 1000 * 0.95) beat();
    }, tickSecs * 1000);
  }

  /**
   * Refreshes `lastLoad` for the next heartbeat. A heartbeat never waits for
   * a probe: it is the liveness signal, and a probe can take seconds (a busy
   * thread pool, a slow OS query), long enough to look like a dead worker.
   * One sample at a time, so a slow probe cannot pile up behind itself.
   */
  private sampleLoad(): void {
    if (this.sampling) return;
    this.sampling = true;
    this.opts.probes
      .load()
      .then((load) => (this.lastLoad = load))
      .catch((e: unknown) => this.opts.logger.error({ err: e }, 'load probe failed'))
      .finally(() => (this.sampling = false));
  }

  private currentStatus(): { status: WorkerStatus; pausedReason: string | null; gpuOff?: string | null } {
    if (this.opts.status) return this.opts.status();
    const runner = this.opts.jobs?.runner;
    return { status: runner && runner.busy > 0 ? 'working' : 'idle', pausedReason: null };
  }

  private heartbeat(load: Heartbeat['load']): WorkerMessageInput {
    const runner = this.opts.jobs?.runner;
    const models = this.opts.jobs?.models.cached();
    // The cache list can be long; it goes out only when it changed.
    const changed = models !== undefined && models.join() !== this.reportedModels;
    if (changed) this.reportedModels = models.join();
    const loaded = this.opts.jobs?.loaded?.().sort();
    const loadedChanged = loaded !== undefined && loaded.join() !== this.reportedLoaded;
    if (loadedChanged) this.reportedLoaded = loaded.join();
    return {
      type: 'heartbeat',
      ...this.currentStatus(),
      load,
      runningJobs: runner?.running() ?? [],
      ...(changed ? { cachedModels: models } : {}),
      ...(loadedChanged ? { loadedModels: loaded } : {}),
      ...(runner ? { slots: runner.slotCount } : {}),
    };
  }

  private address(): string {
    return `${this.identity.coordinator.host}:${this.identity.coordinator.port}`;
  }
}

function send(channel: FrameChannel, msg: WorkerMessageInput): Promise<void> {
  return channel.send(msg);
}
