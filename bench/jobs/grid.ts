/**
 * The processes of the jobs suite: the `gogrid coordinator` from a built
 * dist/ in a child process, its admin API over keep-alive HTTPS, the worker
 * simulators (sim-worker.ts) and `gogrid worker` processes. Everything
 * started goes into one `Grid` (its Procs), which kills it and deletes its
 * temp dirs when the run ends or fails (bench/lib/procfs.ts reads their CPU
 * and memory).
 *
 *   const grid = new Grid((await ensureBuilt()).distDir);
 *   try {
 *     const c = await grid.coordinator({ heartbeatSecs: 30 });
 *     const sim = grid.sim('sim 1');
 *     await sim.call({ type: 'start', distDir: grid.distDir, coordinator: `127.0.0.1:${c.port}`, token, dirs, slots: 1, concurrency: 8 }, Started);
 *     const job = await c.api.call('POST', '/v1/jobs', JobInfo, body);
 *   } finally {
 *     await grid.close();
 *   }
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { z } from 'zod';
import { ApiErrorBody, COORDINATOR_SERVER_NAME, CreatedToken, ModelInfo } from '../../src/protocol/index.js';
import { adminKeyPath, caCertPath, readApiInfo } from '../../src/coordinator/local-files.js';
import { startCoordinator, type CoordinatorChild } from '../lib/coordinator.js';
import { ROOT } from '../lib/machine.js';
import { Procs } from '../lib/procs.js';
import type { RpcChild } from '../lib/rpc.js';
import type { SimCommand } from './commands.js';

const execFileP = promisify(execFile);

// ---------------------------------------------------------------- the build under test

export interface Build {
  distDir: string;
  /** How dist/ came to be current: it already was, or this run built it. */
  how: 'up to date' | 'built now' | 'given';
}

/**
 * dist/ of this checkout, rebuilt when any file under src/ is newer than it,
 * so the measured processes run plain JavaScript (no tsx transpiling on load)
 * of the code as it is now. `given` (a --dist DIR) is used as is: an A/B run.
 */
export async function ensureBuilt(given?: string): Promise<Build> {
  if (given) return { distDir: given, how: 'given' };
  const distDir = join(ROOT, 'dist');
  const entry = join(distDir, 'cli/main.js');
  let builtAt = 0;
  try {
    builtAt = statSync(entry).mtimeMs;
  } catch {
    // not built yet
  }
  if (builtAt > 0 && newestMtime(join(ROOT, 'src')) <= builtAt) return { distDir, how: 'up to date' };
  await execFileP(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT }).catch(
    (e: { stdout?: string }) => {
      // tsc emits despite type errors; only a missing entry point is fatal.
      if (!statSync(entry, { throwIfNoEntry: false })) throw new Error(`npm run build failed:\n${e.stdout ?? String(e)}`);
    },
  );
  return { distDir, how: 'built now' };
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

// ---------------------------------------------------------------- the admin API

/** Admin calls over one keep-alive agent, as a busy API client would make them (the CLI's client opens a connection per call). */
export class ApiClient {
  private readonly agent: https.Agent;

  constructor(
    readonly apiUrl: string,
    private readonly apiKey: string,
    readonly caPem: string,
    maxSockets = 16,
  ) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets, ca: caPem, servername: COORDINATOR_SERVER_NAME });
  }

  static async ofDataDir(dataDir: string): Promise<ApiClient> {
    const info = await readApiInfo(dataDir);
    if (!info) throw new Error(`no api.json in ${dataDir}`);
    const key = (await readFile(adminKeyPath(dataDir), 'utf8')).trim();
    return new ApiClient(info.apiUrl, key, await readFile(caCertPath(dataDir), 'utf8'));
  }

  async call<T extends z.ZodType>(method: 'GET' | 'POST', path: string, schema: T, body?: unknown): Promise<z.infer<T>> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {};
    return schema.parse(await this.send(method, path, headers, payload));
  }

  async createToken(uses: number): Promise<string> {
    return (await this.call('POST', '/v1/tokens', CreatedToken, { ttlSecs: 3600, maxUses: uses })).token;
  }

  /** Stores a model file; returns its sha256. */
  async addModel(file: string, name: string): Promise<string> {
    const size = (await stat(file)).size;
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(size) };
    return ModelInfo.parse(await this.send('POST', `/v1/models?name=${encodeURIComponent(name)}`, headers, createReadStream(file))).sha256;
  }

  close(): void {
    this.agent.destroy();
  }

  private send(method: string, path: string, headers: Record<string, string>, body?: Buffer | Readable): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const url = new URL(path, this.apiUrl);
      const req = https.request(
        { method, host: url.hostname, port: url.port, path: url.pathname + url.search, agent: this.agent, timeout: 60_000, headers: { accept: 'application/json', authorization: `Bearer ${this.apiKey}`, ...headers } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              reject(new Error(`${method} ${path}: HTTP ${res.statusCode}, not JSON: ${text.slice(0, 200)}`));
              return;
            }
            if ((res.statusCode ?? 500) < 300) resolve(parsed);
            else reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${ApiErrorBody.safeParse(parsed).data?.error.message ?? text.slice(0, 200)}`));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 60 s`)));
      req.on('error', (e) => reject(new Error(`${method} ${path}: ${e.message}`, { cause: e })));
      if (body === undefined || Buffer.isBuffer(body)) req.end(body);
      else body.pipe(req);
    });
  }
}

// ---------------------------------------------------------------- processes

export interface CoordinatorProc extends CoordinatorChild {
  api: ApiClient;
}

export interface CoordinatorOptions {
  heartbeatSecs?: number;
  /** Node flags before the entry point (a profiler preload). */
  execArgv?: string[];
  env?: Record<string, string>;
}

export class Grid {
  readonly procs = new Procs();
  private readonly clients: ApiClient[] = [];

  /** Schemas made for coordinators on PostgreSQL, dropped by close(). */
  private readonly schemas: string[] = [];

  /**
   * `coordinatorFlags`: Node flags for every coordinator (an A/B run, e.g. --stack-trace-limit=0).
   * `postgresUrl`: coordinators store on this PostgreSQL, each in a fresh schema, instead of in-memory PGlite.
   */
  constructor(
    readonly distDir: string,
    private readonly coordinatorFlags: readonly string[] = [],
    readonly postgresUrl?: string,
  ) {}

  tempDir(prefix: string): Promise<string> {
    return this.procs.tempDir(`jobs-${prefix}`);
  }

  /** `gogrid coordinator` from dist/, in-memory store (or a fresh PostgreSQL schema), on a free port, JSON logs at warn. */
  async coordinator(opts: CoordinatorOptions = {}): Promise<CoordinatorProc> {
    const dataDir = await this.tempDir('coordinator');
    const c = await startCoordinator(this.procs, {
      label: `on ${dataDir}`,
      node: [...this.coordinatorFlags, ...(opts.execArgv ?? []), join(this.distDir, 'cli/main.js')],
      dataDir,
      database: this.postgresUrl === undefined ? 'memory://' : await this.freshSchema(this.postgresUrl),
      heartbeat: opts.heartbeatSecs === undefined ? undefined : { intervalSecs: opts.heartbeatSecs, timeoutSecs: Math.max(3 * opts.heartbeatSecs, 3) },
      logLevel: 'warn',
      env: opts.env,
    });
    const api = await ApiClient.ofDataDir(dataDir);
    this.clients.push(api);
    return {
      ...c,
      api,
      stop: () => {
        api.close();
        return c.stop();
      },
    };
  }

  /** A worker simulator process (sim-worker.ts), answering commands over bench/lib/rpc.ts. */
  sim(label: string): RpcChild<SimCommand> {
    return this.procs.fork<SimCommand>(join(import.meta.dirname, 'sim-worker.ts'), label);
  }

  /** `gogrid worker` from dist/, as an operator runs it. */
  worker(args: string[]): ChildProcess {
    return this.procs.spawn(process.execPath, [join(this.distDir, 'cli/main.js'), 'worker', ...args, '--log-format', 'json', '--log-level', 'warn'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }

  /** Everything this grid started (simulators' workers say goodbye on SIGTERM), its temp dirs, its PostgreSQL schemas. */
  async close(): Promise<void> {
    for (const c of this.clients) c.close();
    await this.procs.close();
    if (this.postgresUrl !== undefined && this.schemas.length > 0) {
      await withPg(this.postgresUrl, async (pg) => {
        for (const schema of this.schemas.splice(0)) await pg.query(`DROP SCHEMA ${schema} CASCADE`);
      });
    }
  }

  /** A new schema on the PostgreSQL server, and the URL that makes it a coordinator's whole database. */
  private async freshSchema(url: string): Promise<string> {
    const schema = `gg_bench_${process.pid}_${this.schemas.length}`;
    await withPg(url, (pg) => pg.query(`CREATE SCHEMA ${schema}`));
    this.schemas.push(schema);
    const scoped = new URL(url);
    scoped.searchParams.set('options', `-c search_path=${schema}`);
    return scoped.toString();
  }
}

async function withPg<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** For the report: where dist/ is relative to the repository. */
export function shortPath(p: string): string {
  const r = relative(ROOT, p);
  return r.startsWith('..') ? p : r;
}
