/**
 * Local test mode (`npm start`, `--local`): a coordinator in this process on
 * 127.0.0.1 with an in-memory store, and a one-use token for the app's own
 * worker, as `gogrid local` does headless. The one file of main/ that may
 * import coordinator/ (eslint.config.js says so).
 *
 *   const local = await startLocalCoordinator(join(dir, 'coordinator'), logger);
 *   await openWorkerHost({ ..., coordinator: local.address, token: local.token });
 *   await local.stop();
 */
import type { Logger } from 'pino';
import { loadCoordinatorConfig } from '../coordinator/config.js';
import { startCoordinator } from '../coordinator/coordinator.js';
import { createEnrollmentToken } from '../coordinator/enrollment.js';
import { adminKeyPath } from '../coordinator/local-files.js';

export interface LocalCoordinator {
  /** HOST:PORT for the worker. */
  address: string;
  /** A one-use enrollment token for this app's worker. */
  token: string;
  apiUrl: string;
  adminKeyFile: string;
  stop(): Promise<void>;
}

export async function startLocalCoordinator(dataDir: string, logger: Logger): Promise<LocalCoordinator> {
  const { config } = await loadCoordinatorConfig(undefined, { bindAddr: '127.0.0.1', port: 0, databaseUrl: 'memory://' });
  const c = await startCoordinator({ config, dataDir, logger });
  try {
    const { token } = await createEnrollmentToken(c.db, c.ca, { ttlSecs: 600, maxUses: 1, description: 'desktop app, local test mode' });
    return { address: `127.0.0.1:${c.port}`, token, apiUrl: c.apiUrl, adminKeyFile: adminKeyPath(dataDir), stop: () => c.stop() };
  } catch (e) {
    await c.stop();
    throw e;
  }
}
