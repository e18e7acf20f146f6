/**
 * The dialing side of GoGrid's QUIC transport: connect, verify the server's
 * certificate against `tls.caPem` and `serverName`, open the control stream.
 *
 * A client whose own certificate the server refuses still connects: in TLS 1.3
 * the client finishes its handshake before the server has checked the client
 * certificate. The refusal arrives a round trip later, and `channel.frames()`
 * then throws GG_ERR_UNAUTHENTICATED. Count a connection as up only once the
 * server has answered on the channel.
 */
import { QUICClient, errors as quicErrors, type QUICSocket, type QUICStream } from '@matrixai/quic';
import type { Logger as PinoLogger } from 'pino';
import { GridError } from '../protocol/errors.js';
import { openFrameChannel, type ControlConnection } from './frame-channel.js';
import { baseConfig, clientCrypto, CLOSE_GRACE_MS, compileTiming, quicLogger, type QuicTimingOptions } from './quic-config.js';

/** TLS alert 120, as a QUIC crypto error: the server speaks no protocol we offered (ALPN). */
const TLS_NO_APPLICATION_PROTOCOL = 0x100 + 120;
/** TLS alert 45, certificate_expired (RFC 8446 §6.2). */
const TLS_CERTIFICATE_EXPIRED = 45;

export interface QuicConnectOptions extends QuicTimingOptions {
  /** An IP address or a name the OS resolver knows. */
  host: string;
  port: number;
  /** Checked against the server certificate's DNS SAN; an IP SAN alone does not pass. */
  serverName: string;
  /** certPem and keyPem are omitted only before enrollment. */
  tls: { caPem: string; certPem?: string; keyPem?: string };
  /** The handshake must finish within this; without a limit a dead port is retried forever. */
  connectTimeoutMs: number;
  logger?: PinoLogger;
  /**
   * A started UDP socket to share with other connections, for a process that
   * holds many of them (the fleet simulator in bench/). The caller starts and
   * stops it; closing this connection leaves it open.
   * @default none: the connection binds and closes a socket of its own
   */
  socket?: QUICSocket;
}

export type QuicClientConnection = ControlConnection;

/**
 * Rejects with GG_ERR_COORDINATOR_UNREACHABLE (no answer in time),
 * GG_ERR_UNAUTHENTICATED (the server's certificate does not verify, or the
 * server refused the handshake) or GG_ERR_PROTOCOL_VERSION_UNSUPPORTED (ALPN).
 */
export async function connectQuic(opts: QuicConnectOptions): Promise<QuicClientConnection> {
  const timing = compileTiming(opts, 'client');
  let client: QUICClient;
  try {
    const clientOpts = {
      host: opts.host,
      port: opts.port,
      serverName: opts.serverName,
      crypto: clientCrypto,
      logger: quicLogger(opts.logger),
      config: {
        ...baseConfig(timing),
        ca: opts.tls.caPem,
        cert: opts.tls.certPem,
        key: opts.tls.keyPem,
        // The server never opens streams towards us.
        initialMaxStreamsBidi: 0,
        initialMaxStreamsUni: 0,
      },
    };
    const ctx = { timer: opts.connectTimeoutMs };
    client = await (opts.socket
      ? QUICClient.createQUICClient({ ...clientOpts, socket: opts.socket }, ctx)
      : QUICClient.createQUICClient(clientOpts, ctx));
  } catch (e) {
    throw connectError(e, opts);
  }
  let stream: QUICStream;
  try {
    stream = client.connection.newStream('bidi');
  } catch (e) {
    // The server hung up between the handshake and this line.
    await client.destroy({ force: true });
    throw new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `${opts.host}:${opts.port} closed the connection right after the handshake`, { cause: e });
  }
  const channel = openFrameChannel(stream, { maxFrameBytes: timing.maxFrameBytes });
  let closing: Promise<void> | null = null;
  const shutdown = async (): Promise<void> => {
    await channel.finish(CLOSE_GRACE_MS);
    await client.destroy({ isApp: true, errorCode: 0, force: true });
  };
  return {
    transport: 'quic',
    channel,
    close: () => (closing ??= shutdown()),
    closed: client.closedP,
  };
}

function connectError(e: unknown, opts: QuicConnectOptions): GridError {
  const where = `${opts.host}:${opts.port}`;
  if (e instanceof quicErrors.ErrorQUICClientCreateTimeout) {
    return new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `no QUIC answer from ${where} within ${opts.connectTimeoutMs} ms`, { cause: e });
  }
  const alert = (e instanceof quicErrors.ErrorQUICConnectionPeerTLS || e instanceof quicErrors.ErrorQUICConnectionLocalTLS) && e.data.errorCode - 0x100;
  if (alert === TLS_CERTIFICATE_EXPIRED) {
    // Also what BoringSSL sends for "not yet valid": a clock that is off, far more often than a stale certificate.
    const whose = e instanceof quicErrors.ErrorQUICConnectionLocalTLS ? `the certificate of ${where}` : `${where}: this worker's certificate`;
    return new GridError(
      'GG_ERR_CLOCK_SKEW',
      `${whose} is expired or not yet valid at this machine's time (${new Date().toISOString()}): check the clock; a worker away for longer than its certificate lasts (30 days) needs a new token`,
      { cause: e },
    );
  }
  if (e instanceof quicErrors.ErrorQUICConnectionPeerTLS) {
    if (e.data.errorCode === TLS_NO_APPLICATION_PROTOCOL) {
      return new GridError('GG_ERR_PROTOCOL_VERSION_UNSUPPORTED', `${where} does not speak this GoGrid protocol (ALPN)`, { cause: e });
    }
    return new GridError('GG_ERR_UNAUTHENTICATED', `${where} refused the TLS handshake (alert ${e.data.errorCode - 0x100})`, { cause: e });
  }
  if (e instanceof quicErrors.ErrorQUICConnectionLocalTLS) {
    return new GridError(
      'GG_ERR_UNAUTHENTICATED',
      `the certificate of ${where} does not verify against our CA for the name "${opts.serverName}" (alert ${e.data.errorCode - 0x100})`,
      { cause: e },
    );
  }
  return new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `could not connect to ${where}: ${String(e)}`, { cause: e });
}
