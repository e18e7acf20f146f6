/**
 * HTTP CONNECT proxies, for workers whose only way out is one: the proxy is
 * read from the environment as curl and most tools read it (HTTPS_PROXY,
 * ALL_PROXY, NO_PROXY; proxy-from-env), and the tunnel is Node's own
 * CONNECT request. An `http://` proxy is supported, with user:password in
 * its URL sent as Basic authentication; an `https://` or SOCKS proxy is
 * refused by name rather than dialled as if it were another kind.
 *
 *   const proxy = proxyFor('grid.example.com', 8443);   // URL or null
 *   const socket = await proxyTunnel(proxy, 'grid.example.com', 8443, signal);
 */
import { request } from 'node:http';
import type { Duplex } from 'node:stream';
import { getProxyForUrl } from 'proxy-from-env';
import { GridError } from '../protocol/errors.js';

/** host:port as a URL or a CONNECT line writes it (an IPv6 address in brackets). */
const authority = (host: string, port: number) => `${host.includes(':') ? `[${host}]` : host}:${port}`;

/** The proxy for an HTTPS connection to host:port, or null for a direct one. */
export function proxyFor(host: string, port: number): URL | null {
  const found = getProxyForUrl(`https://${authority(host, port)}/`);
  if (found === '') return null;
  let url: URL;
  try {
    url = new URL(found.includes('://') ? found : `http://${found}`);
  } catch (e) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `HTTPS_PROXY is not a URL: ${JSON.stringify(found.slice(0, 200))}`, { cause: e });
  }
  if (url.protocol !== 'http:') {
    throw new GridError('GG_ERR_CONFIG_INVALID', `HTTPS_PROXY ${url.protocol}// proxies are not supported; give an http:// proxy that takes CONNECT`);
  }
  return url;
}

/** A byte stream to host:port through the proxy's CONNECT; GG_ERR_COORDINATOR_UNREACHABLE when the proxy says no. */
export function proxyTunnel(proxy: URL, host: string, port: number, signal: AbortSignal): Promise<Duplex> {
  const target = authority(host, port);
  const auth = proxy.username === '' ? {} : { 'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}` };
  return new Promise<Duplex>((resolve, reject) => {
    const req = request({ host: proxy.hostname.replace(/^\[|\]$/g, ''), port: proxy.port || 80, method: 'CONNECT', path: target, headers: { host: target, ...auth }, signal });
    req.once('connect', (res, socket) => {
      if (res.statusCode === 200) {
        resolve(socket);
        return;
      }
      socket.destroy();
      reject(new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `the proxy ${proxy.host} would not connect to ${target}: HTTP ${res.statusCode} ${res.statusMessage ?? ''}`.trimEnd()));
    });
    req.once('error', (e) => {
      if (signal.aborted) reject(e);
      else reject(new GridError('GG_ERR_COORDINATOR_UNREACHABLE', `cannot reach the proxy ${proxy.host}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e }));
    });
    req.end();
  });
}
