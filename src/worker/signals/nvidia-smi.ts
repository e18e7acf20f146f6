/**
 * Other programs' use of NVIDIA GPUs, how hot they run and their free
 * memory, for the polite worker's GPU rules and the heartbeat: read from `nvidia-smi` (the NVML tool the driver
 * installs on Linux and Windows). Where it is missing (no NVIDIA driver,
 * macOS) or fails, both readings are unknown, and after a missing binary it
 * is not looked for again.
 *
 *   const gpu = nvidiaReader(() => [process.pid, ...runner.pids()]);
 *   const { gpuBusy, gpuTempC, freeVramMiB } = await gpu();   // e.g. { gpuBusy: 0.64, gpuTempC: 71, freeVramMiB: 9120 }
 *
 * NVML reports a GPU's utilisation as a whole, not per process for every
 * driver, so the busy share counts as other programs' only while no process
 * of this worker holds a GPU context (`--query-compute-apps`); while one does
 * it is unknown. A reading is reused for `maxAgeMs`: nvidia-smi takes tens of
 * milliseconds of CPU. (systeminformation's `graphics()` reads the same two
 * values through nvidia-smi, but runs lspci and more at every call and knows
 * nothing of which processes hold the GPU.)
 */
import { execFile } from 'node:child_process';

export interface GpuReadings {
  gpuBusy: number | null;
  gpuTempC: number | null;
  /** Free memory of the GPU with the most, MiB (for the heartbeat: the scheduler's view of what a job can still get). */
  freeVramMiB: number | null;
}

export interface NvidiaReaderOptions {
  /** Runs nvidia-smi with these arguments, resolving to its stdout. @default execFile('nvidia-smi', …) with a 3 s timeout */
  run?: (args: string[]) => Promise<string>;
  /** @default 5000 */
  maxAgeMs?: number;
  now?: () => number;
}

const UNKNOWN: GpuReadings = { gpuBusy: null, gpuTempC: null, freeVramMiB: null };
const QUERY_GPUS = ['--query-gpu=utilization.gpu,temperature.gpu,memory.free', '--format=csv,noheader,nounits'];
const QUERY_APPS = ['--query-compute-apps=pid', '--format=csv,noheader'];

export function nvidiaReader(ownPids: () => readonly number[], opts: NvidiaReaderOptions = {}): () => Promise<GpuReadings> {
  const run = opts.run ?? runNvidiaSmi;
  const maxAgeMs = opts.maxAgeMs ?? 5000;
  const now = opts.now ?? Date.now;
  let absent = false;
  let last: { atMs: number; readings: GpuReadings } | null = null;
  return async () => {
    if (absent) return UNKNOWN;
    if (last && now() - last.atMs < maxAgeMs) return last.readings;
    let readings: GpuReadings;
    try {
      const [gpus, apps] = await Promise.all([run(QUERY_GPUS), run(QUERY_APPS)]);
      readings = gpuReadings(parseGpuRows(gpus), parsePids(apps), new Set(ownPids()));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') absent = true;
      readings = UNKNOWN;
    }
    last = { atMs: now(), readings };
    return readings;
  };
}

export interface GpuRow {
  busy: number | null;
  tempC: number | null;
  freeMiB: number | null;
}

/** Each GPU's utilisation (0..1), temperature (°C) and free memory (MiB) from `--query-gpu=utilization.gpu,temperature.gpu,memory.free` CSV; a field nvidia-smi cannot read ("[N/A]") is null. */
export function parseGpuRows(text: string): GpuRow[] {
  return text
    .split(/\r?\n/)
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [busy = null, tempC = null, freeMiB = null] = l.split(',').map((f) => field(f));
      // Anything outside what a GPU can report is a garbled line, not a reading.
      return {
        busy: busy === null || busy < 0 || busy > 100 ? null : busy / 100,
        tempC: tempC === null || tempC < -50 || tempC > 200 ? null : tempC,
        freeMiB: freeMiB === null || freeMiB < 0 || freeMiB > 2 ** 30 ? null : Math.floor(freeMiB),
      };
    });
}

/** The pids of `--query-compute-apps=pid` output (none: an empty list). */
export function parsePids(text: string): number[] {
  return text
    .split(/\r?\n/)
    .map((l) => field(l))
    .filter((n): n is number => n !== null && Number.isInteger(n));
}

/** The busiest GPU's share as other programs' (unknown while a process of ours holds a GPU), and the hottest GPU's temperature. */
export function gpuReadings(gpus: readonly GpuRow[], computePids: readonly number[], own: ReadonlySet<number>): GpuReadings {
  const ours = computePids.some((p) => own.has(p));
  const max = (xs: (number | null)[]) => {
    const known = xs.filter((x): x is number => x !== null);
    return known.length > 0 ? Math.max(...known) : null;
  };
  return { gpuBusy: ours ? null : max(gpus.map((g) => g.busy)), gpuTempC: max(gpus.map((g) => g.tempC)), freeVramMiB: max(gpus.map((g) => g.freeMiB)) };
}

function field(raw: string | undefined): number | null {
  const t = (raw ?? '').trim();
  if (!/^-?\d+(\.\d+)?$/.test(t)) return null;
  return Number(t);
}

function runNvidiaSmi(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('nvidia-smi', args, { timeout: 3000, windowsHide: true }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
}
