/**
 * The dialing side of the control protocol over TLS on TCP (tls-server.ts):
 * the same mutual-TLS identity and frames as QUIC, to the coordinator's HTTPS
 * port with ALPN `gogrid/1`, directly or through an HTTP CONNECT proxy.
 *
 * The server takes the client certificate without checking it in the
 * handshake (enrollment shares the port), so a refused certificate arrives
 * as the session layer's error frame, not as a TLS alert.
 */
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { GridError } from '../protocol/errors.js';
import { ALPN } from '../protocol/messages.js';
import type { ControlConnection } from './frame-channel.js';
import { UNREACHABLE_CODES } from './https-client.js';
import { proxyTunnel } from './proxy.js';
import { socketChannel } from './tls-channel.js';

export interface TlsConnectOptions {
  host: string;
  port: number;
  /** Checked against the server certificate's DNS SAN. */
  serverName: string;
  tls: { caPem: string; certPem?: string; keyPem?: string };
  /** The TCP connect, the proxy's answer and the handshake must all finish within this. */
  connectTimeoutMs: number;
  /** A coordinator silent this long is gone. */
  maxIdleTimeoutMs: number;
  /** @default DEFAULT_MAX_FRAME_BYTES (1 MiB) */
  maxFrameBytes?: number;
  /** An HTTP CONNECT proxy to go through (proxy.ts's `proxyFor`); null: straight to the coordinator. */
  proxy?: URL | null;
}

/**
 * Rejects with GG_ERR_COORDINATOR_UNREACHABLE (no answer in time, refused,
 * a proxy that would not connect), GG_ERR_UNAUTHENTICATED (the server's
 * certificate does not verify), GG_ERR_CLOCK_SKEW, or
 * GG_ERR_PROTOCOL_VERSION_UNSUPPORTED (the server does not speak `gogrid/1` on TCP).
 */
export async function connectTls(opts: TlsConnectOptions): Promise<ControlConnection> {
  const where = `${opts.host}:${opts.port}`;
  const deadline = AbortSignal.timeout(opts.connectTimeoutMs);
  let socket: TLSSocket;
  try {
    const raw = opts.proxy ? await proxyTunnel(opts.proxy, opts.host, opts.port, deadline) : undefined;
    socket = await handshake(opts, raw, deadline);
  } catch (e) {
    throw connectError(e, opts, deadline.aborted);
  }
  if (socket.alpnProtocol !== ALPN) {
    socket.destroy();
    throw new GridError(
      'GG_ERR_PROTOCOL_VERSION_UNSUPPORTED',
      `${where} answers on TCP but does not speak the GoGrid control protocol there (ALPN ${ALPN}): a coordinator too old for the TCP transport, or another server; use --transport quic`,
    );
  }
  return { transport: 'tcp', ...socketChannel(socket, opts) };
}

function handshake(opts: TlsConnectOptions, raw: Duplex | undefined, deadline: AbortSignal): Promise<TLSSocket> {
  return new Promise<TLSSocket>((resolve, reject) => {
    const socket = tlsConnect({
      ...(raw ? { socket: raw } : { host: opts.host, port: opts.port }),
      servername: opts.serverName,
      ca: opts.tls.caPem,
      cert: opts.tls.certPem,
      key: opts.tls.keyPem,
      ALPNProtocols: [ALPN],
      minVersion: 'TLSv1.3',
    });
    const onAbort = () => socket.destroy(deadline.reason as Error);
    deadline.addEventListener('abort', onAbort, { once: true });
    socket.once('secureConnect', () => {
      deadline.removeEventListener('abort', onAbort);
      resolve(socket);
    });
    socket.once('error', (e) => {
      deadline.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(e);
    });
  });
}

function connectError(e: unknown, opts: TlsConnectOptions, timedOut: boolean): GridError {
  const where = `${opts.host}:${opts.port}`;
  if (timedOut) return new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `no TLS answer from ${where} over TCP within ${opts.connectTimeoutMs} ms`, { cause: e });
  if (e instanceof GridError) return e;
  const code = (e as NodeJS.ErrnoException).code ?? '';
  if (UNREACHABLE_CODES.has(code) || code === 'EPIPE') return new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `could not connect to ${where} over TCP: ${code}`, { cause: e });
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return new GridError(
      'GG_ERR_CLOCK_SKEW',
      `the certificate of ${where} is expired or not yet valid at this machine's time (${new Date().toISOString()}): check the clock`,
      { cause: e },
    );
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
    return new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `${where} answers on TCP, but not with TLS: is it the coordinator's port? (${code})`, { cause: e });
  }
  if (code === 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') {
    return new GridError('GG_ERR_PROTOCOL_VERSION_UNSUPPORTED', `${where} does not speak the GoGrid control protocol on TCP (ALPN ${ALPN})`, { cause: e });
  }
  if (code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code.includes('CERT') || code.includes('SELF_SIGNED') || code.includes('VERIFY')) {
    return new GridError(
      'GG_ERR_UNAUTHENTICATED',
      `the certificate of ${where} does not verify against our CA for the name "${opts.serverName}" (${code})`,
      { cause: e },
    );
  }
  return new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `could not connect to ${where} over TCP: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}
