/**
 * GoGrid's second control transport: the QUIC control protocol's frames over
 * TLS 1.3 on TCP, for networks that drop UDP. Same identity (mutual TLS with
 * the grid CA), same frames and schemas; the coordinator serves it on its
 * HTTPS port under ALPN `gogrid/1`.
 *
 *   const control = acceptControlOverTls(httpsServer, { maxIdleTimeoutMs: 90_000, onConnection: (peer) => sessions.handlePeer(peer) });
 *
 *   const conn = await connectTls({
 *     host: '192.0.2.10', port: 8443, serverName: 'gogrid-coordinator',
 *     tls: { caPem, certPem, keyPem }, connectTimeoutMs: 10_000, maxIdleTimeoutMs: 90_000,
 *     proxy: proxyFor('192.0.2.10', 8443),
 *   });
 */
export { acceptControlOverTls, HTTPS_ALPN, type TlsControlHandle, type TlsControlOptions } from './tls-server.js';
export { connectTls, type TlsConnectOptions } from './tls-client.js';
export { proxyFor, proxyTunnel } from './proxy.js';
