/**
 * The coordinator's session layer and dispatcher on a real store, with
 * workers connected through in-memory channels instead of QUIC: for unit tests
 * of sessions, leases and scheduling that need no sockets.
 *
 *   const rig = await sessionRig(db);
 *   const w = await rig.connect(await rig.enroll('w1'), { executors: ['onnx'], slots: 1 });
 *   await w.next('welcome');
 *   await rig.stop();
 */
import { X509Certificate } from 'node:crypto';
import { pino } from 'pino';
import type { CoordinatorCa } from '../../src/coordinator/ca.js';
import { Dispatcher } from '../../src/coordinator/dispatcher.js';
import { SessionManager, type SessionTiming } from '../../src/coordinator/sessions.js';
import type { Db } from '../../src/coordinator/store/db.js';
import { insertWorker } from '../../src/coordinator/store/index.js';
import type { CoordinatorMessage } from '../../src/protocol/index.js';
import { createCa, createKeyAndCsr, readCert, signCsr } from '../../src/transport/pki.js';
import { memoryConnection, type MemoryConnection } from './memory-peer.js';
import { frameReader, helloFrame } from './raw-worker.js';

export interface RigWorker extends MemoryConnection {
  workerId: string;
  send(frame: unknown): Promise<void>;
  next<T extends CoordinatorMessage['type']>(type: T): Promise<Extract<CoordinatorMessage, { type: T }>>;
  frame(): Promise<CoordinatorMessage>;
}

export interface Enrolled {
  workerId: string;
  certDer: Uint8Array;
}

export interface SessionRig {
  sessions: SessionManager;
  dispatcher: Dispatcher;
  /** An enrolled worker's identity (a store row and a certificate from the rig's CA). */
  enroll(workerId: string, opts?: { validityDays?: number }): Promise<Enrolled>;
  /** Connects and says hello; the welcome is the test's to read. */
  connect(identity: Enrolled, capabilities?: { executors: string[]; slots: number }, hello?: Record<string, unknown>): Promise<RigWorker>;
  stop(): Promise<void>;
}

const INSTANCE = 'c-rig';

export async function sessionRig(db: Db, opts: { timing?: Partial<SessionTiming>; leaseTtlMs?: number } = {}): Promise<SessionRig> {
  const material = await createCa({ commonName: 'GoGrid test CA' });
  const ca: CoordinatorCa = { material, fingerprint: readCert(material.certPem).fingerprint, created: true };
  const logger = pino({ level: 'silent' });
  const open = new Set<MemoryConnection>();
  const sessions = new SessionManager({
    db,
    ca,
    instanceId: INSTANCE,
    timing: { heartbeatIntervalSecs: 30, heartbeatTimeoutSecs: 90, busyHeartbeatIntervalSecs: 3, busyHeartbeatTimeoutSecs: 10, helloTimeoutMs: 5000, certValidityDays: 30, ...opts.timing },
    maxConnections: 100,
    connectionCount: () => open.size,
    logger,
  });
  // A long poll: passes in these tests come from events, as they must.
  const dispatcher = new Dispatcher({ db, sessions, instanceId: INSTANCE, leaseTtlMs: opts.leaseTtlMs ?? 60_000, pollMs: 3_600_000, batch: 500, logger });
  sessions.start();
  await dispatcher.start();
  return {
    sessions,
    dispatcher,
    async enroll(workerId, o = {}) {
      const { csrPem } = await createKeyAndCsr(workerId);
      const certPem = await signCsr(material, csrPem, { workerId, validityDays: o.validityDays ?? 30 });
      const info = readCert(certPem);
      await insertWorker(db, { id: workerId, name: workerId, certFingerprint: info.fingerprint, certNotAfter: info.notAfter, tokenId: null, now: new Date() });
      return { workerId, certDer: new Uint8Array(new X509Certificate(certPem).raw) };
    },
    async connect(identity, capabilities = { executors: ['onnx'], slots: 1 }, hello = {}) {
      const conn = memoryConnection({ certDer: identity.certDer });
      open.add(conn);
      void conn.closed.then(() => open.delete(conn));
      sessions.handlePeer(conn.peer);
      const w: RigWorker = { ...conn, workerId: identity.workerId, send: (frame) => conn.client.send(frame), ...frameReader(conn.client) };
      await w.send({ ...(await helloFrame(identity.workerId, capabilities)), ...hello });
      return w;
    },
    async stop() {
      await sessions.stop();
      await dispatcher.stop();
      for (const conn of open) conn.drop();
    },
  };
}
