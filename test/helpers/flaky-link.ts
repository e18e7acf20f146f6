/**
 * A link between workers and a coordinator on loopback that can drop UDP, as
 * an office network or a flaky Wi-Fi does: QUIC datagrams are relayed on one
 * port (one upstream socket per client, so the coordinator sees each worker
 * as its own peer), and TCP (enrollment, HTTPS downloads) is relayed on the
 * same port number, as workers dial both at one address.
 *
 *   const link = await flakyLink(() => coordinatorPort);
 *   // workers dial 127.0.0.1:${link.port}
 *   link.dropUdp = true;   // every datagram, both ways, is lost until set back
 *   await link.close();
 */
import { createSocket, type Socket } from 'node:dgram';
import { createConnection, createServer, type Socket as NetSocket } from 'node:net';
import { once } from 'node:events';

export interface FlakyLink {
  readonly port: number;
  dropUdp: boolean;
  close(): Promise<void>;
}

/** `target()` is read per connection and datagram: a coordinator restarted on another port is followed. */
export async function flakyLink(target: () => number): Promise<FlakyLink> {
  for (let tries = 0; ; tries++) {
    const tcp = await tcpRelay(target);
    const udp = createSocket('udp4');
    try {
      udp.bind(tcp.port, '127.0.0.1');
      await once(udp, 'listening');
    } catch (e) {
      // The number is free for TCP but taken for UDP: try another.
      udp.close();
      await tcp.close();
      if (tries >= 20) throw e;
      continue;
    }
    return udpRelay(tcp, udp, target);
  }
}

/** Pipes each TCP connection to the target, on a port of its own. */
async function tcpRelay(target: () => number): Promise<{ port: number; close(): Promise<void> }> {
  const open = new Set<NetSocket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target() });
    open.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of open) s.destroy();
      }),
  };
}

/** Relays datagrams on the TCP relay's port number, one upstream socket per client, dropping them while asked to. */
function udpRelay(tcp: { port: number; close(): Promise<void> }, udp: Socket, target: () => number): FlakyLink {
  const upstreams = new Map<string, Socket>();
  const link: FlakyLink = {
    port: tcp.port,
    dropUdp: false,
    async close() {
      for (const s of upstreams.values()) s.close();
      udp.close();
      await tcp.close();
    },
  };
  udp.on('message', (msg, from) => {
    if (link.dropUdp) return;
    const key = `${from.address}:${from.port}`;
    let up = upstreams.get(key);
    if (!up) {
      const s = createSocket('udp4');
      s.on('message', (back) => {
        if (!link.dropUdp) udp.send(back, from.port, from.address);
      });
      s.bind(0, '127.0.0.1');
      upstreams.set(key, s);
      up = s;
    }
    up.send(msg, target(), '127.0.0.1');
  });
  return link;
}
