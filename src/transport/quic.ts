/**
 * GoGrid's QUIC transport on @matrixai/quic: mutual TLS with ALPN `gogrid/1`,
 * one control stream per connection carrying length-prefixed JSON frames. It
 * knows bytes, streams and frames, not jobs.
 *
 *   const server = await startQuicServer({
 *     host: '0.0.0.0', port: 8443, maxIdleTimeoutMs: 90_000,
 *     tls: { certPem, keyPem, caPem },
 *     onConnection: async (peer) => {
 *       const channel = await peer.acceptChannel();
 *       for await (const frame of channel.frames()) await channel.send(reply(frame));
 *     },
 *   });
 *
 *   const conn = await connectQuic({
 *     host: '192.0.2.10', port: 8443, serverName: 'gogrid-coordinator',
 *     tls: { caPem, certPem, keyPem }, connectTimeoutMs: 10_000, maxIdleTimeoutMs: 90_000,
 *   });
 *   await conn.channel.send({ type: 'hello', … });
 *   await conn.close();
 */
export type { ControlPeer, FrameChannel, TransportKind } from './frame-channel.js';
export type { QuicTimingOptions } from './quic-config.js';
export { startQuicServer, type QuicPeer, type QuicServerHandle, type QuicServerOptions } from './quic-server.js';
export { connectQuic, type QuicClientConnection, type QuicConnectOptions } from './quic-client.js';
export { addressUnavailable } from './address-error.js';
