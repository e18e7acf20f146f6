/**
 * `coordinator.toml`, in the format of the deployed seed, read strictly: an unknown
 * table or key, a value of the wrong type or out of range is an error that names
 * the file and the key, and every problem is reported at once.
 *
 *   const { config, notices } = await loadCoordinatorConfig('/opt/gogrid/config/coordinator.toml', { port: 9443 });
 *   for (const n of notices) log.warn(n);
 *
 * Where each setting comes from, first found wins (decided here and nowhere else):
 *   1. the command line (`ConfigOverrides`, from `gogrid coordinator` flags);
 *   2. coordinator.toml;
 *   3. DEFAULT_CONFIG.
 * What is not in the file (timeouts of the protocol's inner steps, the
 * scheduler's poll) is CoordinatorTuning: DEFAULT_TUNING unless tests or
 * benchmarks shorten it. `runtimeSettings` turns both into what the parts run with.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import { GridError, zodProblems } from '../protocol/index.js';
import { DATABASE_URL_FORMS, parseDatabaseUrl } from './store/url.js';
import type { SessionTiming } from './sessions.js';
import type { ConnectionLimits } from './ip-limits.js';

export interface CoordinatorConfig {
  server: {
    bindAddr: string;
    port: number;
    /** Host names and addresses clients reach the coordinator by, beyond the machine's own: SANs of its serving certificate. */
    publicNames: string[];
    maxConnections: number;
    heartbeatIntervalSecs: number;
    heartbeatTimeoutSecs: number;
    /** HTTPS connections one client address may hold at once (an IPv6 client: its /64). */
    maxHttpsConnectionsPerIp: number;
    /** New connections one client address may open per second, QUIC handshakes and HTTPS connections each; twice that at once. */
    connectionsPerIpPerSec: number;
    /**
     * A certificate of the operator's (a public CA's, e.g. Let's Encrypt) that
     * the HTTPS API shows to clients, so curl and the openai client trust it
     * without the grid's CA; workers still get the grid's (api-cert.ts). Null: the grid's for all.
     */
    apiCert: { certFile: string; keyFile: string } | null;
  };
  /** url null: embedded PGlite in the coordinator's data dir (`<data>/db`). */
  database: { url: string | null; maxConnections: number };
  /** Accepted for compatibility with the seed's file; this coordinator does not use Redis. */
  redis: { url: string | null };
  /**
   * keepText: keep the prompts and answers of OpenAI API requests in the
   * database after the answer was sent. Off, only their token counts,
   * timings and history stay: a team's prompts are not the grid's to keep.
   */
  llm: { keepText: boolean };
}

export const DEFAULT_CONFIG: CoordinatorConfig = {
  server: {
    bindAddr: '0.0.0.0',
    port: 8443,
    publicNames: [],
    maxConnections: 10_000,
    heartbeatIntervalSecs: 30,
    heartbeatTimeoutSecs: 90,
    // A worker holds no HTTPS connection between downloads, so these bound an
    // office behind one NAT address only by its clients of the API.
    maxHttpsConnectionsPerIp: 256,
    // The seed's "100 connections/s per IP".
    connectionsPerIpPerSec: 100,
    apiCert: null,
  },
  // Embedded PGlite in the data dir: nothing to set up, and a restart keeps
  // enrolled workers and tokens (memory:// is there for throwaway runs).
  database: { url: null, maxConnections: 10 },
  redis: { url: null },
  llm: { keepText: false },
};

/** What the coordinator runs with that coordinator.toml does not set: fixed in a deployment, shortened by tests and benchmarks. */
export interface CoordinatorTuning {
  /** How long a new connection may take to open its stream and say hello. */
  helloTimeoutMs: number;
  /** Lifetime of client certificates issued at enrollment and renewal. */
  certValidityDays: number;
  /** How often the queue is looked at without an event (in case a notification from another instance was lost). */
  schedulerPollMs: number;
  /** Queued jobs a full scheduling pass considers. */
  schedulerBatch: number;
  /** Busy heartbeats (busyHeartbeats() below says why); absent, derived from the file's heartbeat figures. */
  busyHeartbeatIntervalSecs?: number;
  busyHeartbeatTimeoutSecs?: number;
  /** How long an HTTPS connection may take for its TLS handshake, and then for its first request. */
  httpsFirstRequestMs: number;
  /** For a `memory://` database: the snapshot of an empty one to start from (OpenDbOptions.memorySnapshot). */
  memorySnapshot?: Blob;
}

export const DEFAULT_TUNING: CoordinatorTuning = {
  helloTimeoutMs: 10_000,
  certValidityDays: 30,
  schedulerPollMs: 1000,
  schedulerBatch: 500,
  httpsFirstRequestMs: 10_000,
};

/** What the coordinator's parts run with, from the resolved file and the tuning. */
export interface RuntimeSettings {
  sessions: SessionTiming;
  dispatch: {
    /** How long a lease lasts without a heartbeat renewing it. */
    leaseTtlMs: number;
    pollMs: number;
    batch: number;
  };
  https: ConnectionLimits;
  /** New QUIC handshakes one address may start per second (twice that at once). */
  quicPerIpPerSec: number;
}

export function runtimeSettings(config: CoordinatorConfig, tuning: Partial<CoordinatorTuning> = {}): RuntimeSettings {
  const t = { ...DEFAULT_TUNING, ...tuning };
  return {
    sessions: {
      heartbeatIntervalSecs: config.server.heartbeatIntervalSecs,
      heartbeatTimeoutSecs: config.server.heartbeatTimeoutSecs,
      ...busyHeartbeats(config.server.heartbeatIntervalSecs, config.server.heartbeatTimeoutSecs),
      ...(t.busyHeartbeatIntervalSecs !== undefined && { busyHeartbeatIntervalSecs: t.busyHeartbeatIntervalSecs }),
      ...(t.busyHeartbeatTimeoutSecs !== undefined && { busyHeartbeatTimeoutSecs: t.busyHeartbeatTimeoutSecs }),
      helloTimeoutMs: t.helloTimeoutMs,
      certValidityDays: t.certValidityDays,
    },
    dispatch: {
      // A lease outlives a missed heartbeat or two; a worker that really went
      // away is caught sooner, by its session ending.
      leaseTtlMs: 2 * config.server.heartbeatTimeoutSecs * 1000,
      pollMs: t.schedulerPollMs,
      batch: t.schedulerBatch,
    },
    https: {
      perIp: config.server.maxHttpsConnectionsPerIp,
      perIpPerSec: config.server.connectionsPerIpPerSec,
      firstRequestMs: t.httpsFirstRequestMs,
    },
    quicPerIpPerSec: config.server.connectionsPerIpPerSec,
  };
}

/**
 * How often a worker heartbeats while it runs jobs, and how long the
 * coordinator waits for one before it takes the worker for lost: never
 * longer than the idle figures. A killed worker's jobs (a stream a client is
 * reading) then go on elsewhere in ~10 s rather than at the 90 s heartbeat
 * timeout, for one heartbeat frame per busy worker every 3 s, which renews
 * nothing in the store (leases are renewed in batches: dispatcher.ts). Ten
 * seconds is three missed beats: a busy worker's event loop does not stall
 * that long unless the machine is in real trouble, and if it does, its jobs
 * only move (lease fencing refuses the old attempt's result).
 */
function busyHeartbeats(intervalSecs: number, timeoutSecs: number): Pick<SessionTiming, 'busyHeartbeatIntervalSecs' | 'busyHeartbeatTimeoutSecs'> {
  return { busyHeartbeatIntervalSecs: Math.min(3, intervalSecs), busyHeartbeatTimeoutSecs: Math.min(10, timeoutSecs) };
}

/** Command-line options; each one replaces the file's value. */
export interface ConfigOverrides {
  bindAddr?: string;
  /** 0 (only here, not in the file) picks a free port: local test mode. */
  port?: number;
  databaseUrl?: string;
  /** `[server] max_connections`. */
  maxConnections?: number;
  heartbeatIntervalSecs?: number;
  heartbeatTimeoutSecs?: number;
}

const OVERRIDE_KEYS = {
  bindAddr: ['server', 'bind_addr'],
  port: ['server', 'port'],
  databaseUrl: ['database', 'url'],
  maxConnections: ['server', 'max_connections'],
  heartbeatIntervalSecs: ['server', 'heartbeat_interval_secs'],
  heartbeatTimeoutSecs: ['server', 'heartbeat_timeout_secs'],
} as const satisfies Record<keyof ConfigOverrides, readonly [string, string]>;

function kindOf(v: unknown): string {
  // TOML's inf and nan are numbers to JavaScript; zod refuses them as a wrong type.
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date) return 'a date';
  if (v !== null && typeof v === 'object') return 'a table';
  return `a ${typeof v}`;
}

const number = (expected: string) => z.number({ error: (iss) => `must be ${expected}, not ${kindOf(iss.input)}` });
const positiveInt = number('a whole number greater than 0').int('must be a whole number').positive('must be greater than 0');
const seconds = number('a number of seconds').positive('must be greater than 0');
const string = (expected: string) => z.string({ error: (iss) => `must be ${expected}, not ${kindOf(iss.input)}` });
const table = <T extends z.ZodRawShape>(shape: T) =>
  z.strictObject(shape, { error: (iss) => (iss.code === 'invalid_type' ? `must be a table, not ${kindOf(iss.input)}` : undefined) });

/** Absolute: the coordinator runs as a service whose working directory is nobody's guess. */
const absolutePath = string('a file path')
  .refine((p) => isAbsolute(p), 'must be an absolute path')
  .refine((p) => !p.includes('\0'), 'must not contain a NUL');
/** A DNS name: labels of letters, digits and inner hyphens, 253 characters at most. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** Port 0 (a free port) is only for the command line: a deployed file must name its port. */
const fileSchema = (portZeroAllowed: boolean) => {
  const portRange = portZeroAllowed ? 'from 0 to 65535' : 'from 1 to 65535';
  return table({
    server: table({
      bind_addr: string('an IP address').refine((s) => isIP(s) !== 0, 'must be an IP address such as 0.0.0.0 or ::').optional(),
      port: number('a port number')
        .int('must be a whole number')
        .min(portZeroAllowed ? 0 : 1, `must be ${portRange}`)
        .max(65535, `must be ${portRange}`)
        .optional(),
      max_connections: positiveInt.max(1_000_000, 'must be at most 1000000').optional(),
      // Bounded: a heartbeat every millisecond is a flood, and a timeout past Node's longest timer
      // (about 24.8 days) made the lease timer fire every millisecond instead.
      heartbeat_interval_secs: seconds.min(0.1, 'must be at least 0.1').max(3600, 'must be at most 3600 (an hour)').optional(),
      heartbeat_timeout_secs: seconds.max(86_400, 'must be at most 86400 (a day)').optional(),
      public_names: z
        .array(string('a host name or an IP address').refine((n) => isIP(n) !== 0 || HOST_NAME.test(n), 'must be a host name (grid.example.com) or an IP address'), {
          error: (iss) => `must be a list of names, not ${kindOf(iss.input)}`,
        })
        .max(100, 'must name at most 100')
        .optional(),
      max_https_connections_per_ip: positiveInt.max(1_000_000, 'must be at most 1000000').optional(),
      connections_per_ip_per_sec: positiveInt.max(1_000_000, 'must be at most 1000000').optional(),
      api_cert_file: absolutePath.optional(),
      api_key_file: absolutePath.optional(),
    })
      .superRefine((s, ctx) => {
        // Named at the key that was given, so the message points at the line to complete.
        if (s.api_cert_file !== undefined && s.api_key_file === undefined) {
          ctx.addIssue({ code: 'custom', path: ['api_cert_file'], message: 'needs api_key_file too: the private key of that certificate (PEM)' });
        }
        if (s.api_key_file !== undefined && s.api_cert_file === undefined) {
          ctx.addIssue({ code: 'custom', path: ['api_key_file'], message: 'needs api_cert_file too: the certificate chain for that key (PEM)' });
        }
      })
      .optional(),
    database: table({
      url: string('a URL').refine((u) => parseDatabaseUrl(u) !== null, `must be ${DATABASE_URL_FORMS}`).optional(),
      max_connections: positiveInt.max(1000, 'must be at most 1000').optional(),
    }).optional(),
    redis: table({ url: string('a URL').min(1, 'must not be empty').optional() }).optional(),
    llm: table({ keep_text: z.boolean({ error: (iss) => `must be true or false, not ${kindOf(iss.input)}` }).optional() }).optional(),
  });
};
type FileConfig = z.output<ReturnType<typeof fileSchema>>;

/** Parses and checks `text`; `file` names it in messages. Throws GridError GG_ERR_CONFIG_INVALID. */
export function parseCoordinatorConfig(
  text: string,
  file: string,
  overrides: ConfigOverrides = {},
): { config: CoordinatorConfig; notices: string[] } {
  let raw: Record<string, unknown>;
  try {
    raw = parseToml(text);
  } catch (e) {
    if (!(e instanceof TomlError)) throw e;
    // smol-toml's message is "Invalid TOML document: <reason>\n\n<code excerpt>".
    const reason = (e.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new GridError('GG_ERR_CONFIG_INVALID', `${file}:${e.line}:${e.column}: invalid TOML: ${reason}`, { cause: e });
  }

  const fromCommandLine = applyOverrides(raw, overrides);
  const where = (key: string) => (fromCommandLine.has(key) ? 'command line' : file);
  const problems: string[] = [];

  const parsed = fileSchema(overrides.port !== undefined).safeParse(raw);
  if (!parsed.success) problems.push(...zodProblems(parsed.error).map((p) => `${where(p.path)}: ${p.path}: ${p.message}`));
  const order = heartbeatOrderProblem(raw);
  if (order !== null) problems.push(`${where('server.heartbeat_timeout_secs')}: server.heartbeat_timeout_secs: ${order}`);
  if (!parsed.success || problems.length > 0) throw new GridError('GG_ERR_CONFIG_INVALID', problems.join('\n'));
  const config = withDefaults(parsed.data);

  const notices: string[] = [];
  if (config.redis.url !== null) {
    notices.push(`${file}: redis.url is set, but this coordinator does not use Redis (worker state lives in the database); ignoring it`);
  }
  return { config, notices };
}

/** Reads `file` (undefined: no file, defaults) and parses it with `parseCoordinatorConfig`. */
export async function loadCoordinatorConfig(
  file: string | undefined,
  overrides: ConfigOverrides = {},
): Promise<{ config: CoordinatorConfig; notices: string[] }> {
  if (file === undefined) return parseCoordinatorConfig('', 'defaults', overrides);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new GridError('GG_ERR_CONFIG_INVALID', `${file}: cannot read: ${reason}`, { cause: e });
  }
  return parseCoordinatorConfig(text, file, overrides);
}

/** Writes each given override into the raw TOML tables; returns the dotted keys it set. */
function applyOverrides(raw: Record<string, unknown>, overrides: ConfigOverrides): Set<string> {
  const set = new Set<string>();
  for (const [name, [tableName, key]] of Object.entries(OVERRIDE_KEYS)) {
    const value = overrides[name as keyof ConfigOverrides];
    if (value === undefined) continue;
    const existing = raw[tableName];
    // A non-table here is already an error the schema reports; leave it for that.
    if (existing !== undefined && (existing === null || typeof existing !== 'object' || Array.isArray(existing))) continue;
    raw[tableName] = { ...(existing ?? {}), [key]: value };
    set.add(`${tableName}.${key}`);
  }
  return set;
}

/**
 * The timeout must exceed the interval, or a worker that heartbeats on time is
 * dropped. Checked on the raw values, apart from the schema, so it is reported
 * next to other problems (zod skips a table's refinements once a key in it fails).
 */
function heartbeatOrderProblem(raw: Record<string, unknown>): string | null {
  const server = raw['server'];
  if (server === null || typeof server !== 'object' || Array.isArray(server)) return null;
  const values = server as Record<string, unknown>;
  const interval = seconds.optional().safeParse(values['heartbeat_interval_secs']);
  const timeout = seconds.optional().safeParse(values['heartbeat_timeout_secs']);
  if (!interval.success || !timeout.success) return null;
  const i = interval.data ?? DEFAULT_CONFIG.server.heartbeatIntervalSecs;
  const t = timeout.data ?? DEFAULT_CONFIG.server.heartbeatTimeoutSecs;
  if (t > i) return null;
  return `must be greater than heartbeat_interval_secs (${i})` + (timeout.data === undefined ? ` (it defaults to ${t})` : '');
}

function withDefaults(f: FileConfig): CoordinatorConfig {
  const d = DEFAULT_CONFIG;
  return {
    server: {
      bindAddr: f.server?.bind_addr ?? d.server.bindAddr,
      port: f.server?.port ?? d.server.port,
      publicNames: f.server?.public_names ?? d.server.publicNames,
      maxConnections: f.server?.max_connections ?? d.server.maxConnections,
      heartbeatIntervalSecs: f.server?.heartbeat_interval_secs ?? d.server.heartbeatIntervalSecs,
      heartbeatTimeoutSecs: f.server?.heartbeat_timeout_secs ?? d.server.heartbeatTimeoutSecs,
      maxHttpsConnectionsPerIp: f.server?.max_https_connections_per_ip ?? d.server.maxHttpsConnectionsPerIp,
      connectionsPerIpPerSec: f.server?.connections_per_ip_per_sec ?? d.server.connectionsPerIpPerSec,
      apiCert: f.server?.api_cert_file && f.server.api_key_file ? { certFile: f.server.api_cert_file, keyFile: f.server.api_key_file } : d.server.apiCert,
    },
    database: {
      url: f.database?.url ?? d.database.url,
      maxConnections: f.database?.max_connections ?? d.database.maxConnections,
    },
    redis: { url: f.redis?.url ?? d.redis.url },
    llm: { keepText: f.llm?.keep_text ?? d.llm.keepText },
  };
}
