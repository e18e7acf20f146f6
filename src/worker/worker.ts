/**
 * The headless worker: decides whether to enroll or reuse the stored
 * identity, then runs the agent. The Electron app hosts the same thing.
 *
 *   const w = await startWorker({ dataDir, coordinator: '127.0.0.1:8443', token, logger, appVersion });
 *   await w.agent.waitFor('online');
 *   await w.agent.stop();
 */
import type { Logger } from 'pino';
import { GridError, parseEnrollmentToken } from '../protocol/index.js';
import { ensurePrivateDir } from '../common/files.js';
import { lockDataDir } from '../common/lock.js';
import { WorkerAgent, type AgentOptions } from './agent.js';
import { parseCoordinatorAddress } from './address.js';
import { enroll } from './enroll.js';
import { collectHardware, sampleLoad } from './hardware.js';
import { loadIdentity, type WorkerIdentity } from './identity.js';

export interface StartWorkerOptions {
  dataDir: string;
  /** HOST:PORT; needed to enroll, optional afterwards (the stored one is used). */
  coordinator?: string;
  token?: string;
  name?: string;
  appVersion: string;
  logger: Logger;
  agent?: Partial<Pick<AgentOptions, 'connectTimeoutMs' | 'maxIdleTimeoutMs' | 'keepAliveIntervalMs' | 'backoff' | 'probes'>>;
}

export interface RunningWorker {
  agent: WorkerAgent;
  identity: WorkerIdentity;
  /** True when this start enrolled the worker. */
  enrolled: boolean;
}

export async function startWorker(opts: StartWorkerOptions): Promise<RunningWorker> {
  await ensurePrivateDir(opts.dataDir);
  const lock = await lockDataDir(opts.dataDir, 'worker');
  let resolved: Awaited<ReturnType<typeof resolveIdentity>>;
  try {
    resolved = await resolveIdentity(opts);
  } catch (e) {
    await lock.release();
    throw e;
  }
  const { identity, enrolled } = resolved;
  const agent = new WorkerAgent({
    dataDir: opts.dataDir,
    identity,
    appVersion: opts.appVersion,
    logger: opts.logger,
    probes: { hardware: () => collectHardware(), load: () => sampleLoad() },
    ...opts.agent,
  });
  agent.start();
  void agent.done.finally(() => lock.release()).catch(() => undefined);
  return { agent, identity, enrolled };
}

async function resolveIdentity(opts: StartWorkerOptions): Promise<{ identity: WorkerIdentity; enrolled: boolean }> {
  const stored = await loadIdentity(opts.dataDir);
  const address = opts.coordinator ? parseCoordinatorAddress(opts.coordinator) : null;
  if (opts.token) {
    const token = parseEnrollmentToken(opts.token);
    // Re-running the same enrollment command (a service unit, a script) must
    // not spend another token use once this machine is enrolled there.
    if (stored && stored.coordinator.caFingerprint === token.caFingerprint) {
      return { identity: withAddress(stored, address), enrolled: false };
    }
    if (!address) {
      throw new GridError('GG_ERR_CONFIG_INVALID', 'enrolling needs the coordinator address: add --coordinator HOST:PORT');
    }
    const identity = await enroll({ dataDir: opts.dataDir, coordinator: address, token: opts.token, name: opts.name });
    opts.logger.info({ workerId: identity.workerId }, 'enrolled');
    return { identity, enrolled: true };
  }
  if (!stored) {
    throw new GridError(
      'GG_ERR_NOT_ENROLLED',
      `this worker is not enrolled (data dir ${opts.dataDir}); run: gogrid worker --coordinator HOST:PORT --token TOKEN (make a token on the coordinator with: gogrid token create)`,
    );
  }
  return { identity: withAddress(stored, address), enrolled: false };
}

/** An explicit --coordinator overrides the stored address (the coordinator moved), never the pinned CA. */
function withAddress(identity: WorkerIdentity, address: { host: string; port: number } | null): WorkerIdentity {
  if (!address) return identity;
  return { ...identity, coordinator: { ...identity.coordinator, ...address } };
}
