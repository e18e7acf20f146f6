/**
 * A coordinator that cannot have its address says so in one line an operator
 * can act on (GG_ERR_ADDRESS_UNAVAILABLE, the protocol and port named), not
 * with a library's stack: the UDP port (QUIC) and the TCP port (HTTPS) can
 * each be taken by another program.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTempDirs, startTestCoordinator } from '../helpers/grid.js';

afterAll(() => removeTempDirs());

describe('a coordinator whose port is taken', () => {
  it('names the UDP port another program holds', async () => {
    const udp = createSocket('udp4');
    udp.bind(0, '127.0.0.1');
    await once(udp, 'listening');
    const { port } = udp.address();
    try {
      await expect(startTestCoordinator({ port })).rejects.toMatchObject({
        code: 'GG_ERR_ADDRESS_UNAVAILABLE',
        message: expect.stringContaining(`cannot listen on 127.0.0.1:${port} (UDP): another program already uses UDP port ${port}`),
      });
    } finally {
      udp.close();
    }
  });

  it('names the TCP port another program holds, and starts once it is free', async () => {
    const tcp = createServer();
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    const { port } = tcp.address() as AddressInfo;
    await expect(startTestCoordinator({ port })).rejects.toMatchObject({
      code: 'GG_ERR_ADDRESS_UNAVAILABLE',
      message: expect.stringContaining(`(TCP): another program already uses TCP port ${port}`),
    });
    await new Promise((resolve) => tcp.close(resolve));
    const c = await startTestCoordinator({ port });
    expect(c.port).toBe(port);
    await c.stop();
  });
});
