/**
 * A FrameChannel over one bidirectional byte stream (a QUIC stream, or a TLS
 * socket through `Duplex.toWeb`): length-prefixed JSON frames (frame.ts) out
 * through `send`, in through `frames()`.
 *
 *   const channel = openFrameChannel(stream, { maxFrameBytes });
 *   await channel.send({ type: 'hello', … });
 *   for await (const frame of channel.frames()) handle(frame);
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ReadableStream, ReadableStreamReadResult, WritableStream } from 'node:stream/web';
import { errors as quicErrors } from '@matrixai/quic';
import { GridError } from '../protocol/errors.js';
import { encodeFrame, FrameDecoder } from './frame.js';

export interface FrameChannel {
  /** Encodes and writes one frame; rejects with GG_ERR_CONNECTION_CLOSED once the channel is closed. */
  send(value: unknown): Promise<void>;
  /**
   * Decoded frames in order; may be iterated once. Ends when the peer ends
   * the stream or the connection closes. Throws GG_ERR_FRAME_TOO_LARGE or
   * GG_ERR_FRAME_INVALID on a bad frame (the read side is then shut), and
   * GG_ERR_UNAUTHENTICATED when the peer refused our TLS certificate.
   */
  frames(): AsyncIterable<unknown>;
  /** Graceful: queued frames are flushed, then our half of the stream ends. */
  close(): Promise<void>;
}

/** What carries a control connection: QUIC on UDP, or TLS on TCP where UDP does not get through. */
export type TransportKind = 'quic' | 'tcp';

/**
 * One worker's connection as the session layer sees it, whatever carries it
 * (QUIC, TLS on TCP; an in-memory pair in tests).
 */
export interface ControlPeer {
  readonly transport: TransportKind;
  /** "host:port" ("[v6]:port" for IPv6). */
  readonly remoteAddress: string;
  /** DER of the client's leaf certificate; null unless it chains to the coordinator's CA. */
  readonly peerCertificate: Uint8Array | null;
  /** The control channel the client opens first. Rejects with GG_ERR_CONNECTION_CLOSED if the connection closes first. */
  acceptChannel(): Promise<FrameChannel>;
  /**
   * Ends the control channel (flushing queued frames, waiting briefly for the
   * client to end its half), then closes the connection with an application
   * error code (default 0) and reason (by convention a GG_ERR_* code name).
   */
  close(opts?: { errorCode?: number; reason?: string }): Promise<void>;
  /** Resolves when the connection is gone: peer close, idle timeout (a killed peer), or our close. */
  readonly closed: Promise<void>;
}

/** A worker's connection to the coordinator, whatever carries it. */
export interface ControlConnection {
  readonly transport: TransportKind;
  /** The control channel. Nothing reaches the server until the first `send`. */
  channel: FrameChannel;
  /** Ends the control channel (briefly waiting for the server to end its half), then closes the connection. */
  close(): Promise<void>;
  /** Resolves when the connection is gone for any reason. */
  closed: Promise<void>;
}

/** The extra the connection wrappers need to close without losing the last frame. */
export interface ControlChannel extends FrameChannel {
  /** close(), then wait up to `graceMs` for the peer to end its half too. */
  finish(graceMs: number): Promise<void>;
}

/**
 * Frames read ahead of the consumer. Past this the pump stops reading, so
 * flow control (QUIC's, TCP's window) pushes back on a peer that sends faster than we handle.
 */
const READ_AHEAD_FRAMES = 64;

/** The two halves of a byte stream, as web streams. */
export interface ByteStream {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}

export function openFrameChannel(stream: ByteStream, opts: { maxFrameBytes: number }): ControlChannel {
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const inbox = new Inbox();
  let writeClosed = false;
  let iterated = false;

  const close = async (): Promise<void> => {
    if (writeClosed) return;
    writeClosed = true;
    // Fails only when the stream is already gone, which is the goal anyway.
    await writer.close().catch(() => undefined);
  };

  // Reads eagerly rather than when the consumer asks: a connection close
  // errors the web stream, which drops chunks still queued inside it.
  const pump = async (): Promise<void> => {
    const decoder = new FrameDecoder({ maxFrameBytes: opts.maxFrameBytes });
    for (;;) {
      await inbox.space();
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (e) {
        const refused = refusalOf(e);
        if (refused) inbox.fail(refused);
        else inbox.end();
        return;
      }
      if (chunk.done) {
        if (decoder.pendingBytes > 0) {
          inbox.fail(new GridError('GG_ERR_FRAME_INVALID', `stream ended ${decoder.pendingBytes} bytes into a frame`));
        } else {
          inbox.end();
        }
        // A control stream the peer has ended is of no further use to us either.
        await close();
        return;
      }
      try {
        for (const frame of decoder.push(chunk.value)) inbox.push(frame);
      } catch (e) {
        inbox.fail(e);
        await reader.cancel(e).catch(() => undefined);
        return;
      }
    }
  };
  const pumped = pump().catch((e: unknown) => inbox.fail(e));

  return {
    async send(value) {
      if (writeClosed) throw new GridError('GG_ERR_CONNECTION_CLOSED', 'the control stream is closed');
      const frame = encodeFrame(value, opts.maxFrameBytes);
      try {
        await writer.write(frame);
      } catch (e) {
        throw refusalOf(e) ?? new GridError('GG_ERR_CONNECTION_CLOSED', 'the connection closed while sending a frame', { cause: e });
      }
    },
    frames() {
      if (iterated) throw new Error('FrameChannel.frames() may be iterated only once');
      iterated = true;
      return inbox.drain();
    },
    close,
    async finish(graceMs) {
      await close();
      const timer = new AbortController();
      await Promise.race([pumped, delay(graceMs, undefined, { signal: timer.signal }).catch(() => undefined)]);
      timer.abort();
    },
  };
}

/** The peer's TLS refusal of our certificate arrives as the reason the stream died. */
function refusalOf(e: unknown): GridError | null {
  if (!(e instanceof quicErrors.ErrorQUICConnectionPeerTLS)) return null;
  return new GridError('GG_ERR_UNAUTHENTICATED', `the peer refused our TLS certificate (TLS alert ${e.data.errorCode - 0x100})`, {
    cause: e,
  });
}

/** Single-consumer queue between the pump and `frames()`. */
class Inbox {
  private readonly queue: unknown[] = [];
  private finished = false;
  private failure: unknown = null;
  private wakeConsumer: (() => void) | null = null;
  private wakePump: (() => void) | null = null;

  push(frame: unknown): void {
    this.queue.push(frame);
    this.wake();
  }

  end(): void {
    this.finished = true;
    this.wake();
  }

  fail(error: unknown): void {
    this.failure = error;
    this.end();
  }

  /** Resolves once the consumer has room for more frames. */
  async space(): Promise<void> {
    while (this.queue.length >= READ_AHEAD_FRAMES) {
      await new Promise<void>((resolve) => (this.wakePump = resolve));
    }
  }

  async *drain(): AsyncGenerator<unknown, void, undefined> {
    for (;;) {
      if (this.queue.length > 0) {
        const frame = this.queue.shift();
        this.wakePump?.();
        this.wakePump = null;
        yield frame;
        continue;
      }
      if (this.finished) {
        if (this.failure !== null) throw this.failure;
        return;
      }
      await new Promise<void>((resolve) => (this.wakeConsumer = resolve));
    }
  }

  private wake(): void {
    this.wakeConsumer?.();
    this.wakeConsumer = null;
  }
}
