/**
 * The accepting side of GoGrid's QUIC transport. Only clients whose
 * certificate chains to `tls.caPem` get through: BoringSSL refuses the others
 * during the handshake (no certificate: alert 116 certificate_required; another
 * CA: alert 48 unknown_ca), before `onConnection` ever sees them, so a peer
 * handed to `onConnection` always has a verified `peerCertificate`.
 */
import { QUICServer, events, utils, type QUICConnection } from '@matrixai/quic';
import type { Logger as PinoLogger } from 'pino';
import { GridError } from '../protocol/errors.js';
import { addressUnavailable } from './address-error.js';
import { openFrameChannel, type ControlChannel, type ControlPeer, type FrameChannel } from './frame-channel.js';
import {
  APP_ERROR_INTERNAL,
  baseConfig,
  CLOSE_GRACE_MS,
  compileTiming,
  quicLogger,
  serverCrypto,
  type CompiledTiming,
  type QuicTimingOptions,
} from './quic-config.js';

/**
 * A verified QUIC connection. QUIC announces a stream with its first bytes, so
 * `acceptChannel` resolves when the client's first frame arrives; later
 * streams are refused. `close`'s error code is a QUIC application error code.
 */
export type QuicPeer = ControlPeer;

export interface QuicServerOptions extends QuicTimingOptions {
  /** Port 0 picks a free port; read the bound one from the result. */
  host: string;
  port: number;
  /** Clients must present a certificate chaining to caPem. */
  tls: { certPem: string; keyPem: string; caPem: string };
  /** Called for each verified connection. A throw or rejection is logged and closes that connection. */
  onConnection: (peer: QuicPeer) => void;
  /**
   * Whether a client at `host` may start a handshake now. A refused one's
   * packet is dropped: its client times out and tries again later, and the
   * coordinator spends no TLS handshake on it. @default every one
   */
  admit?: (host: string) => boolean;
  logger?: PinoLogger;
}

export interface QuicServerHandle {
  host: string;
  port: number;
  connectionCount(): number;
  /**
   * Stops accepting and closes every connection. Graceful by default: each
   * peer's control stream ends first (bounded by a short grace period);
   * `force` closes at once.
   */
  stop(opts?: { force?: boolean }): Promise<void>;
}

export async function startQuicServer(opts: QuicServerOptions): Promise<QuicServerHandle> {
  const timing = compileTiming(opts, 'server');
  const server = new QUICServer({
    crypto: serverCrypto(),
    logger: quicLogger(opts.logger),
    config: {
      ...baseConfig(timing),
      key: opts.tls.keyPem,
      cert: opts.tls.certPem,
      ca: opts.tls.caPem,
      // One control stream per connection; bulk data goes over HTTPS.
      initialMaxStreamsBidi: 1,
      initialMaxStreamsUni: 0,
    },
  });
  const peers = new Set<ServerPeer>();
  if (opts.admit) admitThrough(server, opts.admit);

  server.addEventListener(events.EventQUICServerConnection.name, (evt: Event) => {
    if (!(evt instanceof events.EventQUICServerConnection)) return;
    const peer = new ServerPeer(evt.detail, timing);
    peers.add(peer);
    void peer.closed.then(() => peers.delete(peer));
    const fail = (e: unknown): void => {
      opts.logger?.error({ err: e, remote: peer.remoteAddress }, 'QUIC connection handler failed');
      void peer.close({ errorCode: APP_ERROR_INTERNAL, reason: 'GG_ERR_INTERNAL' });
    };
    try {
      // Typed as returning void, but an async handler must not become an unhandled rejection.
      const result: unknown = opts.onConnection(peer);
      if (result instanceof Promise) result.catch(fail);
    } catch (e) {
      fail(e);
    }
  });

  await server.start({ host: opts.host, port: opts.port }).catch((e: unknown) => {
    throw addressUnavailable('UDP', opts.host, opts.port, e);
  });
  return {
    host: server.host,
    port: server.port,
    connectionCount: () => peers.size,
    async stop(stopOpts = {}) {
      if (!stopOpts.force) {
        await Promise.all([...peers].map((peer) => peer.close({ reason: 'GG_ERR_SHUTTING_DOWN' })));
      }
      await server.stop({ isApp: true, errorCode: 0, reason: Buffer.from('GG_ERR_SHUTTING_DOWN'), force: true });
    },
  };
}

class ServerPeer implements QuicPeer {
  readonly transport = 'quic';
  readonly remoteAddress: string;
  readonly peerCertificate: Uint8Array | null;
  readonly closed: Promise<void>;
  private readonly channel: Promise<ControlChannel>;
  private opened: ControlChannel | null = null;
  private closing: Promise<void> | null = null;

  constructor(
    private readonly connection: QUICConnection,
    timing: CompiledTiming,
  ) {
    this.remoteAddress = utils.buildAddress(connection.remoteHost, connection.remotePort);
    this.peerCertificate = connection.getRemoteCertsChain()[0] ?? null;
    this.closed = connection.closedP;
    this.channel = new Promise<ControlChannel>((resolve, reject) => {
      connection.addEventListener(events.EventQUICConnectionStream.name, (evt: Event) => {
        if (!(evt instanceof events.EventQUICConnectionStream)) return;
        const stream = evt.detail;
        if (this.opened !== null || stream.type !== 'bidi') {
          try {
            stream.cancel(new GridError('GG_ERR_MESSAGE_UNEXPECTED', 'only one control stream is allowed'));
          } catch {
            // The stream died on its own already.
          }
          return;
        }
        this.opened = openFrameChannel(stream, { maxFrameBytes: timing.maxFrameBytes });
        resolve(this.opened);
      });
      void connection.closedP.then(() =>
        reject(new GridError('GG_ERR_CONNECTION_CLOSED', `${this.remoteAddress} closed before opening a control stream`)),
      );
    });
    // Nobody may ever ask for the channel of a connection that dies early.
    this.channel.catch(() => undefined);
  }

  acceptChannel(): Promise<FrameChannel> {
    return this.channel;
  }

  close(opts: { errorCode?: number; reason?: string } = {}): Promise<void> {
    this.closing ??= this.shutdown(opts.errorCode ?? 0, opts.reason ?? '');
    return this.closing;
  }

  private async shutdown(errorCode: number, reason: string): Promise<void> {
    await this.opened?.finish(CLOSE_GRACE_MS);
    await this.connection
      .stop({ isApp: true, errorCode, reason: Buffer.from(reason), force: true })
      // Already closed by the peer or an idle timeout: nothing left to do.
      .catch(() => undefined);
  }
}

/**
 * @matrixai/quic has no hook before a handshake: its socket hands each new
 * connection's Initial packet to the server's acceptConnection (internal, not
 * in its types), which is wrapped here. The first Initial of a client carries
 * no token and only gets a stateless Retry (cheap, and it proves the address
 * is not spoofed); the one that comes back with the token starts the
 * handshake, and is what `admit` is asked about. Tested through the
 * coordinator (test/coordinator/ip-limits.test.ts), so an upgrade that moves
 * this fails there.
 */
function admitThrough(server: QUICServer, admit: (host: string) => boolean): void {
  // `token` is null in every packet that is not an Initial: a Handshake packet of a connection this process does
  // not know (a worker's, after a restart), or a 0-RTT one, which the library itself then reads as if it had one.
  type Accept = (remoteInfo: { host: string }, header: { token: Uint8Array | null }, ...rest: unknown[]) => Promise<void>;
  const internals = server as unknown as { acceptConnection: Accept };
  if (typeof internals.acceptConnection !== 'function') throw new Error('@matrixai/quic no longer has QUICServer.acceptConnection: see admitThrough');
  const accept = internals.acceptConnection.bind(server);
  internals.acceptConnection = async (remoteInfo, header, ...rest) => {
    // No token, no new connection: only an Initial (token empty or not) can start one. The library would
    // throw on a 0-RTT packet's null token, an unhandled rejection that ended the coordinator.
    if (header.token == null) return;
    if (header.token.byteLength > 0 && !admit(remoteInfo.host)) return;
    return accept(remoteInfo, header, ...rest);
  };
}
