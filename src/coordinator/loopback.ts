/**
 * A coordinator for this machine alone, as `gogrid local` and the desktop
 * app's local test mode start one: on 127.0.0.1, with an in-memory store,
 * and a one-use enrollment token for the worker started beside it.
 *
 *   const { coordinator, address, token } = await startLoopbackCoordinator({ dataDir, port: 0, logger, tokenDescription: 'gogrid local' });
 *   await startHeadless({ coordinator: address, token, … });
 *   await coordinator.stop();
 */
import type { Logger } from 'pino';
import { loadCoordinatorConfig } from './config.js';
import { startCoordinator, type Coordinator } from './coordinator.js';

export interface LoopbackCoordinator {
  coordinator: Coordinator;
  /** HOST:PORT for the worker. */
  address: string;
  /** Enrolls one worker within 10 minutes. */
  token: string;
}

export async function startLoopbackCoordinator(opts: { dataDir: string; port: number; logger: Logger; tokenDescription: string }): Promise<LoopbackCoordinator> {
  const { config } = await loadCoordinatorConfig(undefined, { bindAddr: '127.0.0.1', port: opts.port, databaseUrl: 'memory://' });
  const coordinator = await startCoordinator({ config, dataDir: opts.dataDir, logger: opts.logger });
  try {
    const { token } = await coordinator.createEnrollmentToken({ ttlSecs: 600, maxUses: 1, description: opts.tokenDescription });
    return { coordinator, address: `127.0.0.1:${coordinator.port}`, token };
  } catch (e) {
    await coordinator.stop();
    throw e;
  }
}
