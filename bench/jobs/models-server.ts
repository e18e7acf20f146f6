/**
 * The servers of the model-download benchmark, each in its own process as on
 * a real network (the downloading side then has its core to itself):
 * a GoGrid coordinator, or the baseline, a minimal node:https server that
 * streams one file from disk. Driven over bench/lib/rpc.ts.
 *
 *   const server = procs.fork<ServerCommand>(join(import.meta.dirname, 'models-server.ts'), 'coordinator');
 *   await server.call({ type: 'coordinator', dataDir }, ServerReady);   // → { type: 'coordinator', port, apiUrl, adminKey, caPem }
 *   await server.call({ type: 'plain', file, tls }, ServerReady);       // → { type: 'plain', port }
 */
import { createReadStream, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { pino } from 'pino';
import { z } from 'zod';
import { parseCoordinatorConfig } from '../../src/coordinator/config.js';
import { startCoordinator } from '../../src/coordinator/coordinator.js';
import { adminKeyPath } from '../../src/coordinator/local-files.js';
import { serveRpc } from '../lib/rpc.js';

export const ServerCommand = z.discriminatedUnion('type', [
  z.object({ type: z.literal('coordinator'), dataDir: z.string() }),
  z.object({ type: z.literal('plain'), file: z.string(), tls: z.object({ certPem: z.string(), keyPem: z.string() }) }),
]);
export type ServerCommand = z.infer<typeof ServerCommand>;

export const ServerReady = z.discriminatedUnion('type', [
  z.object({ type: z.literal('coordinator'), port: z.number().int(), apiUrl: z.string(), adminKey: z.string(), caPem: z.string() }),
  z.object({ type: z.literal('plain'), port: z.number().int() }),
]);
export type ServerReady = z.infer<typeof ServerReady>;

async function serve(cmd: ServerCommand): Promise<{ ready: ServerReady; stop: () => Promise<void> }> {
  if (cmd.type === 'coordinator') {
    const { config } = parseCoordinatorConfig('', 'bench', { bindAddr: '127.0.0.1', port: 0, databaseUrl: 'memory://' });
    const c = await startCoordinator({ config, dataDir: cmd.dataDir, logger: pino({ level: 'warn' }) });
    const adminKey = (await readFile(adminKeyPath(cmd.dataDir), 'utf8')).trim();
    return { ready: { type: 'coordinator', port: c.port, apiUrl: c.apiUrl, adminKey, caPem: c.ca.material.certPem }, stop: () => c.stop() };
  }
  const size = statSync(cmd.file).size;
  const server = https.createServer({ key: cmd.tls.keyPem, cert: cmd.tls.certPem, minVersion: 'TLSv1.3' }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
    // The coordinator's read size, so the comparison is about the download side, not this server's reads.
    createReadStream(cmd.file, { highWaterMark: 1024 * 1024 }).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  if (!addr || typeof addr === 'string') throw new Error('no port');
  return { ready: { type: 'plain', port: addr.port }, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}

let stop: (() => Promise<void>) | undefined;
serveRpc(
  ServerCommand,
  async (cmd) => {
    if (stop) throw new Error('already serving');
    const s = await serve(cmd);
    stop = s.stop;
    return s.ready;
  },
  // The benchmark ends (or dies): stop with it.
  () => void (stop?.() ?? Promise.resolve()).finally(() => process.exit(0)),
);
