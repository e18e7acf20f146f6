/**
 * Fault injection with invariants, after FoundationDB's simulation tests and
 * Jepsen: a real coordinator and real workers as `gogrid` processes, a client
 * that submits jobs with retries, and, at moments drawn from a seeded random
 * schedule, kill -9 of the coordinator or a worker, SIGTERM of a worker, a
 * worker stalled with SIGSTOP, every UDP datagram between workers and the
 * coordinator lost for a few seconds, or the coordinator's disk (its embedded
 * database's) full to the last byte for a few seconds. When the faults stop, every acknowledged job
 * must reach exactly one final state, every succeeded one with the known
 * answer, and every worker must be back online.
 *
 *   const report = await runFaults({ seed: 42, faultMs: 40_000 });
 *   expect(report.violations).toEqual([]);      // replay a failure with the same seed
 *
 * The CI test runs a short form; `npm run soak -- --minutes 30` the long one.
 * The schedule is reproducible from the seed; the timing of real processes is
 * not, so a replay retraces the same faults, not the same interleaving.
 */
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { JobInfo, WorkerList } from '../../src/protocol/api.js';
import { isGridError } from '../../src/protocol/index.js';
import { requestJson } from '../../src/transport/https-client.js';
import { MLP, writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { flakyLink } from '../helpers/flaky-link.js';
import { runCli, tempDir, type CliProcess } from '../helpers/grid.js';
import { privateDisk } from '../helpers/private-disk.js';

export interface FaultOptions {
  seed: number;
  /** How long faults are injected; then the grid is left alone to finish. */
  faultMs: number;
  workers?: number;
  /** Default: the embedded database in the coordinator's data dir. */
  databaseUrl?: string;
  /** How long the grid gets to finish every acknowledged job once the faults stop. @default 120_000 */
  settleMs?: number;
  log?: (line: string) => void;
}

export interface FaultReport {
  seed: number;
  faults: Record<FaultKind, number>;
  /** Submits that got an answer (the job ids the invariants are checked on). */
  acknowledged: number;
  /** Submits that failed (coordinator down) and were tried again. */
  submitRetries: number;
  succeeded: number;
  failed: number;
  /** Every broken invariant, one sentence each; empty when the run held. */
  violations: string[];
  elapsedMs: number;
}

type FaultKind = 'coordinator-kill9' | 'worker-kill9' | 'worker-sigterm' | 'worker-sigstop' | 'udp-drop' | 'disk-full';
const FAULTS: FaultKind[] = ['coordinator-kill9', 'worker-kill9', 'worker-sigterm', 'worker-sigstop', 'udp-drop', 'disk-full'];
const FAST = ['--heartbeat-interval', '0.5', '--heartbeat-timeout', '3'];
/** Enough that the worker kills of a run cannot use up a job's attempts. */
const MAX_ATTEMPTS = 50;

/** A seeded PRNG (mulberry32): the same seed, the same schedule. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** y = relu(x · w1 + b1) · w2 + b2, in float64: the answer every MLP job must come back with. */
function mlp(x: number[]): number[] {
  const h = MLP.b1.map((b, j) => Math.max(0, b + x.reduce((s, xi, i) => s + xi * MLP.w1[i]![j]!, 0)));
  return MLP.b2.map((b, k) => b + h.reduce((s, hj, j) => s + hj * MLP.w2[j]![k]!, 0));
}

/** What a process that died said last, without Node's closing version line and the stack. */
function lastWords(p: CliProcess): string {
  const lines = p.stderr().trim().split('\n').filter((l) => l.trim() !== '' && !/^\s+at |^Node\.js v/.test(l));
  return lines.slice(-3).join(' | ').slice(0, 1000);
}

/** A field of /proc/PID/status (`State`, `VmRSS`…); null where there is none (not Linux, or the process is gone). */
function procStatus(pid: number | undefined, field: string): string | null {
  try {
    return new RegExp(`^${field}:\\s+(.+)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
}

/** A process's resident memory in MiB, or null. */
function rssMiB(pid: number | undefined): number | null {
  const kib = /^(\d+) kB/.exec(procStatus(pid, 'VmRSS') ?? '')?.[1];
  return kib === undefined ? null : Math.round(Number(kib) / 1024);
}

/** Room for sessions, PGlite's buffers and V8's heap to settle; a leak of the jobs' data is more. */
const RSS_SLACK_MIB = 256;

/**
 * The checker's own reads, tried again as any client would when an answer is
 * refused for a moment (its connection reset by the per-address limit it
 * shares with the workers behind the relay, all on 127.0.0.1). A coordinator
 * that stays unreachable still fails the run, after 20 s.
 */
async function patiently<T>(read: () => Promise<T>): Promise<T> {
  for (const started = Date.now(); ; ) {
    try {
      return await read();
    } catch (e) {
      if (!isGridError(e) || !e.retryable || Date.now() - started > 20_000) throw e;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

const exited = (p: CliProcess) => p.child.exitCode !== null || p.child.signalCode !== null;

export async function runFaults(opts: FaultOptions): Promise<FaultReport> {
  // Whatever a run started goes with it, also when it throws halfway (a coordinator that never came up).
  const leftovers: (() => Promise<unknown>)[] = [];
  try {
    return await faultRun(opts, leftovers);
  } finally {
    for (const undo of leftovers.reverse()) await undo().catch(() => undefined);
  }
}

async function faultRun(opts: FaultOptions, leftovers: (() => Promise<unknown>)[]): Promise<FaultReport> {
  const started = Date.now();
  const rand = random(opts.seed);
  const log = opts.log ?? (() => undefined);
  const dir = await tempDir('gogrid-faults-');
  const coordDir = join(dir, 'coordinator');
  const faults = Object.fromEntries(FAULTS.map((f) => [f, 0])) as Record<FaultKind, number>;
  const violations: string[] = [];
  const children: CliProcess[] = [];
  leftovers.push(async () => {
    for (const p of children) if (!exited(p)) p.child.kill('SIGKILL');
    await Promise.all(children.map((p) => p.exited));
  });
  const spawn = (args: string[], via?: readonly string[]) => {
    const p = runCli([...args, '--log-format', 'json', '--log-level', 'warn'], {}, { via });
    children.push(p);
    return p;
  };

  // ---------------------------------------------------------------- the grid
  // The coordinator's data dir (its embedded database too) is on a small disk of its own, which the disk-full fault fills.
  await mkdir(coordDir);
  const disk = await privateDisk(coordDir, 256);
  if ('close' in disk) leftovers.push(() => disk.close());
  if ('unavailable' in disk) {
    if (process.env['CI']) throw new Error(`the disk-full fault cannot run: ${disk.unavailable}`);
    // One line on a developer's machine without Linux namespaces; the other faults still run.
    console.warn(`no disk-full faults: ${disk.unavailable}`);
  }
  const kinds = FAULTS.filter((k) => k !== 'disk-full' || !('unavailable' in disk));
  let port = 0;
  const startCoordinator = async () => {
    const db = opts.databaseUrl ? ['--database', opts.databaseUrl] : [];
    const p = spawn(['coordinator', '--data', coordDir, '--bind', '127.0.0.1', '--port', String(port), ...FAST, ...db], 'via' in disk ? disk.via : undefined);
    await p.waitFor(/listening on 127\.0\.0\.1:\d+/);
    port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(p.stdout())![1]);
    startedRss = rssMiB(p.child.pid);
    return p;
  };
  let startedRss: number | null = null;
  let coordinator = await startCoordinator();
  // Workers dial the coordinator through a link that can lose every datagram for a while.
  const link = await flakyLink(() => port);
  leftovers.push(() => link.close());
  const onDisk = (path: string) => ('outside' in disk ? disk.outside(path) : path);
  const ca = await readFile(onDisk(join(coordDir, 'ca.crt')), 'utf8');
  const key = (await readFile(onDisk(join(coordDir, 'admin.key')), 'utf8')).trim();
  const api = (method: 'GET' | 'POST', path: string, body?: unknown) =>
    requestJson({ url: `https://127.0.0.1:${port}${path}`, method, body, ca, headers: { authorization: `Bearer ${key}` }, timeoutMs: 10_000 });

  const modelFile = writeOnnxFixtures(join(dir, 'models')).mlp;
  const { sha256 } = (await requestJson({
    url: `https://127.0.0.1:${port}/v1/models?name=mlp.onnx`,
    method: 'POST',
    body: createReadStream(modelFile),
    bodyLength: (await stat(modelFile)).size,
    ca,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream' },
  })) as { sha256: string };
  const count = opts.workers ?? 2;
  // Every start passes the token: a worker killed before it stored its identity enrolls again (a
  // worker ignores a token it has used). Uses to spare for enrollments a kill cut short.
  const { token } = (await api('POST', '/v1/tokens', { maxUses: count * 100, ttlSecs: 3600 })) as { token: string };
  const workerDirs = Array.from({ length: count }, (_, i) => join(dir, `worker-${i}`));
  const startWorker = (i: number) => spawn(['worker', '--data', workerDirs[i]!, '--slots', '1', '--threads', '1', '--coordinator', `127.0.0.1:${link.port}`, '--token', token]);
  const workers = workerDirs.map((_, i) => startWorker(i));
  const stopped = new Set<number>();

  // ---------------------------------------------------------------- the client
  const expected = new Map<string, number[]>();
  let submitRetries = 0;
  let submitting = true;
  const client = (async () => {
    while (submitting) {
      const xs = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => [0, 1, 2, 3].map(() => Math.round((rand() * 8 - 4) * 4) / 4));
      const jobs = xs.map((x) => ({ model: { sha256 }, input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: x } } }, maxAttempts: MAX_ATTEMPTS, timeoutMs: 30_000 }));
      try {
        const answer = (await api('POST', '/v1/jobs', { jobs })) as { jobs: { id: string }[] };
        answer.jobs.forEach((j, i) => expected.set(j.id, mlp(xs[i]!)));
      } catch (e) {
        // Not acknowledged (the coordinator is down, its disk full): those jobs are not promised; try the next batch.
        submitRetries++;
        // No fault is a bug: each has its own answer (GG_ERR_OUT_OF_RESOURCES for a full disk), never "internal error".
        if (isGridError(e) && e.code === 'GG_ERR_INTERNAL') violations.push(`a submit was answered ${e.code}: ${e.message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100 + rand() * 200));
    }
  })();

  // ---------------------------------------------------------------- the faults
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  let diskFreed: Promise<void> | null = null;
  while (Date.now() - started < opts.faultMs) {
    await pause(1000 + rand() * 2500);
    // A coordinator that dies of a fault it should ride out (a full disk) is a violation; restarted, as systemd would.
    if (exited(coordinator)) {
      violations.push(`the coordinator exited on its own (code ${coordinator.child.exitCode}): ${lastWords(coordinator)}`);
      await diskFreed;
      coordinator = await startCoordinator();
    }
    const kind = kinds[Math.floor(rand() * kinds.length)]!;
    const i = Math.floor(rand() * count);
    faults[kind]++;
    log(`${((Date.now() - started) / 1000).toFixed(1)} s: ${kind}${kind.startsWith('worker') ? ` ${i}` : ''}`);
    switch (kind) {
      case 'coordinator-kill9':
        coordinator.child.kill('SIGKILL');
        await coordinator.exited;
        await pause(rand() * 1000);
        // A coordinator that cannot start on a full disk is not what this fault is about.
        await diskFreed;
        coordinator = await startCoordinator();
        break;
      case 'worker-kill9':
      case 'worker-sigterm': {
        const w = workers[i]!;
        stopped.delete(i);
        w.child.kill(kind === 'worker-kill9' ? 'SIGKILL' : 'SIGTERM');
        // A stalled worker gets the signal once it runs again (a SIGCONT after it, so it cannot be lost).
        w.child.kill('SIGCONT');
        if (kind === 'worker-sigterm' && (await Promise.race([w.exited.then(() => true), pause(30_000).then(() => false)])) === false) {
          violations.push(`worker ${i} did not exit within 30 s of SIGTERM (state ${procStatus(w.child.pid, 'State') ?? '?'})`);
          w.child.kill('SIGKILL');
        }
        await w.exited;
        await pause(rand() * 1000);
        workers[i] = startWorker(i);
        break;
      }
      case 'worker-sigstop': {
        if (stopped.has(i) || exited(workers[i]!)) break;
        const w = workers[i]!;
        w.child.kill('SIGSTOP');
        stopped.add(i);
        // Stalled past the heartbeat timeout or not, at random; resumed in the background.
        void pause(500 + rand() * 5000).then(() => {
          if (stopped.delete(i)) w.child.kill('SIGCONT');
        });
        break;
      }
      case 'disk-full': {
        if (!('via' in disk) || diskFreed !== null) break;
        // Held full for a while, then freed in the background, as a stall is.
        await disk.fill();
        const freeIn = 1000 + rand() * 4000;
        diskFreed = pause(freeIn).then(async () => {
          await disk.free();
          diskFreed = null;
        });
        break;
      }
      case 'udp-drop':
        // Past the workers' unanswered-heartbeat deadline and the coordinator's heartbeat timeout, or not, at random.
        link.dropUdp = true;
        void pause(1000 + rand() * 5000).then(() => (link.dropUdp = false));
        break;
    }
  }

  // ---------------------------------------------------------------- settle, then check
  submitting = false;
  await client;
  link.dropUdp = false;
  await diskFreed;
  for (const i of stopped) workers[i]!.child.kill('SIGCONT');
  stopped.clear();
  for (const [i, w] of workers.entries()) {
    if (!exited(w)) continue;
    violations.push(`worker ${i} exited on its own (code ${w.child.exitCode}): ${w.stderr().trim().split('\n').at(-1) ?? ''}`);
    workers[i] = startWorker(i);
  }
  const deadline = Date.now() + (opts.settleMs ?? 120_000);
  const final = new Map<string, JobInfo>();
  while (final.size < expected.size && Date.now() < deadline) {
    for (const id of expected.keys()) {
      if (final.has(id)) continue;
      const job = JobInfo.parse(await patiently(() => api('GET', `/v1/jobs/${id}`)));
      if (['succeeded', 'failed', 'canceled'].includes(job.state)) final.set(id, job);
    }
    if (final.size < expected.size) await pause(500);
  }
  let succeeded = 0;
  let failed = 0;
  for (const [id, want] of expected) {
    const job = final.get(id);
    if (!job) {
      violations.push(`${id}: acknowledged but not final ${opts.settleMs ?? 120_000} ms after the faults stopped`);
      continue;
    }
    const events = job.events ?? [];
    const ends = events.filter((e) => ['succeeded', 'failed', 'canceled'].includes(e.state));
    if (ends.length !== 1) violations.push(`${id}: ${ends.length} final states in its history (${ends.map((e) => e.state).join(', ')})`);
    if (events.at(-1)?.state !== job.state) violations.push(`${id}: history goes on after its final state ${job.state}`);
    if (job.state === 'failed') {
      failed++;
      violations.push(`${id}: failed after ${job.attempt} attempts: ${job.error?.code}: ${job.error?.message}`);
      continue;
    }
    succeeded++;
    const got = (job.output as { outputs?: { y?: { data?: unknown[] } } } | undefined)?.outputs?.y?.data;
    const close = Array.isArray(got) && got.length === want.length && got.every((v, k) => typeof v === 'number' && Math.abs(v - want[k]!) <= 1e-4 * (1 + Math.abs(want[k]!)));
    if (!close) violations.push(`${id}: output ${JSON.stringify(got)} is not the known answer ${JSON.stringify(want)}`);
  }

  // Memory returns to its baseline: what the coordinator holds once every job is final is what it held as it
  // started, plus its sessions and database caches; a leak of what the jobs carried would show here.
  const endRss = rssMiB(coordinator.child.pid);
  log(`coordinator memory: ${startedRss} MiB at its start, ${endRss} MiB with every job final`);
  if (startedRss !== null && endRss !== null && endRss - startedRss > RSS_SLACK_MIB) {
    violations.push(`the coordinator's memory grew from ${startedRss} MiB at its start to ${endRss} MiB with every job final`);
  }

  // No session left stuck: every worker comes back online.
  const onlineBy = Date.now() + 20_000;
  let online = 0;
  while (Date.now() < onlineBy) {
    online = WorkerList.parse(await patiently(() => api('GET', '/v1/workers'))).filter((w) => w.state === 'online').length;
    if (online === count) break;
    await pause(250);
  }
  if (online !== count) violations.push(`${count - online} of ${count} workers not online 20 s after the faults stopped`);

  for (const p of children) if (!exited(p)) p.child.kill('SIGTERM');
  await Promise.all(children.map((p) => Promise.race([p.exited, pause(10_000).then(() => p.child.kill('SIGKILL'))])));
  return { seed: opts.seed, faults, acknowledged: expected.size, submitRetries, succeeded, failed, violations, elapsedMs: Date.now() - started };
}
