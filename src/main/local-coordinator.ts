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
import { adminKeyPath } from '../coordinator/local-files.js';
import { startLoopbackCoordinator } from '../coordinator/loopback.js';

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
  const { coordinator, address, token } = await startLoopbackCoordinator({ dataDir, port: 0, logger, tokenDescription: 'desktop app, local test mode' });
  return { address, token, apiUrl: coordinator.apiUrl, adminKeyFile: adminKeyPath(dataDir), stop: () => coordinator.stop() };
}
