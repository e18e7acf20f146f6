/**
 * Coordinator instances sharing one PostgreSQL tell one another what each
 * cannot see for itself (src/protocol/cluster.ts): jobs queued elsewhere,
 * a cancel for a job whose worker is connected here, jobs finished that a
 * client here waits on, an administrator's policy for workers connected
 * here. Over LISTEN/NOTIFY on one channel. On the embedded PGlite only one
 * process can open the database, so there is nobody to tell: `publish`
 * sends nothing and no event comes.
 *
 *   const cluster = await openCluster({ db, databaseUrl, instanceId, logger });
 *   cluster.peers();                       // ['c-…']: the other instances heard from lately
 *   cluster.on('event', (e) => { if (e.type === 'jobs.queued') dispatcher.kick(); });
 *   cluster.on('resync', () => …);         // the listening connection came back: events may have been missed
 *   cluster.publish({ type: 'jobs.queued' });
 *   await cluster.close();
 *
 * Events published in one turn of the event loop go out together, and the
 * next ones gather for at least GAP_MS after a NOTIFY, so a busy instance
 * sends at most ~100 notifications a second, not one per job (each costs
 * the database a statement and every listening instance a wake-up). An
 * instance that has heard of no other (PostgreSQL with one coordinator, the
 * usual case) sends nothing but its presence every ALIVE_EVERY_MS.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { ClusterMessage, type ClusterEvent, type ClusterNews } from '../protocol/cluster.js';
import type { Db } from './store/db.js';
import { listenPostgres } from './store/postgres.js';

/** PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_900;
/** Least time between two notifications from one instance: what another instance may hear late. */
const GAP_MS = 10;
/** How often an instance says it is there; one not heard from for three periods is gone. */
const ALIVE_EVERY_MS = 30_000;

type ClusterEvents = { event: [ClusterNews]; resync: [] };

export interface Cluster extends EventEmitter<ClusterEvents> {
  /** Sent to the other instances soon, if any has been heard from. */
  publish(event: ClusterNews): void;
  /** The other instances heard from within the last three ALIVE_EVERY_MS. */
  peers(): string[];
  close(): Promise<void>;
}

export async function openCluster(opts: { db: Db; databaseUrl: string | null; instanceId: string; logger: Logger }): Promise<Cluster> {
  const { db, databaseUrl, instanceId, logger } = opts;
  if (db.kind !== 'postgres' || databaseUrl === null) return new Alone();
  const [row] = await db.query<{ schema: string | null }>('SELECT current_schema() AS schema');
  const channel = clusterChannel(row?.schema ?? '');
  const cluster = new Shared(db, channel, instanceId, logger);
  cluster.stopListening = await listenPostgres(databaseUrl, channel, {
    onNotify: (payload) => cluster.receive(payload),
    onReconnect: () => {
      logger.info('cluster notifications are back; catching up');
      cluster.announce();
      cluster.emit('resync');
    },
    onError: (e) => logger.warn({ err: e }, 'cluster notifications: connection problem (reconnecting)'),
  });
  cluster.announce();
  return cluster;
}

/**
 * The NOTIFY channel of the grid whose tables are in `schema`. Channels are
 * per database, not per schema: grids in other schemas of one database keep
 * to their own.
 */
export function clusterChannel(schema: string): string {
  return `gogrid_cluster_${createHash('sha256').update(schema).digest('hex').slice(0, 12)}`;
}

/** One instance alone on its database. */
class Alone extends EventEmitter<ClusterEvents> implements Cluster {
  publish(): void {}
  peers(): string[] {
    return [];
  }
  async close(): Promise<void> {}
}

class Shared extends EventEmitter<ClusterEvents> implements Cluster {
  stopListening: () => Promise<void> = async () => undefined;
  /** instance id → when it was last heard from. */
  private readonly heard = new Map<string, number>();
  private readonly aliveTimer: NodeJS.Timeout;
  private outbox: ClusterEvent[] = [];
  private sending: Promise<void> | null = null;
  private lastSentAt = 0;
  private closed = false;

  constructor(
    private readonly db: Db,
    private readonly channel: string,
    private readonly instanceId: string,
    private readonly logger: Logger,
  ) {
    super();
    this.aliveTimer = setInterval(() => this.announce(), ALIVE_EVERY_MS);
    this.aliveTimer.unref();
  }

  publish(event: ClusterNews): void {
    if (this.peers().length > 0) this.enqueue(event);
  }

  peers(): string[] {
    const since = Date.now() - 3 * ALIVE_EVERY_MS;
    return [...this.heard].filter(([, at]) => at >= since).map(([id]) => id);
  }

  announce(): void {
    this.enqueue({ type: 'instance.alive' });
  }

  private enqueue(event: ClusterEvent): void {
    if (this.closed) return;
    this.outbox.push(event);
    if (this.sending !== null) return;
    const wait = Math.max(0, this.lastSentAt + GAP_MS - Date.now());
    this.sending = new Promise<void>((resolve) => (wait > 0 ? setTimeout(resolve, wait) : setImmediate(resolve))).then(() => this.send());
  }

  receive(payload: string): void {
    let msg: ClusterMessage;
    try {
      msg = ClusterMessage.parse(JSON.parse(payload));
    } catch (e) {
      this.logger.warn({ err: e, payload: payload.slice(0, 200) }, 'cluster notification not understood: ignored');
      return;
    }
    if (msg.from === this.instanceId) return;
    // A newcomer learns of us at once, not at our next announcement.
    if (!this.peers().includes(msg.from)) this.announce();
    this.heard.set(msg.from, Date.now());
    for (const event of msg.events) if (event.type !== 'instance.alive') this.emit('event', event);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.aliveTimer);
    await this.sending;
    await this.stopListening();
  }

  /** Sends what has gathered, then whatever gathered meanwhile (GAP_MS later), until nothing is left. */
  private async send(): Promise<void> {
    while (this.outbox.length > 0) {
      const wait = this.lastSentAt + GAP_MS - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.lastSentAt = Date.now();
      const events = merge(this.outbox);
      this.outbox = [];
      for (const payload of payloads(this.instanceId, events)) {
        try {
          await this.db.query('SELECT pg_notify($1, $2)', [this.channel, payload]);
        } catch (e) {
          // The other instances then learn it from their one-second scheduling
          // poll (queued jobs) or not at all (a cancel's kill, a long-poll's
          // early answer): worth a warning, not worth failing the caller.
          this.logger.warn({ err: e }, 'could not notify the other coordinator instances');
        }
      }
    }
    this.sending = null;
  }
}

/** One `instance.alive`, one `jobs.queued` and one `jobs.finished` for the lot; the rest as they came. */
function merge(events: ClusterEvent[]): ClusterEvent[] {
  const out: ClusterEvent[] = [];
  const finished: string[] = [];
  let queued = false;
  let alive = false;
  for (const e of events) {
    if (e.type === 'jobs.queued') queued = true;
    else if (e.type === 'instance.alive') alive = true;
    else if (e.type === 'jobs.finished') finished.push(...e.jobIds);
    else out.push(e);
  }
  if (queued) out.unshift({ type: 'jobs.queued' });
  if (alive) out.unshift({ type: 'instance.alive' });
  if (finished.length > 0) out.push({ type: 'jobs.finished', jobIds: [...new Set(finished)] });
  return out;
}

/** The events as NOTIFY payloads under PostgreSQL's size limit; a long list of finished jobs is split. */
function payloads(from: string, events: ClusterEvent[]): string[] {
  const out: string[] = [];
  let batch: ClusterEvent[] = [];
  const flush = () => {
    if (batch.length > 0) out.push(JSON.stringify({ from, events: batch } satisfies ClusterMessage));
    batch = [];
  };
  const size = (es: ClusterEvent[]) => Buffer.byteLength(JSON.stringify({ from, events: es }));
  for (const e of events) {
    if (e.type === 'jobs.finished' && size([e]) > MAX_PAYLOAD_BYTES) {
      flush();
      const perPayload = Math.max(1, Math.floor(e.jobIds.length / Math.ceil(size([e]) / MAX_PAYLOAD_BYTES)));
      for (let i = 0; i < e.jobIds.length; i += perPayload) out.push(JSON.stringify({ from, events: [{ type: 'jobs.finished', jobIds: e.jobIds.slice(i, i + perPayload) }] }));
      continue;
    }
    if (size([...batch, e]) > MAX_PAYLOAD_BYTES) flush();
    batch.push(e);
  }
  flush();
  return out;
}
