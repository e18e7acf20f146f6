/**
 * The headless worker as `gogrid worker` and `gogrid local` run it: the
 * worker host with the headless signal adapters, and its local control
 * endpoint serving the status window, whose address is printed.
 *
 *   const h = await startHeadless({ dataDir, version, logger, preset: 'dedicated', token, coordinator });
 *   console.log(h.statusUrl);
 *   await h.stop();
 */
import type { TransportMode } from '../worker/dial.js';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { GridError } from '../protocol/index.js';
import { startControlServer, statusUrl, type ControlServer } from '../worker/control/index.js';
import { openWorkerHost, type WorkerHost } from '../worker/host.js';
import { headlessSignals } from '../worker/signals/index.js';
import type { WorkerJobOptions } from '../worker/worker.js';

/** The renderer's build; the same relative path from src/cli (tsx) and dist/cli. */
const RENDERER_DIR = fileURLToPath(new URL('../../dist/renderer/', import.meta.url));

export interface Headless {
  host: WorkerHost;
  control: ControlServer;
  /** The status window, token included (in the fragment, never sent to the server). */
  statusUrl: string;
  /** Drains (running jobs get `graceMs`, then are handed back) and stops everything. */
  stop(graceMs?: number): Promise<void>;
}

export async function startHeadless(opts: {
  dataDir: string;
  version: string;
  logger: Logger;
  preset: 'desktop' | 'dedicated';
  coordinator?: string;
  token?: string;
  reEnroll?: boolean;
  name?: string;
  jobs?: WorkerJobOptions;
  /** How the worker reaches the coordinator (worker/dial.ts). @default auto */
  transport?: TransportMode;
  controlPort?: number;
  /** Gives up a start still waiting to enroll (Ctrl+C before the coordinator answered). */
  signal?: AbortSignal;
}): Promise<Headless> {
  let host: WorkerHost | undefined;
  const signals = headlessSignals({ ownPids: () => [process.pid, ...(host?.worker?.jobPids() ?? [])] });
  try {
    host = await openWorkerHost({
      dataDir: opts.dataDir,
      appVersion: opts.version,
      logger: opts.logger,
      defaultPreset: opts.preset,
      signals,
      startAtLogin: null,
      coordinator: opts.coordinator,
      token: opts.token,
      reEnroll: opts.reEnroll,
      name: opts.name,
      jobs: opts.jobs,
      agent: { transport: opts.transport },
      signal: opts.signal,
    });
    const view = host.view();
    // A server has nobody to fill in an enrollment form: say how to enroll and stop.
    if (view.connection.state === 'not-enrolled') throw new GridError('GG_ERR_NOT_ENROLLED', view.connection.detail ?? 'this worker is not enrolled');
  } catch (e) {
    await host?.quit({ graceMs: 0 });
    signals.close();
    throw e;
  }
  const staticDir = existsSync(RENDERER_DIR) ? RENDERER_DIR : undefined;
  if (!staticDir) opts.logger.warn(`the status window is not built (${RENDERER_DIR} is missing: run npm run build); the control API still answers`);
  const control = await startControlServer({ target: host, dataDir: opts.dataDir, staticDir, port: opts.controlPort, logger: opts.logger.child({ component: 'control' }) });
  const h = host;
  return {
    host: h,
    control,
    statusUrl: statusUrl(control.url, control.token),
    async stop(graceMs = 30_000) {
      await control.close();
      await h.quit({ graceMs });
      signals.close();
    },
  };
}
