/**
 * Test fixtures for a real grid on loopback: a coordinator (real QUIC, HTTPS,
 * PGlite), in-process workers, and the `gogrid` CLI as a child process.
 */
import type { TransportMode } from '../../src/worker/dial.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { pino } from 'pino';
import { parseCoordinatorConfig } from '../../src/coordinator/config.js';
import { startCoordinator, type Coordinator } from '../../src/coordinator/coordinator.js';
import { adminKeyPath } from '../../src/coordinator/local-files.js';
import { requestJson } from '../../src/transport/https-client.js';
import { startWorker, type RunningWorker, type WorkerJobOptions } from '../../src/worker/worker.js';
import type { AgentOptions, AgentProbes } from '../../src/worker/agent.js';
import { CreatedToken, JobInfo, ModelInfo, TERMINAL_JOB_STATES } from '../../src/protocol/api.js';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { within } from './within.js';
import { emptyDatabase } from './pglite-snapshot.js';

/** Quiet unless asked: `GG_TEST_LOG=warn npx vitest run …` shows the coordinator's and workers' logs on stderr. */
export const silent = pino({ level: process.env.GG_TEST_LOG ?? 'silent' }, pino.destination(2));

/** Test timing: a dead worker is noticed in about 1.5 s instead of 90 s. */
export const FAST = { heartbeatIntervalSecs: 0.3, heartbeatTimeoutSecs: 1.5 };

const dirs: string[] = [];
export async function tempDir(prefix = 'gogrid-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}
export async function removeTempDirs(): Promise<void> {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

export interface TestCoordinator extends Coordinator {
  dataDir: string;
  adminKey: string;
  api<T = unknown>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T>;
  createToken(opts?: { ttlSecs?: number; maxUses?: number }): Promise<string>;
  /** Stores a model file through the API; returns its sha256. */
  addModel(file: string): Promise<string>;
  /** The job once final (long-polls); fails after `ms`. */
  finished(jobId: string, ms?: number): Promise<JobInfo>;
}

export async function startTestCoordinator(
  opts: {
    dataDir?: string;
    port?: number;
    maxConnections?: number;
    databaseUrl?: string;
    certValidityDays?: number;
    schedulerPollMs?: number;
    /** A busy worker's heartbeat interval and timeout, other than derived from the heartbeat's. */
    busyHeartbeat?: { intervalSecs: number; timeoutSecs: number };
    /** Heartbeat timing other than FAST, for a test whose own work may stall this process for longer than 1.5 s. */
    heartbeat?: Partial<typeof FAST>;
    /** coordinator.toml text, under the options above. */
    toml?: string;
    httpsFirstRequestMs?: number;
  } = {},
): Promise<TestCoordinator> {
  const dataDir = opts.dataDir ?? (await tempDir());
  const { config } = parseCoordinatorConfig(opts.toml ?? '', 'test', {
    bindAddr: '127.0.0.1',
    port: opts.port ?? 0,
    databaseUrl: opts.databaseUrl ?? 'memory://',
    maxConnections: opts.maxConnections,
    ...FAST,
    ...opts.heartbeat,
  });
  const c = await startCoordinator({
    config,
    dataDir,
    logger: silent,
    tuning: {
      helloTimeoutMs: 2000,
      ...(opts.certValidityDays ? { certValidityDays: opts.certValidityDays } : {}),
      ...(opts.schedulerPollMs ? { schedulerPollMs: opts.schedulerPollMs } : {}),
      ...(opts.httpsFirstRequestMs ? { httpsFirstRequestMs: opts.httpsFirstRequestMs } : {}),
      ...(config.database.url === 'memory://' && { memorySnapshot: emptyDatabase() }),
      ...(opts.busyHeartbeat && { busyHeartbeatIntervalSecs: opts.busyHeartbeat.intervalSecs, busyHeartbeatTimeoutSecs: opts.busyHeartbeat.timeoutSecs }),
    },
  });
  const adminKey = (await readFile(adminKeyPath(dataDir), 'utf8')).trim();
  const api = <T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown) =>
    requestJson({ url: `${c.apiUrl}${path}`, method, body, ca: c.ca.material.certPem, headers: { authorization: `Bearer ${adminKey}` }, timeoutMs: 60_000 }) as Promise<T>;
  return Object.assign(c, {
    dataDir,
    adminKey,
    api,
    async createToken(t: { ttlSecs?: number; maxUses?: number } = {}) {
      return CreatedToken.parse(await api('POST', '/v1/tokens', { ttlSecs: t.ttlSecs ?? 600, maxUses: t.maxUses ?? 1 })).token;
    },
    async addModel(file: string) {
      const size = (await stat(file)).size;
      const info = await requestJson({
        url: `${c.apiUrl}/v1/models?name=${encodeURIComponent(basename(file))}`,
        method: 'POST',
        body: createReadStream(file),
        bodyLength: size,
        ca: c.ca.material.certPem,
        headers: { authorization: `Bearer ${adminKey}` },
      });
      return ModelInfo.parse(info).sha256;
    },
    finished: (jobId: string, ms?: number) => untilFinished((path) => api('GET', path), jobId, ms),
  });
}

/** Long-polls a job through `get` until it is final; fails after `ms`, saying where the job was left. */
export async function untilFinished(get: (path: string) => Promise<unknown>, jobId: string, ms = 25_000): Promise<JobInfo> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = Math.ceil((deadline - Date.now()) / 1000);
    const job = JobInfo.parse(await get(`/v1/jobs/${jobId}?wait=${Math.min(20, Math.max(0, left))}`));
    if (TERMINAL_JOB_STATES.includes(job.state)) return job;
    if (left <= 0) throw new Error(`job ${jobId} not finished within ${ms} ms: ${job.state}${job.waitingReason ? ` (${job.waitingReason})` : ''}`);
  }
}

export async function startTestWorker(
  c: { port: number },
  opts: {
    dataDir?: string;
    token?: string;
    name?: string;
    probes?: AgentProbes;
    /** What the worker tells the coordinator of itself (paused, its GPU off), as a host's policy would. @default idle */
    status?: AgentOptions['status'];
    jobs?: WorkerJobOptions;
    /** The QUIC idle timeout, 1.5 s unless a test's own work may stall this process for longer. */
    maxIdleTimeoutMs?: number;
    /** HOST:PORT it enrolls with and dials. @default 127.0.0.1:<c.port> */
    coordinatorAddress?: string;
    /** How it connects (worker/dial.ts); `auto` with a short QUIC head start. @default quic */
    transport?: TransportMode;
    quicRetryMs?: number;
  } = {},
): Promise<RunningWorker & { dataDir: string }> {
  const dataDir = opts.dataDir ?? (await tempDir('gogrid-worker-'));
  const w = await startWorker({
    dataDir,
    coordinator: opts.coordinatorAddress ?? `127.0.0.1:${c.port}`,
    token: opts.token,
    name: opts.name,
    appVersion: '0.0.0-test',
    logger: silent,
    agent: {
      maxIdleTimeoutMs: opts.maxIdleTimeoutMs ?? 1500,
      backoff: { baseMs: 50, capMs: 300 },
      transport: opts.transport ?? 'quic',
      quicHeadStartMs: 300,
      ...(opts.quicRetryMs !== undefined && { quicRetryMs: opts.quicRetryMs }),
      ...(opts.probes ? { probes: opts.probes } : {}),
      ...(opts.status ? { status: opts.status } : {}),
    },
    // One runtime thread per job: the test machine has two cores for everything.
    jobs: { threads: 1, ...opts.jobs },
  });
  return Object.assign(w, { dataDir });
}

/** Resolves when the coordinator emits `event` for `workerId`; fails `ms` after the call. */
export function sessionEvent(c: Coordinator, event: 'online' | 'offline', workerId: string, ms = 10_000): Promise<void> {
  const seen = new Promise<void>((resolve) => {
    const on = (id: string) => {
      if (id !== workerId) return;
      c.parts.sessions.off(event, on);
      resolve();
    };
    c.parts.sessions.on(event, on);
  });
  return within(ms, `worker ${workerId} ${event}`, seen);
}

// ---------------------------------------------------------------- the CLI as a child process

/** The built CLI, as `npx gogrid` runs it (dist/ is current: test/helpers/build-dist.ts). */
const CLI = [join(import.meta.dirname, '../../bin/gogrid.js')];

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Resolves when stderr or stdout has printed a line matching `re`; fails after `ms`. */
  waitFor(re: RegExp, ms?: number): Promise<void>;
}

/**
 * `pipeInto`: a shell command the CLI's stdout is piped into (a real pipe, as people use one); the exit code is still the CLI's.
 * `via`: a command that execs the CLI (e.g. `nsenter … --`), so the child is the CLI itself.
 * `tty`: on a pseudo-terminal (util-linux `script`, Linux only), as a person at a terminal runs it; stdout and stderr then both arrive as stdout.
 */
export function runCli(args: string[], env: Record<string, string> = {}, opts: { pipeInto?: string; via?: readonly string[]; tty?: boolean } = {}): CliProcess {
  const argv = [...(opts.via ?? []), process.execPath, ...CLI, ...args];
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const [file, fileArgs] = opts.tty
    ? ['script', ['--quiet', '--flush', '--return', '--command', argv.map(quote).join(' '), '/dev/null']]
    : opts.pipeInto === undefined
      ? [argv[0]!, argv.slice(1)]
      : ['bash', ['-c', `set -o pipefail; ${argv.map(quote).join(' ')} | ${opts.pipeInto}`]];
  const child = spawn(file, fileArgs, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.re.test(out) || w.re.test(err)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    check();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    check();
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (re, ms = 20_000) =>
      within(
        ms,
        () => `the CLI printing ${re}\nstderr: ${err}\nstdout: ${out}`,
        new Promise<void>((resolve, reject) => {
          waiters.push({ re, resolve });
          check();
          void exited.then((code) => reject(new Error(`CLI exited (${code}) before printing ${re}\nstderr: ${err}\nstdout: ${out}`)));
        }),
      ),
  };
}
