/**
 * The control protocol's transport in memory (VS Code's `createProtocolPair`):
 * a connected pair of FrameChannels, and a ControlPeer for the coordinator's
 * session layer, so sessions and the dispatcher are tested without QUIC.
 * Frames still go through the real encoder and decoder, so what one side
 * sends is what the other would have read off a socket, size limit included.
 *
 *   const { peer, client } = memoryConnection({ certDer });
 *   sessions.handlePeer(peer);
 *   await client.send(hello);
 *   for await (const frame of client.frames()) …
 */
import { GridError } from '../../src/protocol/errors.js';
import { DEFAULT_MAX_FRAME_BYTES, encodeFrame, FrameDecoder } from '../../src/transport/frame.js';
import type { ControlPeer, FrameChannel, TransportKind } from '../../src/transport/quic.js';

/** One direction of a pair: frames in order, then its end. */
class Pipe {
  private readonly queue: unknown[] = [];
  private ended = false;
  private wake: (() => void) | null = null;
  private iterated = false;

  push(frame: unknown): void {
    this.queue.push(frame);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  get isEnded(): boolean {
    return this.ended;
  }

  async *drain(): AsyncGenerator<unknown, void, undefined> {
    if (this.iterated) throw new Error('FrameChannel.frames() may be iterated only once');
    this.iterated = true;
    for (;;) {
      if (this.queue.length > 0) {
        yield this.queue.shift();
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private notify(): void {
    this.wake?.();
    this.wake = null;
  }
}

function end(inbound: Pipe, outbound: Pipe, maxFrameBytes: number): FrameChannel {
  const decoder = new FrameDecoder({ maxFrameBytes });
  return {
    async send(value) {
      if (outbound.isEnded) throw new GridError('GG_ERR_CONNECTION_CLOSED', 'the control stream is closed');
      for (const frame of decoder.push(encodeFrame(value, maxFrameBytes))) outbound.push(frame);
    },
    frames: () => inbound.drain(),
    async close() {
      outbound.end();
    },
  };
}

/** Two FrameChannels joined back to back: what `a` sends, `b` reads, and the other way round. */
export function framePair(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): [FrameChannel, FrameChannel] {
  const toA = new Pipe();
  const toB = new Pipe();
  return [end(toA, toB, maxFrameBytes), end(toB, toA, maxFrameBytes)];
}

export interface MemoryConnection {
  /** The coordinator's side, for `SessionManager.handlePeer`. */
  peer: ControlPeer;
  /** The worker's side of the control channel. */
  client: FrameChannel;
  /** Resolves when the connection is gone: the reason is the coordinator's when it closed it, none when the worker hung up. */
  closed: Promise<{ reason?: string }>;
  /** The worker hangs up (as a killed process would). */
  drop(): void;
}

/**
 * A connection whose worker side behaves as the real one: it hangs up once
 * the coordinator ends the control channel (after a fatal error), so the
 * coordinator's close grace is not waited out.
 */
export function memoryConnection(opts: { certDer: Uint8Array | null; remoteAddress?: string; maxFrameBytes?: number; transport?: TransportKind }): MemoryConnection {
  const [server, client] = framePair(opts.maxFrameBytes);
  let closeWith: (how: { reason?: string }) => void = () => undefined;
  const closed = new Promise<{ reason?: string }>((resolve) => (closeWith = resolve));
  const hangUp = (how: { reason?: string }) => {
    void server.close();
    void client.close();
    closeWith(how);
  };
  const serverSide: FrameChannel = {
    send: (value) => server.send(value),
    frames: () => server.frames(),
    async close() {
      await server.close();
      hangUp({});
    },
  };
  return {
    peer: {
      transport: opts.transport ?? 'quic',
      remoteAddress: opts.remoteAddress ?? '127.0.0.1:50000',
      peerCertificate: opts.certDer,
      acceptChannel: async () => serverSide,
      close: async (how = {}) => hangUp({ reason: how.reason }),
      closed: closed.then(() => undefined),
    },
    client,
    closed,
    drop: () => hangUp({}),
  };
}
