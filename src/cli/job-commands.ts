/**
 * `gogrid submit`, `job`, `jobs` and `cancel`: thin calls of the jobs API.
 * `--json` prints the API's shapes (protocol/api.ts).
 *
 *   gogrid submit --model mlp.onnx --input input.json --wait
 *   gogrid jobs --state queued
 */
import type { Command } from 'commander';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ERROR_CODES,
  GPU_BACKENDS,
  GridError,
  type ErrorCode,
  JobInfo,
  JobList,
  JobState,
  OnnxJobOutput,
  printable,
  TERMINAL_JOB_STATES,
  type JobRequirements,
} from '../protocol/index.js';
import { AdminClient } from './admin-client.js';
import { batchSummary, BatchProblems, failedNote, parseBatchLines, queueBatch, requestsOf, waitForBatch } from './batch.js';
import { countBar, jobBar, progressShown } from './progress.js';
import { addTargetOptions } from './admin-commands.js';
import { ago, formatDuration, parseDurationSecs } from './duration.js';
import { jobModelSha256 } from './model-commands.js';
import { addListingOptions, jsonText, listingFormat, printJson, printListing, type ListingFlags } from './output.js';
import { decodeTensor } from '../worker/executors/tensor-codec.js';

type Target = { data?: string; api?: string; ca?: string; json?: boolean };

interface SubmitFlags extends Target {
  model?: string;
  input?: string;
  batch?: string;
  results?: string;
  kind: string;
  timeout: string;
  attempts: string;
  priority: string;
  label: string[];
  gpu?: string;
  gpuFallback?: boolean;
  minVramMib?: string;
  os?: string;
  arch?: string;
  minMemoryGib?: string;
  idempotencyKey?: string;
  queueTimeout?: string;
  wait?: boolean;
}

export function registerJobCommands(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  addTargetOptions(
    program
      .command('submit')
      .description('submit a job, or one per line of a file (--batch); prints its id (with --wait: its output)')
      .option('--model <model|file>', "a stored model's sha256, name or alias, or a file (uploaded unless already stored)")
      .option('--input <file.json>', 'the job input, e.g. {"inputs": {"x": {"dtype": "float32", "dims": [1, 4], "data": [1, 2, 3, 4]}}}; - for stdin')
      .option('--batch <jobs.jsonl>', 'one job per line: the fields of POST /v1/jobs ({"model": "mlp", "input": {…}, "priority": 5}); flags fill in what a line leaves out; every line is checked before any is queued')
      .option('--results <dir>', 'with --batch: wait, and write each job\'s output to DIR/<line>-<id>.json')
      .option('--kind <kind>', 'executor kind', 'onnx')
      .option('--timeout <duration>', 'run time limit per attempt (90s, 30m, 2h)', '60s')
      .option('--queue-timeout <duration>', 'fail the job if no worker takes it within this (2h, 7d; default 7d)')
      .option('--attempts <n>', 'attempts before the job fails', '3')
      .option('--priority <n>', 'higher runs first (-1000..1000)', '0')
      .option('--label <label>', 'a label the worker must have (repeatable)', (v: string, all: string[]) => [...all, v], [])
      .option('--gpu <backend>', `runs on a GPU with this backend: any, or for onnx ${GPU_BACKENDS['onnx']!.join(', ')}; for llm ${GPU_BACKENDS['llm']!.join(', ')}`)
      .option('--gpu-fallback', 'with --gpu: may run on the CPU where no such GPU works (the output says which it ran on)')
      .option('--min-vram-mib <n>', 'needs a GPU with this much VRAM (implies --gpu any)')
      .option('--os <platform>', 'needs this OS (linux, darwin, win32)')
      .option('--arch <arch>', 'needs this CPU architecture (x64, arm64)')
      .option('--min-memory-gib <n>', 'needs this much free memory')
      .option('--idempotency-key <key>', 'the same key again within a day queues nothing and prints the job it queued first (default: a new UUID, kept across this command\'s own retries)')
      .option('--wait', 'wait for the job (or every job of the batch) to finish and print its output (a batch: a summary)')
      .option('--json', 'print the job (with --wait: when finished) as JSON; a batch: an array'),
  ).action((flags: SubmitFlags) =>
    run(async () => {
      const api = await AdminClient.resolve(flags);
      if (flags.batch !== undefined) return submitBatch(api, { ...flags, batch: flags.batch });
      if (flags.results !== undefined) throw new GridError('GG_ERR_BAD_REQUEST', '--results DIR goes with --batch FILE; for one job, gogrid job ID --output FILE');
      if (flags.model === undefined || flags.input === undefined) {
        throw new GridError('GG_ERR_BAD_REQUEST', `${flags.model === undefined ? '--model' : '--input'} is required (or --batch FILE, one job per line)`);
      }
      const input = await readInput(flags.input);
      const sha256 = await jobModelSha256(api, flags.model, { progress: progressShown(flags.json) });
      const request = { ...requestFields(flags), model: { sha256 }, input };
      const key = flags.idempotencyKey ?? randomUUID();
      const job = await api.postOnce('/v1/jobs', JobInfo, request, key, (note) => process.stderr.write(`gogrid: ${printable(note)}\n`));
      if (!flags.wait) {
        if (flags.json) printJson(job);
        else process.stdout.write(`${job.id}\n`);
        return;
      }
      const bar = jobBar(flags.json);
      const done = await waitFor(api, job.id, flags.json ? null : (line, progress, changed) => (bar ? bar.update(line, progress) : changed && process.stderr.write(`${line}\n`)));
      // The last word on the bar: how the job ended.
      bar?.update(`job ${done.id}: ${done.state}${done.workerId ? ` on ${done.workerId}` : ''}`, done.state === 'succeeded' ? 1 : done.progress);
      bar?.stop();
      if (flags.json) printJson(done);
      else if (done.state === 'succeeded') printJson(done.output);
      if (done.state !== 'succeeded') {
        // The job's own error code, so scripts can tell a bad input from a crash.
        const code = done.error && done.error.code in ERROR_CODES ? (done.error.code as ErrorCode) : 'GG_ERR_JOB_CANCELED';
        throw new GridError(code, `job ${done.id} ${done.state}${done.error ? `: ${done.error.message}` : ''}`);
      }
    }),
  );

  addTargetOptions(
    program
      .command('job')
      .description('show one job: state, attempts, history, output')
      .argument('<id>', 'job id')
      .option('--json', 'print JSON')
      .option('--output <file>', "write the job's output to FILE (- for stdout): its JSON, or with --raw one tensor's bytes")
      .option('--raw [tensor]', "with --output: the named output tensor's raw little-endian bytes (the name may be left out when there is one)"),
  ).action((id: string, flags: Target & { output?: string; raw?: string | true }) =>
      run(async () => {
        const api = await AdminClient.resolve(flags);
        const job = await api.call('GET', `/v1/jobs/${encodeURIComponent(id)}`, JobInfo);
        if (flags.raw !== undefined && flags.output === undefined) throw new GridError('GG_ERR_BAD_REQUEST', '--raw goes with --output FILE: where the bytes go');
        if (flags.output !== undefined) return writeOutput(job, flags.output, flags.raw);
        if (flags.json) return printJson(job);
        const now = Date.now();
        const { waited, ran } = timesOf(job, now);
        const lines = [
          `job ${job.id} (${job.kind}, model ${job.model.name} ${job.model.sha256.slice(0, 12)}…)`,
          `  state:     ${job.state}${job.progress !== null && job.state === 'running' ? ` ${Math.round(job.progress * 100)} %` : ''}`,
          `  submitted: ${job.submittedAt} (${ago(job.submittedAt, now)}), priority ${job.priority}; waited ${waited}, ran ${ran}`,
          `  attempts:  ${job.attempt} of ${job.maxAttempts}${job.workerId ? `, last on ${job.workerId}` : ''}`,
          ...(job.waitingReason ? [`  waiting:   ${job.waitingReason}`] : []),
          ...(job.error ? [`  error:     ${job.error.code}: ${job.error.message}`] : []),
          '  history:',
          ...(job.events ?? []).map((e) => `    ${e.at}  ${e.state.padEnd(9)} attempt ${e.attempt}${e.workerId ? ` on ${e.workerId}` : ''}${e.detail ? `  (${e.detail})` : ''}`),
          ...(ranOn(job.output) ? [`  ran on:    ${ranOn(job.output)}`] : []),
          ...(job.state === 'succeeded' ? [`  output:    gogrid job ${job.id} --output FILE writes it (--json shows it)`] : []),
        ];
        // Model names, error messages and details come from clients and workers: escaped like table cells.
        process.stdout.write(`${lines.map(printable).join('\n')}\n`);
      }),
  );

  addTargetOptions(
    addListingOptions(
      program
        .command('jobs')
        .description('list jobs, newest first')
        .option('--state <state>', `only this state (${JobState.options.join(', ')})`)
        .option('--limit <n>', 'at most this many', '100')
        .option('--json', 'print JSON'),
    ),
  ).action((flags: Target & ListingFlags & { state?: string; limit: string }) =>
    run(async () => {
      const format = listingFormat(flags);
      const api = await AdminClient.resolve(flags);
      const q = new URLSearchParams({ limit: flags.limit, ...(flags.state ? { state: flags.state } : {}) });
      const jobs = await api.call('GET', `/v1/jobs?${q}`, JobList);
      const now = Date.now();
      const times = new Map(jobs.map((j) => [j.id, timesOf(j, now)]));
      printListing(format, jobs, [
        { header: 'ID', cell: (j) => j.id },
        { header: 'STATE', cell: (j) => j.state },
        { header: 'KIND', cell: (j) => j.kind },
        { header: 'MODEL', cell: (j) => j.model.name || `${j.model.sha256.slice(0, 12)}…`, wide: true },
        { header: 'PRIORITY', cell: (j) => String(j.priority) },
        { header: 'ATTEMPT', cell: (j) => `${j.attempt}/${j.maxAttempts}` },
        { header: 'WORKER', cell: (j) => j.workerId ?? '-' },
        { header: 'LABELS', cell: (j) => j.requirements.labels?.join(',') || '-', wide: true },
        { header: 'GPU', cell: (j) => j.requirements.gpu?.backend ?? (j.requirements.gpu ? 'any' : '-'), wide: true },
        { header: 'SUBMITTED', cell: (j) => ago(j.submittedAt, now) },
        { header: 'WAITED', cell: (j) => times.get(j.id)!.waited },
        { header: 'RAN', cell: (j) => times.get(j.id)!.ran },
        { header: 'QUEUE DEADLINE', cell: (j) => ago(j.queueDeadline ?? null, now), wide: true },
        { header: 'NOTE', cell: (j) => j.waitingReason ?? (j.error && j.state !== 'succeeded' ? j.error.code : '') },
      ]);
    }),
  );

  addTargetOptions(program.command('cancel').description('cancel a job; a running one is stopped within a second').argument('<id>', 'job id').option('--json', 'print JSON')).action(
    (id: string, flags: Target) =>
      run(async () => {
        const api = await AdminClient.resolve(flags);
        const job = await api.call('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`, JobInfo);
        if (flags.json) printJson(job);
        else process.stdout.write(`job ${job.id} canceled\n`);
      }),
  );
}

/** What the flags say of a job but its model and input: all of a single submit, the defaults under each line of a batch. */
function requestFields(flags: SubmitFlags) {
  return {
    kind: flags.kind,
    requirements: requirementsOf(flags),
    timeoutMs: parseDurationSecs(flags.timeout, '--timeout') * 1000,
    ...(flags.queueTimeout !== undefined && { queueTimeoutMs: parseDurationSecs(flags.queueTimeout, '--queue-timeout') * 1000 }),
    maxAttempts: Number(flags.attempts),
    priority: Number(flags.priority),
  };
}

/** `submit --batch`: batch.ts's steps, with what a person sees on the way. */
async function submitBatch(api: AdminClient, flags: SubmitFlags & { batch: string }): Promise<void> {
  let text: string;
  try {
    text = flags.batch === '-' ? await readStdin() : await readFile(flags.batch, 'utf8');
  } catch (e) {
    throw new GridError('GG_ERR_BAD_REQUEST', `--batch: cannot read ${flags.batch}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const wait = flags.wait === true || flags.results !== undefined;
  let checked: Awaited<ReturnType<typeof checkedRequests>>;
  try {
    checked = await checkedRequests(api, text, flags);
  } catch (e) {
    if (e instanceof BatchProblems) {
      for (const p of e.problems.slice(0, 50)) process.stderr.write(`${printable(e.file)}:${p.line}: ${printable(p.problem)}\n`);
      if (e.problems.length > 50) process.stderr.write(`… and ${e.problems.length - 50} more\n`);
    }
    throw e;
  }
  const { lines, requests } = checked;
  const jobs = await queueBatch(api, requests, flags.idempotencyKey ?? randomUUID(), (note) => process.stderr.write(`gogrid: ${printable(note)}\n`));
  if (!wait) {
    if (flags.json) printJson(jobs);
    else process.stdout.write(jobs.map((j) => `${j.id}\n`).join(''));
    return;
  }
  process.stderr.write(`queued ${jobs.length} jobs (${jobs[0]!.id} … ${jobs.at(-1)!.id})\n`);
  const bar = countBar('jobs', jobs.length, flags.json);
  const done = await waitForBatch(api, jobs, (p) => bar?.update(p.succeeded + p.failed + p.canceled, failedNote(p)));
  bar?.stop();
  if (flags.results !== undefined) {
    await mkdir(flags.results, { recursive: true });
    await Promise.all(done.map((j, i) => (j.state === 'succeeded' ? writeFile(join(flags.results!, `${lines[i]!.line}-${j.id}.json`), jsonText(j.output)) : undefined)));
  }
  if (flags.json) printJson(done);
  process.stderr.write(batchSummary(done, lines.map((l) => l.line)));
  const bad = done.filter((j) => j.state !== 'succeeded');
  if (bad.length > 0) {
    const first = bad[0]!;
    const code = first.error && first.error.code in ERROR_CODES ? (first.error.code as ErrorCode) : 'GG_ERR_JOB_CANCELED';
    throw new GridError(code, `${bad.length} of ${done.length} jobs did not succeed (listed above)`);
  }
}

/** Every line of a batch (with its number) as a request, or BatchProblems naming every bad line: the lines, then the models they name (each once), then the API's schema. */
async function checkedRequests(api: AdminClient, text: string, flags: SubmitFlags & { batch: string }) {
  const lines = parseBatchLines(text, flags.batch, { model: flags.model, fields: requestFields(flags) });
  const shas = new Map<string, string>();
  const missing: { line: number; problem: string }[] = [];
  for (const model of new Set(lines.map((l) => l.model))) {
    try {
      shas.set(model, await jobModelSha256(api, model, { progress: progressShown(flags.json) }));
    } catch (e) {
      if (!(e instanceof GridError)) throw e;
      // A model that cannot be found is a problem of every line that names it.
      for (const l of lines.filter((x) => x.model === model)) missing.push({ line: l.line, problem: `model: ${e.message.replace(/^--model: /, '')}` });
    }
  }
  if (missing.length > 0) throw new BatchProblems(flags.batch, missing, lines.length);
  return { lines, requests: requestsOf(lines, shas, flags.batch) };
}

async function readInput(file: string): Promise<unknown> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (e) {
    throw new GridError('GG_ERR_BAD_REQUEST', `--input: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new GridError('GG_ERR_BAD_REQUEST', `--input: ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function requirementsOf(f: SubmitFlags): JobRequirements {
  return {
    ...(f.label.length ? { labels: f.label } : {}),
    ...(f.gpu !== undefined || f.minVramMib !== undefined || f.gpuFallback ? { gpu: gpuOf(f) } : {}),
    ...(f.os ? { os: [f.os] } : {}),
    ...(f.arch ? { arch: [f.arch] } : {}),
    ...(f.minMemoryGib ? { minFreeMemoryBytes: Math.round(Number(f.minMemoryGib) * 2 ** 30) } : {}),
  };
}

function gpuOf(f: SubmitFlags): NonNullable<JobRequirements['gpu']> {
  if (f.gpuFallback && f.gpu === undefined && f.minVramMib === undefined) throw new GridError('GG_ERR_BAD_REQUEST', '--gpu-fallback goes with --gpu BACKEND (or --min-vram-mib): the GPU the job prefers');
  const vram = f.minVramMib === undefined ? undefined : Number(f.minVramMib);
  if (vram !== undefined && !(Number.isInteger(vram) && vram > 0)) throw new GridError('GG_ERR_BAD_REQUEST', `--min-vram-mib takes a whole number of MiB, not "${f.minVramMib}"`);
  return { ...(f.gpu !== undefined && { backend: f.gpu }), ...(vram !== undefined && { minVramMiB: vram }), ...(f.gpuFallback && { fallback: true }) };
}

/**
 * The job once it is final. On the way, each change of its state, worker or
 * waiting reason is a line on stderr (`tell`), so a person sees why it waits;
 * Ctrl+C leaves the job as it is and says how to follow it.
 */
async function waitFor(api: AdminClient, id: string, tell: ((line: string, progress: number | null, changed: boolean) => void) | null): Promise<JobInfo> {
  const interrupted = () => {
    process.stderr.write(`gogrid: stopped waiting; job ${id} goes on (follow it: gogrid job ${id}; stop it: gogrid cancel ${id})\n`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  try {
    let last = '';
    for (;;) {
      // Short polls: a change shows within a couple of seconds, for one request per poll.
      const job = await api.call('GET', `/v1/jobs/${encodeURIComponent(id)}?wait=2`, JobInfo);
      if (TERMINAL_JOB_STATES.includes(job.state)) return job;
      const now = `job ${job.id}: ${job.state}${job.workerId ? ` on ${job.workerId}` : ''}${job.waitingReason ? ` (${job.waitingReason})` : ''}`;
      // Every poll: a bar shows the progress the job reports; lines are printed per change only.
      tell?.(printable(now), job.progress, now !== last);
      last = now;
    }
  } finally {
    process.off('SIGINT', interrupted);
  }
}

/** The backend an ONNX job's output says it ran on (cpu, webgpu, cuda…), if it says. */
function ranOn(output: unknown): string | undefined {
  const backend = (output as { backend?: unknown } | null)?.backend;
  return typeof output === 'object' && typeof backend === 'string' ? backend : undefined;
}

/** `job --output`: the output as JSON, or one tensor's bytes (--raw), to a file or stdout. */
export async function writeOutput(job: Pick<JobInfo, 'id' | 'kind' | 'state' | 'output'>, file: string, raw: string | true | undefined): Promise<void> {
  if (job.state !== 'succeeded') throw new GridError('GG_ERR_BAD_REQUEST', `job ${job.id} is ${job.state}: it has no output to write`);
  let bytes: Uint8Array;
  if (raw === undefined) bytes = Buffer.from(jsonText(job.output));
  else {
    const parsed = OnnxJobOutput.safeParse(job.output);
    if (!parsed.success) throw new GridError('GG_ERR_BAD_REQUEST', `--raw: job ${job.id} (${job.kind}) has no output tensors; write its JSON without --raw`);
    const names = Object.keys(parsed.data.outputs);
    const name = raw === true ? (names.length === 1 ? names[0]! : null) : raw;
    if (name === null) throw new GridError('GG_ERR_BAD_REQUEST', `--raw: the output has ${names.length} tensors (${names.join(', ')}); name one: --raw NAME`);
    // Own names only: `--raw __proto__` or `--raw constructor` must not find Object's.
    const tensor = Object.hasOwn(parsed.data.outputs, name) ? parsed.data.outputs[name] : undefined;
    if (!tensor) throw new GridError('GG_ERR_BAD_REQUEST', `--raw: no output tensor ${JSON.stringify(name)}; there are ${names.join(', ')}`);
    if (tensor.dtype === 'string') throw new GridError('GG_ERR_BAD_REQUEST', `--raw: ${name} is a string tensor, which has no raw form; write its JSON without --raw`);
    // The typed array's own bytes: little-endian on every platform the worker and CLI run on.
    const { data } = decodeTensor(`output ${name}`, tensor) as { data: ArrayBufferView };
    bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  if (file === '-') {
    process.stdout.write(bytes);
    return;
  }
  try {
    await writeFile(file, bytes);
  } catch (e) {
    throw new GridError('GG_ERR_BAD_REQUEST', `--output: cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  process.stderr.write(`gogrid: wrote ${file} (${bytes.byteLength} bytes)\n`);
}

/** How long a job waited for a worker and ran (its last attempt), so far if it still does: "-" for what has not begun. */
function timesOf(j: Pick<JobInfo, 'submittedAt' | 'startedAt' | 'finishedAt'>, now: number): { waited: string; ran: string } {
  const submitted = Date.parse(j.submittedAt);
  const started = j.startedAt === null ? null : Date.parse(j.startedAt);
  const finished = j.finishedAt === null ? null : Date.parse(j.finishedAt);
  const waited = formatDuration((started ?? finished ?? now) - submitted);
  return { waited, ran: started === null ? '-' : formatDuration((finished ?? now) - started) };
}
