/**
 * The long-running commands: `gogrid coordinator`, `gogrid worker` and
 * `gogrid local` (both in one process, zero configuration). Each runs until
 * SIGINT/SIGTERM and then shuts down cleanly.
 */
import { TRANSPORT_MODES, type TransportMode } from '../worker/dial.js';
import { InvalidArgumentError, type Command } from 'commander';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { Logger } from 'pino';
import { loadCoordinatorConfig, type ConfigOverrides } from '../coordinator/config.js';
import { startCoordinator, type Coordinator } from '../coordinator/coordinator.js';
import { addModelFromStream, modelsDir } from '../coordinator/models.js';
import { displayFingerprint, GridError, isGridError, OnnxJobInput } from '../protocol/index.js';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { startLoopbackCoordinator } from '../coordinator/loopback.js';
import { coordinatorDefaultDataDir, defaultDataDir } from '../worker/paths.js';
import { createLogger, type LogFormat } from './output.js';
import { startHeadless } from './headless.js';
import { controlFilePath } from '../worker/control/index.js';
import { caCertPath } from '../coordinator/local-files.js';
import { WORKER_DEFAULTS } from '../worker/worker-config.js';

interface LogFlags {
  logLevel: string;
  logFormat: LogFormat;
  logFile?: string;
}

function addLogOptions(cmd: Command): Command {
  return cmd
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
    .option('--log-format <format>', 'auto (pretty on a terminal), pretty or json', 'auto')
    .option('--log-file <path>', 'also write JSON logs to PATH.1.log, PATH.2.log, … (10 MB each, the newest 5 kept)');
}

const loggerFor = (flags: LogFlags) => createLogger({ level: flags.logLevel, format: flags.logFormat, file: flags.logFile });

/** Resolves when SIGINT or SIGTERM arrives. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
}

export function registerServeCommands(program: Command, version: string, run: (fn: () => Promise<void>) => Promise<void>): void {
  addLogOptions(
    program
      .command('coordinator')
      .description('run a coordinator: QUIC for workers on UDP PORT, the HTTPS API on TCP PORT')
      .option('--config <file>', 'coordinator.toml')
      .option('--data <dir>', 'data dir: CA, admin key, embedded database (default: the per-OS coordinator data dir)')
      .option('--bind <addr>', 'overrides [server] bind_addr')
      .option('--port <port>', 'overrides [server] port (0 = any free port)', toInt)
      .option('--database <url>', 'overrides [database] url: memory://, pglite://DIR or postgres://…')
      .option('--max-connections <n>', 'overrides [server] max_connections', toInt)
      .option('--heartbeat-interval <secs>', 'overrides [server] heartbeat_interval_secs', Number)
      .option('--heartbeat-timeout <secs>', 'overrides [server] heartbeat_timeout_secs', Number),
  ).action(
    (flags: LogFlags & { config?: string; data?: string; bind?: string; port?: number; database?: string; maxConnections?: number; heartbeatInterval?: number; heartbeatTimeout?: number }) =>
      run(async () => {
        const logger = await loggerFor(flags);
        const dataDir = flags.data ?? coordinatorDefaultDataDir();
        const overrides: ConfigOverrides = {
          bindAddr: flags.bind,
          port: flags.port,
          databaseUrl: flags.database,
          maxConnections: flags.maxConnections,
          heartbeatIntervalSecs: flags.heartbeatInterval,
          heartbeatTimeoutSecs: flags.heartbeatTimeout,
        };
        const { config, notices } = await loadCoordinatorConfig(flags.config, overrides);
        for (const n of notices) logger.warn(n);
        const stopAsked = untilSignal();
        const c = await startCoordinator({ config, dataDir, logger });
        process.stdout.write(
          [
            `coordinator ${version} listening on ${config.server.bindAddr}:${c.port} (QUIC/UDP for workers, HTTPS/TCP for the API)`,
            `  data dir:        ${dataDir}`,
            `  CA fingerprint:  ${displayFingerprint(c.ca.fingerprint)}   (the end of every enrollment token it makes)`,
            `  API:             ${c.apiUrl}`,
            ...(c.newAdminKey ? [`  admin API key:   ${c.newAdminKey}   (shown once; also in ${join(dataDir, 'admin.key')})`] : []),
            `  enroll a worker: gogrid token create --data ${JSON.stringify(dataDir)}`,
            '',
          ].join('\n'),
        );
        await stopAsked;
        logger.info('stopping');
        await c.stop();
      }),
  );

  addLogOptions(
    program
      .command('worker')
      .description('run a headless worker; enroll it first with --coordinator and --token')
      .option('--coordinator <host:port>', 'coordinator address (needed to enroll; later the stored one is used)')
      .option('--token <token>', 'enrollment token from `gogrid token create` (visible to other users in ps: on a shared machine use --token-file or GOGRID_TOKEN)')
      .option('--token-file <file>', 'read the enrollment token from this file')
      .option('--re-enroll', 'enroll with the token even though this data dir is enrolled with that coordinator already (after the worker was revoked)')
      .option('--name <name>', 'display name (default: the host name)')
      .option('--data <dir>', 'data dir: identity, settings (default: the per-OS worker data dir)')
      .option('--slots <n>', 'jobs run at once', toPositiveInt, WORKER_DEFAULTS.slots)
      .option('--threads <n>', 'runtime threads per job (default: all logical processors)', toPositiveInt)
      .option('--label <label>', 'a label jobs can require, e.g. --label lab --label fast (repeatable)', (v: string, all: string[]) => [...all, v], [])
      .option('--model-cache-gib <n>', 'size cap of the model cache', Number, WORKER_DEFAULTS.modelCacheBytes / 2 ** 30)
      .option('--preset <name>', "when to run, until changed in the status window: dedicated (always) or desktop (only while this computer's user is away)", toPreset, 'dedicated')
      .option('--control-port <port>', 'port of the local status window and control API on 127.0.0.1 (default: any free port)', toInt)
      .option('--transport <how>', 'quic, tcp (TLS on TCP, through HTTPS_PROXY if set), or auto: QUIC, and TCP when UDP does not get through', toTransport, 'auto'),
  ).action(
    (flags: LogFlags & { coordinator?: string; token?: string; tokenFile?: string; reEnroll?: boolean; name?: string; data?: string; slots: number; threads?: number; label: string[]; modelCacheGib: number; preset: 'desktop' | 'dedicated'; controlPort?: number; transport: TransportMode }) =>
    run(async () => {
      const logger = await loggerFor(flags);
      const dataDir = flags.data ?? defaultDataDir();
      if (!(flags.modelCacheGib > 0)) throw new GridError('GG_ERR_CONFIG_INVALID', `--model-cache-gib: "${flags.modelCacheGib}" is not a positive number`);
      // Listening from the start: a SIGTERM while starting stops it cleanly once started, instead of killing it half-way.
      const stopAsked = untilSignal();
      const giveUp = new AbortController();
      void stopAsked.then(() => giveUp.abort());
      const h = await startHeadless({
        signal: giveUp.signal,
        dataDir,
        coordinator: flags.coordinator,
        token: await enrollmentToken(flags),
        reEnroll: flags.reEnroll === true,
        name: flags.name,
        version,
        logger,
        preset: flags.preset,
        controlPort: flags.controlPort,
        transport: flags.transport,
        jobs: { slots: flags.slots, threads: flags.threads, labels: flags.label, modelCacheBytes: Math.round(flags.modelCacheGib * 2 ** 30) },
      }).catch((e: unknown) => {
        // Stopped while still waiting to enroll: a clean stop, not a failure.
        if (giveUp.signal.aborted) return null;
        throw e;
      });
      if (!h) return;
      const w = h.host.worker!;
      logger.info({ workerId: w.identity.workerId, dataDir, enrolled: w.enrolled }, 'worker started');
      // The address with its token lets whoever has it pause or re-point this worker: on the
      // owner's terminal only, never in a log (control.json, 0600, also holds it).
      logger.info(`status window: ${h.control.url} (its token is in ${controlFilePath(dataDir)})`);
      if (process.stderr.isTTY) process.stderr.write(`Open the status window: ${h.statusUrl}\n`);
      const ended = h.host.whenEnded().then((error) => {
        // The one thing to do next, on the line that says what happened.
        if (isGridError(error, 'GG_ERR_WORKER_REVOKED')) {
          throw new GridError(error.code, `${error.message}; to enroll this machine again: gogrid worker --token-file FILE --re-enroll (with a new token from gogrid token create)`);
        }
        if (error) throw error;
      });
      try {
        await Promise.race([stopAsked, ended]);
      } finally {
        // Ctrl+C hands a running job back at once (requeued, not lost) rather than keeping the owner waiting.
        await h.stop(0);
      }
    }),
  );

  addLogOptions(
    program
      .command('local')
      .description('start an embedded coordinator and one worker in this process, with zero configuration')
      .option('--data <dir>', 'where both keep their files (default: a new temporary directory)')
      .option('--port <port>', 'port for QUIC and HTTPS (default: any free port)', toInt),
  ).action((flags: LogFlags & { data?: string; port?: number }) =>
    run(async () => {
      const logger = await loggerFor(flags);
      await runLocal({ dataDir: flags.data ?? (await mkdtemp(join(tmpdir(), 'gogrid-local-'))), port: flags.port ?? 0, version, logger });
    }),
  );
}

async function runLocal(opts: { dataDir: string; port: number; version: string; logger: Logger }): Promise<void> {
  const coordinatorDir = join(opts.dataDir, 'coordinator');
  const workerDir = join(opts.dataDir, 'worker');
  const stopAsked = untilSignal();
  const { coordinator: c, address, token } = await startLoopbackCoordinator({
    dataDir: coordinatorDir,
    port: opts.port,
    logger: opts.logger.child({ side: 'coordinator' }),
    tokenDescription: 'gogrid local',
  });
  try {
    const h = await startHeadless({
      dataDir: workerDir,
      coordinator: address,
      token,
      version: opts.version,
      logger: opts.logger.child({ side: 'worker' }),
      preset: 'dedicated',
    });
    const w = h.host.worker!;
    await w.agent.waitFor('online');
    const sample = await runSampleJob(c);
    const dataFlag = JSON.stringify(coordinatorDir);
    process.stdout.write(
      [
        `GoGrid local mode: a coordinator and one worker in this process.`,
        `  coordinator:  127.0.0.1:${c.port} (QUIC/UDP), ${c.apiUrl} (HTTPS API)`,
        `  worker:       ${w.identity.workerId} (${w.identity.name}), online`,
        `  status:       ${h.statusUrl}`,
        `  data:         ${opts.dataDir}`,
        `  admin key:    ${join(coordinatorDir, 'admin.key')}`,
        `  dashboard:    ${c.apiUrl}/dashboard/ (paste the admin key; the certificate is from ${join(coordinatorDir, 'ca.crt')})`,
        `Sample job ${sample.id}: samples/mlp.onnx on samples/mlp-input.json ran on ${sample.workerId} in ${sample.ms} ms:`,
        `  y = ${JSON.stringify(sample.y)}`,
        `Try, in another terminal:`,
        `  npx gogrid workers --data ${dataFlag}`,
        `  npx gogrid submit --data ${dataFlag} --model samples/mlp.onnx --input samples/mlp-input.json --wait`,
        `  npx gogrid jobs --data ${dataFlag}`,
        `An LLM behind the OpenAI API (bring a GGUF file):`,
        `  npx gogrid models add --data ${dataFlag} --name chat model.gguf`,
        `  KEY=$(npx gogrid keys create --data ${dataFlag} --scope inference --name me)`,
        `  curl --cacert ${JSON.stringify(caCertPath(coordinatorDir))} ${c.apiUrl}/v1/chat/completions -H "Authorization: Bearer $KEY" \\`,
        `    -H 'content-type: application/json' -d '{"model": "chat", "messages": [{"role": "user", "content": "Hello"}]}'`,
        `Press Ctrl+C to stop.`,
        '',
      ].join('\n'),
    );
    try {
      await Promise.race([stopAsked, w.agent.done]);
    } finally {
      await h.stop(0);
    }
  } finally {
    await c.stop();
  }
}

/** Runs samples/mlp.onnx on samples/mlp-input.json through the grid, so a newcomer sees the whole loop. */
async function runSampleJob(c: Coordinator): Promise<{ id: string; workerId: string | null; ms: number; y: unknown }> {
  const model = await addModelFromStream(modelsDir(c.dataDir), createReadStream(new URL('../../samples/mlp.onnx', import.meta.url)), { name: 'mlp.onnx' });
  const input = OnnxJobInput.parse(JSON.parse(await readFile(new URL('../../samples/mlp-input.json', import.meta.url), 'utf8')));
  const started = Date.now();
  const done = await c.runJob(
    { kind: 'onnx', model: { sha256: model.sha256 }, input, requirements: {}, timeoutMs: 60_000, maxAttempts: 1, priority: 0 },
    { sha256: model.sha256, size: model.size, name: model.name },
  );
  if (done.state !== 'succeeded') {
    throw new GridError('GG_ERR_INTERNAL', `the sample job ${done.id} ${done.state}: ${done.error?.code ?? ''} ${done.error?.message ?? ''}`);
  }
  return { id: done.id, workerId: done.workerId, ms: Date.now() - started, y: (done.output as { outputs: { y: { data: unknown } } }).outputs.y.data };
}

function toPositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`"${value}" is not a positive whole number`);
  return n;
}

function toPreset(value: string): 'desktop' | 'dedicated' {
  if (value !== 'desktop' && value !== 'dedicated') throw new InvalidArgumentError(`"${value}" is not desktop or dedicated`);
  return value;
}

function toTransport(value: string): TransportMode {
  if (!(TRANSPORT_MODES as readonly string[]).includes(value)) throw new InvalidArgumentError(`"${value}" is not ${TRANSPORT_MODES.join(', ')}`);
  return value as TransportMode;
}

function toInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`"${value}" is not a whole number`);
  return n;
}

/** The enrollment token from --token, --token-file or GOGRID_TOKEN, in that order; a file that cannot be read or is empty is an error. */
async function enrollmentToken(flags: { token?: string; tokenFile?: string }): Promise<string | undefined> {
  if (flags.token !== undefined && flags.tokenFile !== undefined) throw new GridError('GG_ERR_CONFIG_INVALID', 'give the token once: --token or --token-file, not both');
  if (flags.tokenFile === undefined) return flags.token ?? (process.env['GOGRID_TOKEN'] || undefined);
  const file = flags.tokenFile;
  const text = await readFile(file, 'utf8').catch((e: unknown) => {
    throw new GridError('GG_ERR_CONFIG_INVALID', `--token-file ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  });
  const token = text.trim();
  if (token === '') throw new GridError('GG_ERR_CONFIG_INVALID', `--token-file ${file} is empty; put a token from gogrid token create in it`);
  return token;
}
