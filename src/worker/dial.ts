/**
 * How the worker reaches its coordinator: QUIC on UDP first, TLS on TCP
 * where UDP does not get through (offices and hotels that drop all UDP but
 * DNS). As happy eyeballs (RFC 8305) races IPv6 and IPv4: QUIC gets a head
 * start, TCP starts when QUIC has not connected by then (or failed sooner),
 * and the first to connect is kept. What worked is remembered per
 * coordinator and network, so a laptop back on the office network starts on
 * TCP at once, and moves back to QUIC when a background try says UDP works
 * again (agent.ts).
 *
 *   const plan = dialPlan('auto', remembered.get(key));   // pure
 *   const conn = await dialRace(plan, (kind) => kind === 'quic' ? connectQuic(…) : connectTls(…));
 */
import { createHash } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { GridError, isGridError } from '../protocol/errors.js';
import type { ControlConnection, TransportKind } from '../transport/frame-channel.js';

export const TRANSPORT_MODES = ['auto', 'quic', 'tcp'] as const;
export type TransportMode = (typeof TRANSPORT_MODES)[number];

export interface DialPlan {
  first: TransportKind;
  /** Raced once `first` has not connected within `headStartMs`, or failed sooner; null: `first` alone. */
  second: TransportKind | null;
  headStartMs: number;
}

/**
 * Which transport goes first. `quic`/`tcp` pin one. `auto` leads with what
 * last worked on this network, QUIC when nothing is known, and keeps the
 * other as the runner-up: a remembered TCP still races QUIC, so a network
 * whose UDP came back is noticed even if TCP then fails.
 */
export function dialPlan(mode: TransportMode, remembered: TransportKind | null, headStartMs: number): DialPlan {
  if (mode !== 'auto') return { first: mode, second: null, headStartMs };
  const first = remembered ?? 'quic';
  return { first, second: first === 'quic' ? 'tcp' : 'quic', headStartMs };
}

/**
 * Runs the plan: the first connection up wins and the other attempt, if it
 * connects later, is closed. Rejects when every attempt failed: with an
 * error that retrying cannot mend if either gave one (a refused
 * certificate), else GG_ERR_COORDINATOR_UNREACHABLE naming both failures.
 */
export function dialRace(plan: DialPlan, dial: (kind: TransportKind) => Promise<ControlConnection>): Promise<ControlConnection> {
  return new Promise((resolve, reject) => {
    const failures: { kind: TransportKind; error: unknown }[] = [];
    let won = false;
    let started = 0;
    let timer: NodeJS.Timeout | undefined;
    const attempt = (kind: TransportKind) => {
      started++;
      dial(kind).then(
        (conn) => {
          if (won) {
            void conn.close().catch(() => undefined);
            return;
          }
          won = true;
          clearTimeout(timer);
          resolve(conn);
        },
        (error: unknown) => {
          failures.push({ kind, error });
          if (won) return;
          if (kind === plan.first && plan.second !== null && started === 1) {
            clearTimeout(timer);
            attempt(plan.second);
            return;
          }
          if (failures.length === started && (plan.second === null || started === 2)) reject(combined(failures));
        },
      );
    };
    attempt(plan.first);
    if (plan.second !== null) {
      const second = plan.second;
      timer = setTimeout(() => {
        if (!won && started === 1) attempt(second);
      }, plan.headStartMs);
    }
  });
}

function combined(failures: { kind: TransportKind; error: unknown }[]): unknown {
  if (failures.length === 1) return failures[0]!.error;
  // A bug, or something a retry cannot mend (a refused certificate), says more than "unreachable".
  const decisive = failures.find((f) => !isGridError(f.error) || !f.error.retryable || f.error.code !== 'GG_ERR_COORDINATOR_UNREACHABLE');
  if (decisive) return decisive.error;
  const words = failures.map((f) => `${f.kind === 'quic' ? 'QUIC' : 'TCP'}: ${(f.error as GridError).message}`).join('; ');
  return new GridError('GG_ERR_COORDINATOR_UNREACHABLE', words, { cause: failures[0]!.error });
}

/**
 * The network this machine is on, as a short hash of its non-loopback
 * addresses: it changes when a laptop moves from office to home, which is
 * when what worked must be learnt again. Addresses only, so no MAC leaves
 * the machine even in the data dir.
 */
export function networkKey(interfaces = networkInterfaces()): string {
  const addresses = Object.values(interfaces)
    .flatMap((list) => list ?? [])
    .filter((a) => !a.internal && !a.address.startsWith('fe80'))
    .map((a) => a.cidr ?? a.address)
    .sort();
  return createHash('sha256').update(addresses.join(',')).digest('hex').slice(0, 16);
}

const FILE = 'transport.json';
/** Enough for the networks one laptop sees; the oldest are forgotten first. */
const MAX_REMEMBERED = 32;
const Remembered = z.record(z.string(), z.object({ transport: z.enum(['quic', 'tcp']), at: z.string() }));

/** What worked last, per coordinator and network, in the data dir (a hint: a lost or broken file only costs a head start). */
export class TransportMemory {
  private entries: z.infer<typeof Remembered> = {};

  private constructor(private readonly dataDir: string) {}

  static async load(dataDir: string): Promise<TransportMemory> {
    const memory = new TransportMemory(dataDir);
    const text = await readFile(join(dataDir, FILE), 'utf8').catch(() => null);
    if (text !== null) {
      try {
        const parsed = Remembered.safeParse(JSON.parse(text));
        if (parsed.success) memory.entries = parsed.data;
      } catch {
        // Not JSON: start afresh.
      }
    }
    return memory;
  }

  get(key: string): TransportKind | null {
    return Object.hasOwn(this.entries, key) ? this.entries[key]!.transport : null;
  }

  /** Records and saves; a failed save is only a lost hint, so it is not an error. */
  async set(key: string, transport: TransportKind): Promise<void> {
    if (this.get(key) === transport) return;
    const kept = Object.entries(this.entries)
      .filter(([k]) => k !== key)
      .sort(([, a], [, b]) => b.at.localeCompare(a.at))
      .slice(0, MAX_REMEMBERED - 1);
    this.entries = Object.fromEntries([[key, { transport, at: new Date().toISOString() }], ...kept]);
    const file = join(this.dataDir, FILE);
    await writeFile(`${file}.tmp`, JSON.stringify(this.entries), { mode: 0o600 })
      .then(() => rename(`${file}.tmp`, file))
      .catch(() => undefined);
  }
}
