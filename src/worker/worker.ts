/**
 * The headless worker: decides whether to enroll or reuse the stored
 * identity, then runs the agent. The Electron app hosts the same thing.
 *
 *   const w = await startWorker({ dataDir, coordinator: '127.0.0.1:8443', token, logger, appVersion });
 *   await w.agent.waitFor('online');
 *   await w.agent.stop();
 */
import type { Logger } from 'pino';
import { GridError, JobInputResponse, type HardwareReport, LEASE_HEADER, MAX_PAYLOAD_BYTES, parseEnrollmentToken, workingGpuBackends } from '../protocol/index.js';
import { requestJson } from '../transport/https-client.js';
import { ensurePrivateDir } from '../common/files.js';
import { lockDataDir } from '../common/lock.js';
import { booleanEnv } from '../common/env.js';
import { WorkerAgent, type AgentOptions } from './agent.js';
import { parseCoordinatorAddress } from './address.js';
import { findProvisioning, provisioningPaths, removeProvisioningToken, type FoundProvisioning } from './provisioning.js';
import { enroll } from './enroll.js';
import { advertisedBackends, collectHardware, gpuBackends, hasRealGpu, sampleLoad } from './hardware.js';
import { loadIdentity, type WorkerIdentity } from './identity.js';
import { JobRunner } from './job-runner.js';
import { ModelCache } from './model-cache.js';
import { httpsModelDownloader } from './model-download.js';
import { canRunKind, executorKinds, jobMemoryLimitBytes, JobProcessLeftovers, JobProcessPool, memoryLimitOfKind, usesGpuByDefault } from './executors/index.js';
import { probeLlmRuntime } from './executors/llm-probe.js';
import { unloadableKinds } from './executors/runtime-probe.js';
import { probeGpuBackends } from './executors/gpu-probe.js';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { backoffDelayMs } from './backoff.js';
import { dialAddress, WORKER_DEFAULTS } from './worker-config.js';

export interface StartWorkerOptions {
  dataDir: string;
  /** HOST:PORT; needed to enroll, optional afterwards (the stored one is used). */
  coordinator?: string;
  token?: string;
  /** Enroll with `token` even when this data dir already holds an identity for its coordinator (a revoked worker's, say). @default false */
  reEnroll?: boolean;
  name?: string;
  appVersion: string;
  logger: Logger;
  agent?: Partial<
    Pick<AgentOptions, 'connectTimeoutMs' | 'maxIdleTimeoutMs' | 'keepAliveIntervalMs' | 'backoff' | 'probes' | 'status' | 'accepting' | 'transport' | 'quicHeadStartMs' | 'quicRetryMs'>
  >;
  jobs?: WorkerJobOptions;
  /** Gives up a start still waiting to enroll (a coordinator not reachable yet); the start then rejects with an AbortError. */
  signal?: AbortSignal;
  /** Hears each failed enrollment that will be tried again (the network not up yet), with why and when. */
  onEnrollRetry?: (why: string, retryInMs: number) => void;
}

/** Defaults: WORKER_DEFAULTS (worker-config.ts). */
export interface WorkerJobOptions {
  /** Jobs run at once. */
  slots?: number;
  /** Runtime threads per job. */
  threads?: number;
  /** Labels jobs may require. */
  labels?: string[];
  /** Size cap of the model cache. */
  modelCacheBytes?: number;
  /**
   * Count a GPU backend that runs on a software device (lavapipe, WARP) as a
   * GPU: slower than the CPU backend, for trying the GPU path on a machine
   * without one. @default GOGRID_SOFTWARE_GPU, else false
   */
  softwareGpu?: boolean;
}

export interface RunningWorker {
  agent: WorkerAgent;
  /** Runs the jobs the coordinator assigns; how many run now, for status displays. */
  runner: JobRunner;
  identity: WorkerIdentity;
  hardware: HardwareReport;
  /** True when this start enrolled the worker. */
  enrolled: boolean;
  /** The preset a provisioning file asked for, when this start enrolled from one. */
  provisionedPreset: 'desktop' | 'dedicated' | null;
  /** The job processes alive now (warm ones included). */
  jobPids(): number[];
  /** Settles once the agent stopped, its job processes exited and the data dir is unlocked. */
  closed: Promise<void>;
}

export async function startWorker(opts: StartWorkerOptions): Promise<RunningWorker> {
  await ensurePrivateDir(opts.dataDir);
  const lock = await lockDataDir(opts.dataDir, 'worker');
  try {
    const { processes, ...running } = await start(opts);
    // Job processes go before the lock does: the next worker on this data dir starts with none of ours left.
    const closed = running.agent.done
      .catch(() => undefined)
      .then(() => processes.close())
      .finally(() => lock.release())
      .catch(() => undefined);
    return { ...running, closed };
  } catch (e) {
    await lock.release();
    throw e;
  }
}

/** The machine's hardware, with what llama.cpp finds on it where this build runs LLM jobs; the two probes run side by side. */
async function collectWorkerHardware(logger: Logger): Promise<HardwareReport> {
  let failure: string | undefined;
  const [hardware, llm] = await Promise.all([collectHardware(), probeLlmRuntime((why) => (failure = why))]);
  if (!canRunKind('llm', hardware)) return hardware;
  if (failure !== undefined) logger.warn(`could not ask llama.cpp which GPU it can use: ${failure}`);
  else if (llm?.gpu) logger.info(`LLM jobs run on ${llm.gpu}: ${llm.devices.join(', ')} (${llm.vramMiB} MiB, ${llm.freeVramMiB} free)`);
  else logger.info('LLM jobs run on the CPU only here: llama.cpp found no GPU it can use');
  return { ...hardware, llm };
}

async function start(opts: StartWorkerOptions): Promise<Omit<RunningWorker, 'closed'> & { processes: JobProcessPool }> {
  const { identity, enrolled, preset } = await resolveIdentity(opts);
  const probes = opts.agent?.probes ?? { hardware: () => collectWorkerHardware(opts.logger), load: () => sampleLoad() };
  const jobsOpts = opts.jobs ?? {};
  const slots = jobsOpts.slots ?? WORKER_DEFAULTS.slots;
  const softwareGpu = jobsOpts.softwareGpu ?? booleanEnv('GOGRID_SOFTWARE_GPU') ?? false;
  // Beside the hardware probes, not after them: a fork and a library load, ~0.3 s.
  const [probed, unloadable] = await Promise.all([probes.hardware(), unloadableKinds(executorKinds())]);
  // Only where the OS lists a GPU: elsewhere a backend could only find a software device (~1 s to learn that).
  const foundBackends =
    softwareGpu || hasRealGpu(probed.gpus)
      ? await probeGpuBackends(executorKinds(), (why) => opts.logger.warn(`could not try the GPU backends; jobs run on the CPU only: ${why}`))
      : [];
  const memoryLimit = jobMemoryLimitBytes({ totalBytes: probed.memory.totalBytes, cgroupLimitBytes: probed.memory.limitBytes ?? null, slots });
  // The agent is created below; the downloader reads its identity at each
  // request so a renewed certificate is used from the next download on.
  let current: () => WorkerIdentity = () => identity;
  const baseUrl = `https://${hostForUrl(identity.coordinator.host)}:${identity.coordinator.port}`;
  const models = await ModelCache.open({
    dir: join(opts.dataDir, 'models'),
    maxBytes: jobsOpts.modelCacheBytes ?? WORKER_DEFAULTS.modelCacheBytes,
    download: httpsModelDownloader({ baseUrl, tls: () => current() }),
    logger: opts.logger,
  });
  const platformKinds = executorKinds().filter((k) => canRunKind(k, probed));
  for (const [kind, why] of unloadable) {
    if (platformKinds.includes(kind)) opts.logger.warn(`${kind} jobs are not taken on this machine: its runtime does not load here (${why})`);
  }
  const executors = platformKinds.filter((k) => !unloadable.has(k));
  const backends = advertisedBackends(foundBackends, probed.gpus, softwareGpu).filter((b) => executors.includes(b.kind));
  for (const b of backends) opts.logger.info(b.ok ? `${b.kind} jobs can run on ${b.backend}` : `${b.kind} jobs do not run on ${b.backend} here: ${b.detail}`);
  const working = [...backends.filter((b) => b.ok).map((b) => b.backend), ...(probed.llm?.gpu ? [probed.llm.gpu] : [])];
  const hardware: HardwareReport = {
    ...probed,
    gpus: probed.gpus.map((g) => ({ ...g, backends: gpuBackends(g, probed.os.platform, working) })),
    backends,
    memory: { ...probed.memory, jobLimitBytes: memoryLimit },
  };
  // Before any job process of ours exists: what a worker killed outright left stopped on this data dir.
  const leftovers = JobProcessLeftovers.open(join(opts.dataDir, 'job-processes.json'), opts.logger);
  // A warm job process per slot, so back-to-back jobs skip the fork; closed when the agent stops.
  const processes = new JobProcessPool({
    maxIdle: slots,
    logger: opts.logger.child({ component: 'job-process' }),
    memoryLimitBytes: (kind) => memoryLimitOfKind(kind, memoryLimit),
  });
  processes.on('spawn', ({ pid }) => leftovers.add(pid));
  processes.on('exit', ({ pid }) => leftovers.remove(pid));
  const worker = (path: string, leaseId: string, body?: unknown) => {
    return requestJson({
      url: `${baseUrl}${path}`,
      ...(body === undefined ? {} : { method: 'POST' as const, body }),
      tls: current(),
      headers: { [LEASE_HEADER]: leaseId },
      timeoutMs: 60_000,
      maxBytes: MAX_PAYLOAD_BYTES + 64 * 1024,
    });
  };
  const runner = new JobRunner({
    slots,
    threads: jobsOpts.threads ?? WORKER_DEFAULTS.threads,
    models,
    run: (kind, job, runOpts) => processes.run(kind, job, runOpts),
    dropIdle: (why) => processes.dropIdle(why),
    canRun: (kind) => executors.includes(kind),
    gpuBackends: (kind) => workingGpuBackends(kind, hardware),
    gpuByDefault: usesGpuByDefault,
    transfer: {
      fetchInput: async (jobId, leaseId) => JobInputResponse.parse(await worker(`/v1/jobs/${encodeURIComponent(jobId)}/input`, leaseId)).input,
      postResult: async (msg) => {
        await worker(`/v1/jobs/${encodeURIComponent(msg.jobId)}/result`, msg.leaseId, msg);
      },
    },
    logger: opts.logger.child({ component: 'jobs' }),
  });
  const agent = new WorkerAgent({
    dataDir: opts.dataDir,
    identity,
    appVersion: opts.appVersion,
    logger: opts.logger,
    ...opts.agent,
    probes: { hardware: async () => hardware, load: probes.load },
    jobs: { runner, models, loaded: () => processes.loadedModels(), capabilities: { executors, slots, labels: jobsOpts.labels ?? [...WORKER_DEFAULTS.labels] } },
  });
  current = () => agent.currentIdentity;
  agent.start();
  return { agent, runner, identity, hardware, enrolled, provisionedPreset: preset ?? null, processes, jobPids: () => processes.pids() };
}

async function resolveIdentity(opts: StartWorkerOptions): Promise<{ identity: WorkerIdentity; enrolled: boolean; preset?: 'desktop' | 'dedicated' }> {
  const stored = await loadIdentity(opts.dataDir);
  const typed = opts.coordinator ? parseCoordinatorAddress(opts.coordinator) : null;
  const reconnect = (stored: WorkerIdentity): WorkerIdentity => ({ ...stored, coordinator: { ...stored.coordinator, ...dialAddress({ typed, enrolled: stored.coordinator }) } });
  // No token given: an installer or MDM may have dropped one in a provisioning
  // file (silent fleet enrollment). A broken file must not take an enrolled worker offline.
  const provisioned = opts.token
    ? null
    : await findProvisioning().catch((e: unknown) => {
        if (!stored) throw e;
        opts.logger.warn({ err: e }, 'ignoring the provisioning file: this worker is already enrolled');
        return null;
      });
  const tokenText = opts.token ?? provisioned?.provisioning.token;
  if (tokenText) {
    const token = parseEnrollmentToken(tokenText);
    // Re-running the same enrollment command (a service unit, a script) must
    // not spend another token use once this machine is enrolled there.
    if (stored && stored.coordinator.caFingerprint === token.caFingerprint && !opts.reEnroll) {
      if (provisioned) await forgetProvisionedToken(provisioned, opts.logger);
      else {
        opts.logger.info(
          { workerId: stored.workerId },
          `already enrolled with that coordinator as ${stored.workerId}; the token was not used (to enroll anew with it, e.g. after a revocation, add --re-enroll)`,
        );
      }
      return { identity: reconnect(stored), enrolled: false };
    }
    // Re-enrolling with the coordinator this data dir knows needs no address typed again.
    const sameCoordinator = stored && stored.coordinator.caFingerprint === token.caFingerprint ? stored.coordinator : undefined;
    const enrollAt = dialAddress({ typed, enrolled: sameCoordinator, provisioned: provisioned?.provisioning.coordinator });
    if (!enrollAt) {
      throw new GridError('GG_ERR_CONFIG_INVALID', 'enrolling needs the coordinator address: add --coordinator HOST:PORT');
    }
    const name = opts.name ?? provisioned?.provisioning.name;
    const identity = await enrollPatiently(opts, () => enroll({ dataDir: opts.dataDir, coordinator: enrollAt, token: tokenText, name })).catch((e: unknown) => {
      // The person reading the log must learn which file held the address and token.
      throw provisioned && e instanceof GridError ? new GridError(e.code, `enrolling with ${provisioned.path}: ${e.message}`, { cause: e }) : e;
    });
    opts.logger.info({ workerId: identity.workerId, ...(provisioned && { provisioning: provisioned.path }) }, 'enrolled');
    if (provisioned) await forgetProvisionedToken(provisioned, opts.logger);
    return { identity, enrolled: true, ...(provisioned?.provisioning.preset ? { preset: provisioned.provisioning.preset } : {}) };
  }
  if (!stored) {
    const hint = provisioned
      ? `${provisioned.path} has no token (already used?); put a fresh one there from: gogrid token create`
      : `run: gogrid worker --coordinator HOST:PORT --token TOKEN (make a token on the coordinator with: gogrid token create), or drop a provisioning file at ${provisioningPaths().join(' or ')}`;
    throw new GridError('GG_ERR_NOT_ENROLLED', `this worker is not enrolled (data dir ${opts.dataDir}); ${hint}`);
  }
  return { identity: reconnect(stored), enrolled: false };
}

/**
 * Enrolls, trying again with backoff while the failure is one that can pass
 * (the coordinator is down or restarting, the network is not up yet at first
 * login): a worker started before its coordinator used to exit for good.
 * A refused token or CA fails at once.
 */
async function enrollPatiently(opts: StartWorkerOptions, attempt: () => Promise<WorkerIdentity>): Promise<WorkerIdentity> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (e) {
      if (!(e instanceof GridError) || !e.retryable || opts.signal?.aborted) throw e;
      const waitMs = Math.round(backoffDelayMs(n, opts.agent?.backoff));
      opts.logger.warn({ code: e.code, retryInMs: waitMs }, `could not enroll yet: ${e.message}`);
      opts.onEnrollRetry?.(e.message, waitMs);
      await delay(waitMs, undefined, { signal: opts.signal });
    }
  }
}

/** A token left on disk is a secret lying around; a file we may not rewrite is bounded by the token's uses and expiry. */
async function forgetProvisionedToken(found: FoundProvisioning, logger: Logger): Promise<void> {
  const result = await removeProvisioningToken(found);
  if (result.removed) logger.info({ provisioning: found.path }, 'removed the used enrollment token from the provisioning file');
  else logger.warn({ provisioning: found.path, reason: result.reason }, 'could not remove the enrollment token from the provisioning file; it stays valid until its uses run out or it expires (revoke it with: gogrid token revoke)');
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
