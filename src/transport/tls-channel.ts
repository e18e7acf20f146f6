/**
 * What both ends of the TLS-on-TCP transport do with a connected TLS socket:
 * an idle limit, no Nagle delay, and a frame channel over it (frame-channel.ts,
 * the same one QUIC's streams use).
 *
 *   const c = socketChannel(socket, { maxIdleTimeoutMs, maxFrameBytes });
 *   await c.channel.send(frame); … await c.close();
 */
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { DEFAULT_MAX_FRAME_BYTES } from './frame.js';
import { openFrameChannel, type ByteStream, type ControlChannel } from './frame-channel.js';
import { CLOSE_GRACE_MS } from './quic-config.js';

export interface SocketChannel {
  channel: ControlChannel;
  /** Resolves when the socket is gone for any reason. */
  closed: Promise<void>;
  /** Graceful: the channel's queued frames go out and the peer gets a moment to end its half; then the socket goes. TCP has no close code: an error frame before this says why. */
  close(): Promise<void>;
}

export function socketChannel(socket: TLSSocket, opts: { maxIdleTimeoutMs: number; maxFrameBytes?: number }): SocketChannel {
  // Any byte either way resets it; heartbeats are the traffic.
  socket.setTimeout(opts.maxIdleTimeoutMs, () => socket.destroy());
  socket.setNoDelay(true);
  // A reset or a half-open socket ends the channel through its streams; the event itself must not go unhandled.
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const channel = openFrameChannel(Duplex.toWeb(socket) as ByteStream, { maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES });
  let closing: Promise<void> | null = null;
  return {
    channel,
    closed,
    close: () =>
      (closing ??= (async () => {
        await channel.finish(CLOSE_GRACE_MS);
        socket.destroy();
      })()),
  };
}
