/**
 * A worker simulator for the jobs benchmark: many real workers in one Node
 * process, each `startWorker` from the built dist/ with its own data dir,
 * enrollment, QUIC connection, model cache and warm job process (real
 * onnxruntime). Driven by the jobs suite over bench/lib/rpc.ts
 * (commands.ts).
 *
 *   const sim = procs.fork<SimCommand>(join(import.meta.dirname, 'sim-worker.ts'), 'sim 1');
 *   await sim.call({ type: 'start', distDir, coordinator, token, dirs, slots: 1, concurrency: 8 }, Started);
 *
 * Only the probes are fixed (one hardware report per process, a constant
 * load), so the simulator spends its CPU on jobs and the protocol, not on
 * systeminformation; and each worker carries its data dir's name as a label. Control frames are counted by type at two seams of the
 * dist/ classes, patched on their prototypes before any worker starts:
 * FrameDecoder.push (every frame the coordinator sent) and the send function
 * JobRunner.attach receives (every job.progress and job.result).
 */
import { pathToFileURL } from 'node:url';
import { basename, join } from 'node:path';
import { pino } from 'pino';
import type * as WorkerModule from '../../src/worker/worker.js';
import type * as FrameModule from '../../src/transport/frame.js';
import type * as RunnerModule from '../../src/worker/job-runner.js';
import type * as HardwareModule from '../../src/worker/hardware.js';
import type { HardwareReport } from '../../src/protocol/index.js';
import { serveRpc } from '../lib/rpc.js';
import { SimCommand } from './commands.js';

const silent = pino({ level: 'silent' });
const LOAD = { cpu: 0.05, freeMemoryBytes: 8 * 2 ** 30 };

const received: Record<string, number> = {};
const sent: Record<string, number> = {};
const count = (table: Record<string, number>, value: unknown) => {
  const type = typeof value === 'object' && value !== null && 'type' in value ? String(value.type) : '?';
  table[type] = (table[type] ?? 0) + 1;
};

let workers: WorkerModule.RunningWorker[] = [];
let patched = false;

async function load<T>(distDir: string, path: string): Promise<T> {
  return (await import(pathToFileURL(join(distDir, path)).href)) as T;
}

async function start(cmd: Extract<SimCommand, { type: 'start' }>): Promise<{ workerIds: string[] }> {
  const { startWorker } = await load<typeof WorkerModule>(cmd.distDir, 'worker/worker.js');
  const { collectHardware } = await load<typeof HardwareModule>(cmd.distDir, 'worker/hardware.js');
  if (!patched) {
    const { FrameDecoder } = await load<typeof FrameModule>(cmd.distDir, 'transport/frame.js');
    const { JobRunner } = await load<typeof RunnerModule>(cmd.distDir, 'worker/job-runner.js');
    const push = FrameDecoder.prototype.push;
    FrameDecoder.prototype.push = function (chunk) {
      const frames = push.call(this, chunk);
      for (const f of frames) count(received, f);
      return frames;
    };
    const attach = JobRunner.prototype.attach;
    JobRunner.prototype.attach = function (send) {
      attach.call(this, (msg) => {
        count(sent, msg);
        return send(msg);
      });
    };
    patched = true;
  }
  let hardware: Promise<HardwareReport> | undefined;
  const probes = { hardware: () => (hardware ??= collectHardware()), load: () => Promise.resolve(LOAD) };
  const ids: string[] = [];
  let next = 0;
  const lane = async () => {
    while (next < cmd.dirs.length) {
      const dataDir = cmd.dirs[next++]!;
      const w = await startWorker({
        dataDir,
        coordinator: cmd.coordinator,
        token: cmd.token,
        appVersion: '0.0.0-bench',
        logger: silent,
        agent: { probes },
        // One runtime thread per job: the machine has two cores for everything.
        // The data dir's name as a label lets the benchmark pin a warm-up job to this worker.
        jobs: { slots: cmd.slots, threads: 1, labels: [basename(dataDir)] },
      });
      workers.push(w);
      ids.push(w.identity.workerId);
      await w.agent.waitFor('online');
    }
  };
  await Promise.all(Array.from({ length: Math.min(cmd.concurrency, cmd.dirs.length) }, lane));
  return { workerIds: ids };
}

const stopAll = () => Promise.all(workers.map((w) => w.agent.stop()));
/** The benchmark went away (finished, failed or killed) or stops this process: take the workers down with it. */
const stopAndExit = () => void stopAll().finally(() => process.exit(0));

serveRpc(
  SimCommand,
  async (cmd) => {
    switch (cmd.type) {
      case 'start':
        return start(cmd);
      case 'frames':
        return { received: { ...received }, sent: { ...sent } };
      case 'reset-frames':
        for (const table of [received, sent]) for (const key of Object.keys(table)) delete table[key];
        return {};
      case 'stop':
        await stopAll();
        workers = [];
        return {};
    }
  },
  stopAndExit,
);
process.on('SIGTERM', stopAndExit);
