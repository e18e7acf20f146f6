/**
 * `gogrid token …`, `gogrid keys …` and `gogrid workers …`: thin calls of the admin API.
 * `--json` prints exactly the API's shapes (protocol/api.ts), the stable form.
 */
import { Option, type Command } from 'commander';
import { ApiKeyInfo, ApiKeyList, ApiKeyScope, CreatedApiKey, CreatedToken, TokenInfo, TokenList, WorkerInfo, WorkerList, type HardwareReport, type LlmRuntimeReport, workingGpuBackends } from '../protocol/index.js';
import { AdminClient, type AdminTargetOptions } from './admin-client.js';
import { ago, parseDurationSecs } from './duration.js';
import { addListingOptions, listingFormat, printJson, printListing, type ListingFlags } from './output.js';
import { registerPolicyCommands } from './policy-commands.js';

type TargetFlags = AdminTargetOptions & { json?: boolean };

export function addTargetOptions(cmd: Command): Command {
  return cmd
    .option('--data <dir>', "the coordinator's data dir on this machine (default: the per-OS coordinator data dir)")
    .option('--api <url>', 'a remote coordinator API, e.g. https://grid.example.com:8443 (key in GOGRID_API_KEY)')
    .option('--ca <file>', "the remote coordinator's ca.crt (with --api)");
}

export function registerAdminCommands(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  const token = program.command('token').description('enrollment tokens: create, list, revoke');

  addTargetOptions(
    token
      .command('create')
      .description('create an enrollment token; prints only the token on stdout')
      .option('--ttl <duration>', 'time until it expires (90s, 30m, 24h, 7d)', '24h')
      .option('--uses <n>', 'how many workers may enroll with it', '1')
      .option('--description <text>', 'a note for `token list`', '')
      .option('--json', 'print the token and its details as JSON'),
  ).action((flags: TargetFlags & { ttl: string; uses: string; description: string }) =>
    run(async () => {
      const api = await AdminClient.resolve(flags);
      const created = await api.call('POST', '/v1/tokens', CreatedToken, {
        ttlSecs: parseDurationSecs(flags.ttl, '--ttl'),
        maxUses: Number(flags.uses),
        description: flags.description,
      });
      if (flags.json) printJson(created);
      else process.stdout.write(`${created.token}\n`);
    }),
  );

  addTargetOptions(addListingOptions(token.command('list').description('list enrollment tokens (secrets are never shown again)').option('--json', 'print JSON'))).action(
    (flags: TargetFlags & ListingFlags) =>
      run(async () => {
        const format = listingFormat(flags);
        const api = await AdminClient.resolve(flags);
        const tokens = await api.call('GET', '/v1/tokens', TokenList);
        const now = Date.now();
        printListing(format, tokens, [
          { header: 'ID', cell: (t) => t.id },
          { header: 'STATUS', cell: (t) => t.status },
          { header: 'USES', cell: (t) => `${t.uses}/${t.maxUses}` },
          { header: 'EXPIRES', cell: (t) => ago(t.expiresAt, now) },
          { header: 'CREATED', cell: (t) => ago(t.createdAt, now), wide: true },
          { header: 'DESCRIPTION', cell: (t) => t.description },
        ]);
      }),
  );

  addTargetOptions(token.command('revoke').description('revoke an enrollment token').argument('<id>', 'token id').option('--json', 'print JSON')).action(
    (id: string, flags: TargetFlags) =>
      run(async () => {
        const api = await AdminClient.resolve(flags);
        const info = await api.call('DELETE', `/v1/tokens/${encodeURIComponent(id)}`, TokenInfo);
        if (flags.json) printJson(info);
        else process.stdout.write(`token ${info.id} revoked\n`);
      }),
  );

  registerKeyCommands(program, run);

  const workers = addTargetOptions(
    addListingOptions(program.command('workers').description('list enrolled workers; pause, resume, set the policy of, or revoke one').option('--json', 'print JSON')),
  ).action((flags: TargetFlags & ListingFlags) =>
    run(async () => {
      const format = listingFormat(flags);
      const api = await AdminClient.resolve(flags);
      const list = await api.call('GET', '/v1/workers', WorkerList);
      const now = Date.now();
      printListing(format, list, [
        { header: 'ID', cell: (w) => w.id },
        { header: 'NAME', cell: (w) => w.name },
        { header: 'STATE', cell: (w) => (w.state === 'paused' && w.pausedReason ? `paused (${w.pausedReason})` : w.state) },
        // TCP: its network drops UDP, so it connects over TLS on TCP (or was told to).
        { header: 'VIA', cell: (w) => w.transport ?? '-' },
        { header: 'VERSION', cell: (w) => w.appVersion ?? '-', wide: true },
        { header: 'LAST SEEN', cell: (w) => ago(w.lastSeen, now) },
        { header: 'CPU', cell: (w) => (w.hardware ? `${w.hardware.cpu.threads ?? '?'} threads` : '-'), wide: true },
        { header: 'MEMORY', cell: (w) => (w.hardware?.memory.totalBytes ? `${(w.hardware.memory.totalBytes / 2 ** 30).toFixed(1)} GiB` : '-'), wide: true },
        { header: 'GPUS', cell: (w) => (w.hardware ? String(w.hardware.gpus.length) : '-') },
        { header: 'ONNX ON', cell: (w) => onnxOn(w.hardware) },
        { header: 'LLM ON', cell: (w) => llmOn(w.hardware?.llm) },
        { header: 'OS', cell: (w) => (w.hardware ? `${w.hardware.os.platform}/${w.hardware.os.arch}` : '-'), wide: true },
        { header: 'ENROLLED', cell: (w) => ago(w.enrolledAt, now), wide: true },
        { header: 'CERT EXPIRES', cell: (w) => ago(w.certNotAfter, now), wide: true },
        { header: 'LABELS', cell: (w) => (w.labels.length > 0 ? w.labels.join(',') : '-') },
      ]);
    }),
  );

  addTargetOptions(
    workers
      .command('revoke')
      .description('revoke a worker: disconnects it now and refuses it from then on')
      .argument('<id>', 'worker id')
      .option('--json', 'print JSON'),
  ).action((id: string, flags: TargetFlags) =>
    run(async () => {
      const api = await AdminClient.resolve(flags);
      const info = await api.call('POST', `/v1/workers/${encodeURIComponent(id)}/revoke`, WorkerInfo);
      if (flags.json) printJson(info);
      else process.stdout.write(`worker ${info.id} revoked\n`);
    }),
  );

  registerPolicyCommands(workers, run);
}

/** Where the worker's ONNX jobs can run, as its probe found at start: `webgpu, cpu`, `cpu`, or `-` for a worker older than the probe. */
function onnxOn(hardware: HardwareReport | null): string {
  if (!hardware?.backends) return '-';
  return [...workingGpuBackends('onnx', hardware), 'cpu'].join(', ');
}

/** Where the worker's LLM jobs run, as llama.cpp found at its start: `cuda 24.0 GiB`, `cpu`, or `-` where it did not say. */
function llmOn(llm: LlmRuntimeReport | null | undefined): string {
  if (!llm) return '-';
  if (!llm.gpu) return 'cpu';
  return llm.vramMiB === null ? llm.gpu : `${llm.gpu} ${(llm.vramMiB / 1024).toFixed(1)} GiB`;
}

function registerKeyCommands(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  const keys = program.command('keys').description('API keys: create, list, revoke (an inference key may call only the OpenAI-compatible API, a metrics key only GET /metrics)');

  addTargetOptions(
    keys
      .command('create')
      .description('create an API key; prints only the key on stdout, this once')
      .addOption(new Option('--scope <scope>', 'admin: every route; inference: only the OpenAI-compatible API; metrics: only GET /metrics (for Prometheus)').choices(ApiKeyScope.options).default('inference'))
      .option('--name <text>', 'who or what holds it, for `keys list`', '')
      .option('--json', 'print the key and its details as JSON'),
  ).action((flags: TargetFlags & { scope: ApiKeyScope; name: string }) =>
    run(async () => {
      const api = await AdminClient.resolve(flags);
      const created = await api.call('POST', '/v1/keys', CreatedApiKey, { scope: flags.scope, name: flags.name });
      if (flags.json) printJson(created);
      else process.stdout.write(`${created.key}\n`);
    }),
  );

  addTargetOptions(addListingOptions(keys.command('list').description('list API keys (a key is never shown again)').option('--json', 'print JSON'))).action(
    (flags: TargetFlags & ListingFlags) =>
      run(async () => {
        const format = listingFormat(flags);
        const api = await AdminClient.resolve(flags);
        const list = await api.call('GET', '/v1/keys', ApiKeyList);
        const now = Date.now();
        printListing(format, list, [
          { header: 'ID', cell: (k) => k.id },
          { header: 'NAME', cell: (k) => k.name },
          { header: 'SCOPE', cell: (k) => k.scope },
          { header: 'STATUS', cell: (k) => k.status },
          { header: 'CREATED', cell: (k) => ago(k.createdAt, now) },
          { header: 'LAST USED', cell: (k) => ago(k.lastUsedAt, now) },
          { header: 'REVOKED', cell: (k) => ago(k.revokedAt, now), wide: true },
        ]);
      }),
  );

  addTargetOptions(
    keys.command('revoke').description('revoke an API key: refused from its next request on').argument('<id>', 'key id').option('--json', 'print JSON'),
  ).action((id: string, flags: TargetFlags) =>
    run(async () => {
      const api = await AdminClient.resolve(flags);
      const info = await api.call('DELETE', `/v1/keys/${encodeURIComponent(id)}`, ApiKeyInfo);
      if (flags.json) printJson(info);
      else process.stdout.write(`API key ${info.id} revoked\n`);
    }),
  );
}
