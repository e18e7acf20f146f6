/**
 * The baseline for the fleet benchmark: the least a TCP+TLS 1.3 coordinator
 * could do per worker. Mutual TLS with the coordinator's CA, the same frame
 * codec, a welcome for each hello, and a last-seen time per heartbeat; no
 * schema checks, no store, no logging. Runs in its own process, driven over
 * IPC (bench/lib/rpc.ts), with --expose-gc for its memory readings.
 *
 *   const server = procs.fork<TlsServerCommand>(join(import.meta.dirname, 'tls-server.ts'), 'tls server', { execArgv: ['--expose-gc'] });
 *   const { port } = await server.call({ type: 'listen', tls, heartbeatIntervalSecs: 30 }, Listening);
 *   const { at } = await server.call({ type: 'hellos', count: 1000 }, HellosAt);
 */
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { encodeFrame, FrameDecoder } from '../../src/transport/frame.js';
import { PROTOCOL_VERSION } from '../../src/protocol/index.js';
import { countMessageIn, fullGcStats, ownStats, serveRpc } from '../lib/rpc.js';
import { TlsServerCommand } from './commands.js';

let server: Server | undefined;
let hellos = 0;
let lastHelloAt = 0;
const hellosWanted: { count: number; resolve: (at: number) => void }[] = [];
const lastSeen = new Map<TLSSocket, number>();

function onHello(): void {
  hellos++;
  lastHelloAt = Date.now();
  for (const w of [...hellosWanted]) {
    if (hellos < w.count) continue;
    hellosWanted.splice(hellosWanted.indexOf(w), 1);
    w.resolve(lastHelloAt);
  }
}

function listen(cmd: Extract<TlsServerCommand, { type: 'listen' }>): Promise<{ port: number }> {
  const welcome = (workerId: string) =>
    encodeFrame({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, workerId, heartbeatIntervalSecs: cmd.heartbeatIntervalSecs, heartbeatTimeoutSecs: cmd.heartbeatIntervalSecs * 3 });
  const s = createServer({ cert: cmd.tls.certPem, key: cmd.tls.keyPem, ca: cmd.tls.caPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (socket) => {
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk)) {
        countMessageIn();
        const f = frame as { type?: unknown; workerId?: unknown };
        if (f.type === 'hello' && typeof f.workerId === 'string') {
          socket.write(welcome(f.workerId));
          onHello();
        }
        lastSeen.set(socket, Date.now());
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => lastSeen.delete(socket));
  });
  server = s;
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      resolve({ port: typeof addr === 'object' && addr ? addr.port : 0 });
    });
  });
}

serveRpc(TlsServerCommand, async (cmd) => {
  switch (cmd.type) {
    case 'stats':
      return ownStats();
    case 'gc':
      return fullGcStats();
    case 'listen':
      if (server) throw new Error('already listening');
      return listen(cmd);
    case 'hellos':
      if (hellos >= cmd.count) return { at: lastHelloAt };
      return new Promise<{ at: number }>((resolve) => hellosWanted.push({ count: cmd.count, resolve: (at) => resolve({ at }) }));
  }
});
