/**
 * Entry point of a job process, forked by job-child.ts; never imported. It
 * receives `run` messages over IPC, runs each with its executor (one at a
 * time, or several at once for a shared executor such as the LLM's), and
 * answers with progress, then a result or a failure
 * (src/worker/executors/ipc.ts). Between jobs it waits, warm, for the next
 * job of its kind (job-pool.ts); executors may keep caches across jobs (the
 * ONNX executor keeps its last sessions).
 *
 *   fork('job-process.js', [], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }).send({ type: 'run', … });
 *
 * The process is killed on cancel and timeout (a shared one is first sent
 * `cancel`, and killed only if the job does not stop), and exits when the worker
 * closes the channel (idle too long, recycled, shut down, or the worker
 * died). It installs no SIGTERM handler: the default action ends it at once
 * even while native code holds the thread.
 */
import { Worker } from 'node:worker_threads';
import { isGridError } from '../../protocol/errors.js';
import { ToJobProcess, type FromJobProcess, type RunMessage } from './ipc.js';
import { reniceOwnThreads } from './priority.js';
import { EXECUTORS } from './registry.js';
import { GatheredPieces } from './gathered-pieces.js';
import { MEMORY_CHECK_MS, MEMORY_LIMIT_ENV, MEMORY_LIMIT_MARK } from './memory-limit.js';
import type { Executor } from './types.js';

const MAX_MESSAGE = 4000;

const channel = process.send?.bind(process);
if (!channel) {
  console.error('job-process is started by the worker (job-pool.ts) over IPC, not by hand');
  process.exit(2);
}

// The worker lowered the main thread; node's own threads started before that.
reniceOwnThreads();

// A job process whose worker died (kill -9, out of memory) must stop at once,
// not compute on for nobody, and one past its memory limit before the machine
// runs out (memory-limit.ts). 'disconnect' needs the event loop, which a
// runtime's native call may hold for minutes, so a thread of its own watches:
// the parent gone (reparented, or no such process), or the resident memory
// over the limit, it ends this process. The line about the memory goes
// straight to fd 2: the main thread relays a thread's stderr, and may be busy.
const memoryLimit = Number(process.env[MEMORY_LIMIT_ENV] ?? 0);
new Worker(
  `const parent = ${process.ppid};
  const limit = ${Number.isSafeInteger(memoryLimit) ? memoryLimit : 0};
  const mib = (b) => Math.round(b / 1048576);
  const gone = () => {
    if (process.ppid !== parent) return true;
    try { process.kill(parent, 0); return false; } catch (e) { return e.code === 'ESRCH'; }
  };
  let checks = 0;
  setInterval(() => {
    const rss = limit > 0 ? process.memoryUsage.rss() : 0;
    if (rss > limit && limit > 0) {
      require('node:fs').writeSync(2, ${JSON.stringify(MEMORY_LIMIT_MARK)} + ' (' + mib(rss) + ' MiB resident, limit ' + mib(limit) + ' MiB)\\n');
      process.kill(process.pid, 'SIGKILL');
    }
    if (++checks % ${Math.round(250 / MEMORY_CHECK_MS)} === 0 && gone()) process.kill(process.pid, 'SIGKILL');
  }, ${MEMORY_CHECK_MS});`,
  { eval: true },
).unref();

const disconnected = new AbortController();
process.on('disconnect', () => {
  disconnected.abort();
  process.exit(0);
});
process.on('message', (raw: unknown) => void handle(raw));

/** The jobs running now, each with its own cancel: one, or several for a shared executor (job-pool.ts decides). */
const running = new Map<string, AbortController>();

function send(msg: FromJobProcess): void {
  channel!(msg);
}

async function handle(raw: unknown): Promise<void> {
  const parsed = ToJobProcess.safeParse(raw);
  if (!parsed.success) {
    // The worker and this process come from one build; a bad message is a bug, and the exit code says so.
    console.error(`invalid message from the worker: ${parsed.error.message}`);
    process.exit(70);
  }
  const msg = parsed.data;
  // A cancel may cross the job's result in the pipe: for a job that has ended there is nothing to stop.
  if (msg.type === 'cancel') return running.get(msg.jobId)?.abort();
  const { kind, job } = msg;
  const executor = EXECUTORS.get(kind);
  const busy = running.size > 0 && !executor?.shared;
  if (running.has(job.jobId) || busy || running.size >= msg.slots) {
    console.error(`job ${job.jobId} sent while ${[...running.keys()].map((id) => `job ${id}`).join(', ')} ${running.size === 1 ? 'is' : 'are'} running`);
    process.exit(70);
  }
  const controller = new AbortController();
  running.set(job.jobId, controller);
  const pieces = new GatheredPieces(PIECES_EVERY_MS, (piece) => send({ type: 'partial', jobId: job.jobId, text: piece.text, ...(piece.tokens && { tokens: piece.tokens }) }));
  try {
    const last = await outcome(executor, msg, AbortSignal.any([disconnected.signal, controller.signal]), pieces);
    // Everything streamed goes before the result that holds it.
    pieces.flush();
    send(last);
  } finally {
    pieces.stop();
    running.delete(job.jobId);
  }
}

/**
 * How long an executor's pieces of output gather before they go to the
 * worker as one message, the first one aside. A message per token cost the
 * worker's main thread about as much CPU as llama.cpp spent on the tokens
 * (the tiny test model, two streams at 2,000 tokens/s), and the worker
 * gathers them again for the coordinator every 25 ms (PARTIAL_EVERY_MS), so
 * this adds no wait a client sees.
 */
const PIECES_EVERY_MS = 5;

/** The job's last message: its result, or why it failed. */
async function outcome(executor: Executor | undefined, { kind, job, modelPath, threads, slots, gpuBackends }: RunMessage, signal: AbortSignal, pieces: GatheredPieces): Promise<FromJobProcess> {
  if (!executor) return { type: 'failed', jobId: job.jobId, code: 'GG_ERR_EXECUTOR_UNAVAILABLE', message: `no executor for job kind "${kind}"` };
  try {
    const output = await executor.run(job, {
      modelPath,
      threads,
      slots,
      gpuBackends,
      signal,
      onProgress(progress, message) {
        if (!Number.isFinite(progress)) return;
        const p = Math.min(1, Math.max(0, progress));
        send({ type: 'progress', jobId: job.jobId, progress: p, ...(message !== undefined && { message: message.slice(0, 1000) }) });
      },
      onPartial: (piece) => pieces.add(piece),
    });
    return { type: 'result', jobId: job.jobId, output };
  } catch (err) {
    // However the runtime words its abort, a job stopped by a cancel was canceled.
    if (signal.aborted) return { type: 'failed', jobId: job.jobId, code: 'GG_ERR_JOB_CANCELED', message: `job ${job.jobId} was canceled` };
    if (isGridError(err)) return { type: 'failed', jobId: job.jobId, code: err.code, message: err.message.slice(0, MAX_MESSAGE) };
    console.error(err);
    const message = `${kind} executor failed: ${err instanceof Error ? err.message : String(err)}`;
    return { type: 'failed', jobId: job.jobId, code: 'GG_ERR_INTERNAL', message: message.slice(0, MAX_MESSAGE) };
  }
}
