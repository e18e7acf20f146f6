/**
 * The worker's local control: one `ControlTarget` (the worker host) driven by
 * Electron IPC in the app, or headless by the loopback HTTP endpoint here and
 * its client (`gogrid worker pause --data DIR`).
 *
 *   const server = await startControlServer({ target: host, dataDir, logger });
 *   const view = await (await controlClient(dataDir)).act({ action: 'pause' });
 */
export { controlClient, type ControlClient } from './client.js';
export { ControlFile, controlFilePath, readControlFile } from './control-file.js';
export { startControlServer, statusUrl, type ControlServer, type ControlServerOptions } from './server.js';
export type { ControlTarget } from './target.js';
