/**
 * The accepting side of the control protocol over TLS on TCP, for workers
 * whose network drops UDP. It rides on the HTTPS server: same port, same
 * certificate, told apart from HTTP by ALPN (`gogrid/1`; HTTP clients offer
 * `http/1.1` or `h2`), so an operator opens nothing new.
 *
 * Unlike QUIC, the handshake cannot refuse a worker without a certificate:
 * enrollment on the same server has none yet. A control peer whose
 * certificate does not chain to the grid CA is handed on with
 * `peerCertificate: null`, and the session layer refuses it in words.
 */
import { isIPv6 } from 'node:net';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ALPN } from '../protocol/messages.js';
import type { ControlPeer, FrameChannel } from './frame-channel.js';
import { socketChannel, type SocketChannel } from './tls-channel.js';

/** What the HTTPS server offers in ALPN: HTTP first, so a client offering both gets HTTP. */
export const HTTPS_ALPN = ['http/1.1', ALPN];

export interface TlsControlOptions {
  /**
   * A peer silent this long is gone (a killed worker behind a NAT sends no
   * FIN). Above the session layer's heartbeat timeout, which closes first
   * and says why; this catches a peer that never got as far as a session.
   */
  maxIdleTimeoutMs: number;
  /** @default DEFAULT_MAX_FRAME_BYTES (1 MiB) */
  maxFrameBytes?: number;
  /** Called for each control connection. A throw or rejection is logged and closes that connection. */
  onConnection: (peer: ControlPeer) => void;
  logger?: Logger;
}

export interface TlsControlHandle {
  connectionCount(): number;
  /** Closes every control connection, each control channel ended first unless `force`. */
  stop(opts?: { force?: boolean }): Promise<void>;
}

/**
 * Takes the `gogrid/1` connections of `server` (an HTTPS server whose
 * ALPNProtocols include HTTPS_ALPN's) for the control protocol; every other
 * connection goes to the listeners it had. Call it after the server's other
 * `secureConnection` listeners are added: Node's HTTPS server has no hook by
 * ALPN, so those listeners are moved behind the check (HTTP/2's allowHTTP1
 * hands HTTP/1 connections on the same way).
 */
export function acceptControlOverTls(server: TlsServer, opts: TlsControlOptions): TlsControlHandle {
  const others = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
  server.removeAllListeners('secureConnection');
  const peers = new Set<TlsPeer>();
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol !== ALPN) {
      for (const listener of others) listener.call(server, socket);
      return;
    }
    const peer = new TlsPeer(socket, opts);
    peers.add(peer);
    void peer.closed.then(() => peers.delete(peer));
    const fail = (e: unknown): void => {
      opts.logger?.error({ err: e, remote: peer.remoteAddress }, 'TLS control connection handler failed');
      void peer.close();
    };
    try {
      const result: unknown = opts.onConnection(peer);
      if (result instanceof Promise) result.catch(fail);
    } catch (e) {
      fail(e);
    }
  });
  return {
    connectionCount: () => peers.size,
    async stop(stopOpts = {}) {
      await Promise.all([...peers].map((peer) => (stopOpts.force ? peer.destroy() : peer.close())));
    },
  };
}

class TlsPeer implements ControlPeer {
  readonly transport = 'tcp';
  readonly remoteAddress: string;
  readonly peerCertificate: Uint8Array | null;
  readonly closed: Promise<void>;
  private readonly connection: SocketChannel;

  constructor(
    private readonly socket: TLSSocket,
    opts: TlsControlOptions,
  ) {
    const host = socket.remoteAddress ?? 'unknown';
    this.remoteAddress = isIPv6(host) ? `[${host}]:${socket.remotePort}` : `${host}:${socket.remotePort}`;
    this.peerCertificate = socket.authorized ? (socket.getPeerX509Certificate()?.raw ?? null) : null;
    this.connection = socketChannel(socket, opts);
    this.closed = this.connection.closed;
  }

  acceptChannel(): Promise<FrameChannel> {
    return Promise.resolve(this.connection.channel);
  }

  close(): Promise<void> {
    return this.connection.close();
  }

  async destroy(): Promise<void> {
    this.socket.destroy();
    await this.closed;
  }
}
