/**
 * What both QUIC ends share: the @matrixai/quic config every GoGrid
 * connection uses, the crypto callbacks the library asks its caller for, and
 * a logger bridge so the library's per-connection chatter stays out of stderr.
 */
import { createHmac, randomBytes, timingSafeEqual, webcrypto } from 'node:crypto';
import Logger, { Handler, LogLevel, type LogRecord } from '@matrixai/logger';
import type { QUICClientCrypto, QUICConfig, QUICServerCrypto } from '@matrixai/quic';
import type { Logger as PinoLogger } from 'pino';
import { GridError } from '../protocol/errors.js';
import { DEFAULT_MAX_FRAME_BYTES } from './frame.js';
import { ALPN } from '../protocol/messages.js';

/** Options common to the server and the client. */
export interface QuicTimingOptions {
  /**
   * A peer silent this long is gone: its connection closes and `closed`
   * resolves. Must be > 0, since 0 means "never" to quiche and a killed peer
   * would then never be noticed.
   */
  maxIdleTimeoutMs: number;
  /**
   * PING interval on an otherwise idle connection; must be below the smaller
   * of both ends' maxIdleTimeoutMs. Every ping costs CPU on both ends, so one
   * end pinging is enough (the other's ACKs keep both idle timers fresh).
   * null: no pings, for callers whose own traffic (heartbeats) keeps the
   * connection busy more often than the idle timeout.
   * @default client: maxIdleTimeoutMs / 3; server: none
   */
  keepAliveIntervalMs?: number | null;
  /** @default DEFAULT_MAX_FRAME_BYTES (1 MiB) */
  maxFrameBytes?: number;
}

export interface CompiledTiming {
  maxIdleTimeoutMs: number;
  keepAliveIntervalMs: number | undefined;
  maxFrameBytes: number;
}

/**
 * How long a graceful close waits for the peer to end its half of the control
 * stream. Without the wait, closing the connection right after the last frame
 * can discard that frame on the peer before it is read.
 */
export const CLOSE_GRACE_MS = 1000;

/** Application close code for "the local side hit a bug"; the reason names the GG_ERR code. */
export const APP_ERROR_INTERNAL = 1;

export function compileTiming(opts: QuicTimingOptions, side: 'client' | 'server'): CompiledTiming {
  if (!(opts.maxIdleTimeoutMs > 0)) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `maxIdleTimeoutMs must be > 0 (got ${opts.maxIdleTimeoutMs})`);
  }
  const keepAliveIntervalMs =
    opts.keepAliveIntervalMs === null
      ? undefined
      : (opts.keepAliveIntervalMs ?? (side === 'client' ? Math.floor(opts.maxIdleTimeoutMs / 3) : undefined));
  if (keepAliveIntervalMs !== undefined && !(keepAliveIntervalMs > 0 && keepAliveIntervalMs < opts.maxIdleTimeoutMs)) {
    throw new GridError(
      'GG_ERR_CONFIG_INVALID',
      `keepAliveIntervalMs must be > 0 and below maxIdleTimeoutMs (got ${keepAliveIntervalMs} and ${opts.maxIdleTimeoutMs})`,
    );
  }
  return { maxIdleTimeoutMs: opts.maxIdleTimeoutMs, keepAliveIntervalMs, maxFrameBytes: opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES };
}

/**
 * Settings both ends use. Peers are always verified by BoringSSL itself:
 * setting `verifyCallback` would switch that check off.
 */
export function baseConfig(timing: CompiledTiming): Partial<QUICConfig> {
  return {
    verifyPeer: true,
    applicationProtos: [ALPN],
    maxIdleTimeout: timing.maxIdleTimeoutMs,
    keepAliveIntervalTime: timing.keepAliveIntervalMs,
  };
}

/**
 * The server signs and checks its own stateless-retry tokens and connection
 * ids with this key; it only has to outlive the server instance.
 */
export function serverCrypto(): QUICServerCrypto {
  const key = randomBytes(32);
  const mac = (k: ArrayBuffer, data: ArrayBuffer): Buffer =>
    createHmac('sha256', Buffer.from(k)).update(Buffer.from(data)).digest();
  return {
    key: toArrayBuffer(key),
    ops: {
      sign: async (k, data) => toArrayBuffer(mac(k, data)),
      verify: async (k, data, sig) => {
        const expected = mac(k, data);
        const actual = Buffer.from(sig);
        return actual.length === expected.length && timingSafeEqual(actual, expected);
      },
    },
  };
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.byteLength);
  new Uint8Array(out).set(bytes);
  return out;
}

export const clientCrypto: QUICClientCrypto = {
  ops: {
    randomBytes: async (data) => {
      webcrypto.getRandomValues(new Uint8Array(data));
    },
  },
};

/**
 * @matrixai/quic logs every connection at info level to stderr by default.
 * Forward only warnings and errors, to pino when given, else nowhere.
 */
export function quicLogger(logger: PinoLogger | undefined): Logger {
  if (logger === undefined) return new Logger('quic', LogLevel.SILENT, []);
  return new Logger('quic', LogLevel.WARN, [new PinoHandler(logger)]);
}

class PinoHandler extends Handler {
  constructor(private readonly target: PinoLogger) {
    super();
  }

  override handle(record: LogRecord): void {
    const fields = { quic: record.keys };
    if (record.level >= LogLevel.ERROR) this.target.error(fields, record.msg ?? '');
    else this.target.warn(fields, record.msg ?? '');
  }

  /** Required by Handler; handle() above forwards records without formatting them. */
  emit(output: string): void {
    this.target.warn(output);
  }
}
