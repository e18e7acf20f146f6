/**
 * An HTTP CONNECT proxy on loopback, as an office's would be: it records
 * each CONNECT target, asks for Basic credentials when given some, and can
 * resolve names the machine cannot (so a test can prove a worker got
 * through only by the proxy).
 *
 *   const proxy = await connectProxy({ resolve: () => '127.0.0.1' });
 *   process.env.HTTPS_PROXY = proxy.url().href;
 *   …; expect(proxy.asked).toContain(`grid.invalid:${port}`);
 *   await proxy.close();
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

export interface ConnectProxy {
  /** "host:port" of every CONNECT, in order. */
  asked: string[];
  /** The proxy's URL, with `auth` ("user:password@", percent-encoded) in it. */
  url(auth?: string): URL;
  close(): Promise<void>;
}

export async function connectProxy(opts: { credentials?: string; resolve?: (host: string) => string } = {}): Promise<ConnectProxy> {
  const asked: string[] = [];
  const tunnels = new Set<Duplex>();
  const proxy: Server = createServer((_req, res) => res.writeHead(405).end());
  proxy.on('connect', (req, client: Duplex) => {
    asked.push(req.url ?? '');
    tunnels.add(client);
    client.once('close', () => tunnels.delete(client));
    const auth = req.headers['proxy-authorization'];
    if (opts.credentials && auth !== `Basic ${Buffer.from(opts.credentials).toString('base64')}`) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
      return;
    }
    const at = (req.url ?? '').lastIndexOf(':');
    const host = (req.url ?? '').slice(0, at).replace(/^\[|\]$/g, '');
    const upstream = connect(Number((req.url ?? '').slice(at + 1)), opts.resolve ? opts.resolve(host) : host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  proxy.listen(0, '127.0.0.1');
  await once(proxy, 'listening');
  return {
    asked,
    url: (auth = '') => new URL(`http://${auth}127.0.0.1:${(proxy.address() as AddressInfo).port}`),
    async close() {
      // Tunnels are no longer the HTTP server's connections once CONNECT is answered.
      for (const t of tunnels) t.destroy();
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}
