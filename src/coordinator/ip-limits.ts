/**
 * What one client address may cost the coordinator's HTTPS side: how many
 * connections it holds, how fast it opens new ones (each a TLS handshake),
 * how long a connection may sit without a request, and how many wrong
 * secrets (enrollment tokens, API keys) it may try.
 *
 *   guardConnections(app.server, { perIp: 256, perIpPerSec: 100, firstRequestMs: 10_000 }, log);
 *   const guesses = new Throttle({ burst: 20, perSecond: 1 / 3 });
 *   guesses.check(ipKey(req.ip), 'too many wrong secrets'); // throws GG_ERR_RATE_LIMITED when spent
 *   guesses.spend(ipKey(req.ip));                           // after a failure
 *
 * Counted per instance: several coordinators on one database each allow this
 * much, which still turns a flood into a trickle. An IPv6 client is counted
 * by its /64, the block one subscriber gets, so that a new address per
 * attempt does not make a new budget.
 */
import type { Server } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { ALPN, GridError } from '../protocol/index.js';
import type { RefusalReason } from './metrics.js';

/** The key a client address is counted under: an IPv4 address itself (also IPv4-mapped IPv6), an IPv6 address's /64. */
export function ipKey(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!isIPv6(address)) return address;
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('%')[0]!.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - left.length - right.length;
  return [...left, ...Array<string>(Math.max(0, missing)).fill('0'), ...right].map((h) => h.toLowerCase().replace(/^0+(?=.)/, ''));
}

/**
 * Token buckets by key: up to `burst` at once, refilled at `perSecond`.
 * Hand-written: rate-limit packages count requests per route; these count
 * failures and connections, outside any route. A key whose bucket is full
 * again is dropped, so the map holds only clients that spent something
 * lately; past `maxKeys` the oldest goes first, so a flood of addresses
 * costs bounded memory.
 */
export class Throttle {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly opts: { burst: number; perSecond: number; maxKeys?: number },
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Throws GG_ERR_RATE_LIMITED (`message`, and when to try again) unless `key` has a token left; spends nothing. */
  check(key: string, message: string): void {
    const tokens = this.tokens(key);
    if (tokens >= 1) return;
    // Whole seconds (Retry-After's unit), rounded up, past float noise: 0.999…/⅓ is 3, not 4.
    const retryAfterSecs = Math.max(1, Math.ceil((1 - tokens) / this.opts.perSecond - 1e-6));
    throw new GridError('GG_ERR_RATE_LIMITED', `${message}; try again in ${retryAfterSecs} s`, { retryAfterSecs });
  }

  /** Spends one of `key`'s tokens; false (nothing spent) when none is left. */
  spend(key: string): boolean {
    const tokens = this.tokens(key);
    if (tokens < 1) return false;
    this.buckets.delete(key);
    this.buckets.set(key, { tokens: tokens - 1, at: this.now() });
    const max = this.opts.maxKeys ?? 100_000;
    if (this.buckets.size > max) this.buckets.delete(this.buckets.keys().next().value!);
    return true;
  }

  private tokens(key: string): number {
    const b = this.buckets.get(key);
    if (!b) return this.opts.burst;
    const tokens = Math.min(this.opts.burst, b.tokens + ((this.now() - b.at) / 1000) * this.opts.perSecond);
    if (tokens >= this.opts.burst) this.buckets.delete(key);
    return tokens;
  }
}

export interface ConnectionLimits {
  /** Connections one address may hold at once. */
  perIp: number;
  /** New connections one address may open per second (burst: twice that). */
  perIpPerSec: number;
  /** A connection that has sent no request this long after it opened is closed. */
  firstRequestMs: number;
}

/**
 * Applies `limits` to an HTTPS server. A connection over them is closed before
 * its TLS handshake: the cheapest answer, and all a client that floods gets.
 * Refusals are logged once per address per minute, so a flood does not flood
 * the log too.
 *
 * A worker's control connection over TCP (ALPN `gogrid/1`, a certificate from
 * the grid CA) stops counting towards `perIp` once its handshake is done: it
 * is held for days, an office's workers share one NAT address, and QUIC
 * sessions are not counted per address either (`max_connections` bounds
 * both). It still paid the per-address rate to get there, and it sends no
 * HTTP request, so the first-request timeout is not for it.
 */
export function guardConnections(server: Server, limits: ConnectionLimits, logger: Logger, refused: (reason: RefusalReason) => void = () => {}): void {
  const open = new Map<string, number>();
  const opening = new Throttle({ burst: 2 * limits.perIpPerSec, perSecond: limits.perIpPerSec });
  const told = new Throttle({ burst: 1, perSecond: 1 / 60 });
  // By "address port", which the TLS socket shares with the TCP socket it wraps.
  const counted = new Map<string, { key: string; released: boolean }>();
  const release = (key: string) => {
    const n = (open.get(key) ?? 1) - 1;
    if (n === 0) open.delete(key);
    else open.set(key, n);
  };
  server.on('connection', (socket: Socket) => {
    const key = ipKey(socket.remoteAddress);
    const held = open.get(key) ?? 0;
    const [refusal, reason]: [string | null, RefusalReason] =
      held >= limits.perIp
        ? [`it holds ${held} connections (at most ${limits.perIp})`, 'https_per_ip_connections']
        : !opening.spend(key)
          ? [`it opens more than ${limits.perIpPerSec} connections a second`, 'https_per_ip_rate']
          : [null, 'https_per_ip_rate'];
    if (refusal !== null) {
      refused(reason);
      if (told.spend(key)) logger.warn({ remote: key }, `HTTPS connections refused: ${refusal} (logged once a minute per address)`);
      socket.destroy();
      return;
    }
    open.set(key, held + 1);
    const id = `${socket.remoteAddress} ${socket.remotePort}`;
    const entry = { key, released: false };
    counted.set(id, entry);
    socket.once('close', () => {
      counted.delete(id);
      if (!entry.released) release(key);
    });
  });
  // Node closes a connection whose handshake stalls (handshakeTimeout) and a
  // request whose headers stall (headersTimeout), but holds one that finished
  // its handshake and never sends a request for as long as the client likes.
  const waiting = new WeakMap<TLSSocket, NodeJS.Timeout>();
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol === ALPN) {
      const entry = counted.get(`${socket.remoteAddress} ${socket.remotePort}`);
      if (socket.authorized && entry && !entry.released) {
        entry.released = true;
        release(entry.key);
      }
      return;
    }
    const timer = setTimeout(() => {
      refused('https_first_request_timeout');
      socket.destroy();
    }, limits.firstRequestMs);
    timer.unref();
    waiting.set(socket, timer);
    socket.once('close', () => clearTimeout(timer));
  });
  server.on('request', (req: { socket: TLSSocket }) => {
    const timer = waiting.get(req.socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    waiting.delete(req.socket);
  });
}
