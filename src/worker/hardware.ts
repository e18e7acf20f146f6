/**
 * What this machine has, for the `hello` frame, and how busy it is, for
 * heartbeats: via `systeminformation`, CPU use from Node's own counters.
 *
 *   const hardware = await collectHardware();            // never throws; unknowns are null
 *   const { cpu, freeMemoryBytes } = await sampleLoad();
 *
 * Collecting (slow, runs OS tools) and mapping (pure) are split so the
 * mapping can be tested on recorded raw output from machines we do not have.
 */
import os from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import si from 'systeminformation';
import { z } from 'zod';
import { HardwareReport, type BackendProbe, type GpuInfo } from '../protocol/messages.js';
import { cleanText } from '../protocol/text.js';
import { cgroupMemoryLimitBytes } from './executors/memory-limit.js';
import { nvidiaReader } from './signals/nvidia-smi.js';

export interface HardwareOptions {
  /**
   * Limit per probe, in ms. `si.graphics()` runs external tools
   * (nvidia-smi, system_profiler, PowerShell) that can hang; a probe past the
   * limit yields nulls for its part of the report.
   * @default 5000
   */
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 5000;

/** Raw probe results; a probe that failed or timed out is null. */
export interface RawHardware {
  /**
   * From Node itself: instant, cannot hang, and `platform` uses the names job
   * requirements match on (systeminformation says 'Windows' for win32).
   */
  node: { platform: string; arch: string; hostname: string };
  cpu: unknown;
  mem: unknown;
  graphics: unknown;
  osInfo: unknown;
  /** The cgroup's memory limit in bytes (Linux), null when none; absent from fixtures recorded before it. */
  cgroupMemoryLimit?: number | null;
}

export async function collectHardware(options: HardwareOptions = {}): Promise<HardwareReport> {
  return toHardwareReport(await collectRawHardware(options));
}

/** The raw material of `collectHardware`, e.g. to record a fixture from a new machine. */
export async function collectRawHardware(options: HardwareOptions = {}): Promise<RawHardware> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const [cpu, mem, graphics, osInfo, cgroupMemoryLimit] = await Promise.all([
    boundedProbe(() => si.cpu(), timeoutMs),
    boundedProbe(() => si.mem(), timeoutMs),
    boundedProbe(() => si.graphics(), timeoutMs),
    boundedProbe(() => si.osInfo(), timeoutMs),
    cgroupMemoryLimitBytes(),
  ]);
  return { node: { platform: process.platform, arch: process.arch, hostname: os.hostname() }, cpu, mem, graphics, osInfo, cgroupMemoryLimit };
}

/**
 * Whole-machine CPU use (0..1) since the previous call, and available memory.
 * The first call in a process measures over FIRST_SAMPLE_MS (so it takes that
 * long).
 */
export async function sampleLoad(options: HardwareOptions = {}): Promise<{ cpu: number | null; freeMemoryBytes: number | null; freeVramMiB?: number | null }> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!lastTicks) {
    lastTicks = cpuTicks(os.cpus());
    await delay(FIRST_SAMPLE_MS);
  }
  const ticks = cpuTicks(os.cpus());
  const cpu = cpuShare(lastTicks, ticks);
  lastTicks = ticks;
  const [mem, gpu] = await Promise.all([boundedProbe(() => si.mem(), timeoutMs), nvidia()]);
  // `available` counts reclaimable page cache as free, unlike `free`.
  return { cpu, freeMemoryBytes: count(record(mem).available), ...(gpu.freeVramMiB !== null && { freeVramMiB: gpu.freeVramMiB }) };
}

/** CPU time of all cores together, in ms: busy and in all. */
export interface CpuTicks {
  busy: number;
  total: number;
}

let lastTicks: CpuTicks | undefined;
/** Free VRAM for the heartbeat; which processes hold the GPU does not matter here. */
const nvidia = nvidiaReader(() => []);
const FIRST_SAMPLE_MS = 250;

/**
 * From Node's own counters (os.cpus()), not systeminformation's currentLoad:
 * on Linux that runs `cat /proc/stat | grep cpu` through execSync, which held
 * the worker's event loop (and the tokens it relays) for 10 to 50 ms at every
 * heartbeat under load: 1.4 s of a streaming worker's 11 s of CPU, profiled.
 */
export function cpuTicks(cpus: readonly Pick<os.CpuInfo, 'times'>[]): CpuTicks {
  let busy = 0;
  let total = 0;
  for (const { times: t } of cpus) {
    const all = t.user + t.nice + t.sys + t.idle + t.irq;
    total += all;
    busy += all - t.idle;
  }
  return { busy, total };
}

/** The busy share of the CPU time between two samples; null when no time passed (or the counters went back: a VM's). */
export function cpuShare(before: CpuTicks, after: CpuTicks): number | null {
  const total = after.total - before.total;
  if (!(total > 0)) return null;
  return Math.min(1, Math.max(0, (after.busy - before.busy) / total));
}

/** Resolves to the probe's value, or null if it rejects or outlasts `timeoutMs`. */
export async function boundedProbe<T>(probe: () => Promise<T>, timeoutMs: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  // A probe that loses the race still settles later; catch() keeps its rejection handled.
  const settled = Promise.resolve()
    .then(probe)
    .catch(() => null);
  try {
    return await Promise.race([settled, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- pure mapping

const AnyRecord = z.record(z.string(), z.unknown());

export function toHardwareReport(raw: RawHardware): HardwareReport {
  const cpu = record(raw.cpu);
  const osInfo = record(raw.osInfo);
  const platform = raw.node.platform;
  const controllers = z.array(z.unknown()).catch([]).parse(record(raw.graphics).controllers);
  return HardwareReport.parse({
    cpu: {
      manufacturer: text(cpu.manufacturer),
      brand: text(cpu.brand),
      physicalCores: count(cpu.physicalCores),
      threads: count(cpu.cores),
      speedGHz: positive(cpu.speed),
    },
    memory: { totalBytes: count(record(raw.mem).total), limitBytes: raw.cgroupMemoryLimit ?? null },
    gpus: controllers
      .map((c) => toGpu(record(c)))
      .filter((gpu) => gpu.vendor !== null || gpu.model !== null)
      .slice(0, 64),
    os: {
      platform,
      distro: text(osInfo.distro),
      release: text(osInfo.release),
      arch: raw.node.arch,
      hostname: text(raw.node.hostname),
    },
  });
}

/** Its backends are filled in from the runtimes' probes (`gpuBackends`), not guessed from the vendor. */
function toGpu(controller: Record<string, unknown>): GpuInfo {
  const vendor = text(controller.vendor);
  const model = text(controller.model);
  // Shared memory (Apple Silicon, integrated GPUs) is not dedicated VRAM; the
  // schema's vramMiB means dedicated. systeminformation reports MiB already.
  const vramMiB = controller.vramDynamic === true ? null : round(positive(controller.vram) ?? positive(controller.memoryTotal));
  return { vendor, model, vramMiB, backends: [] };
}

type Vendor = 'nvidia' | 'amd' | 'intel' | 'apple';

function vendorOf(vendor: string | null, model: string | null): Vendor | null {
  // Vendor first: a model name like "Intel(R) Arc(TM)" is unambiguous, but
  // lspci vendors are long ("Advanced Micro Devices, Inc. [AMD/ATI]").
  for (const name of [vendor, model]) {
    if (name === null) continue;
    if (/nvidia/i.test(name)) return 'nvidia';
    if (/\b(amd|ati|advanced micro devices)\b/i.test(name)) return 'amd';
    if (/intel/i.test(name)) return 'intel';
    if (/apple/i.test(name)) return 'apple';
  }
  return null;
}

/** Backends a software device (lavapipe, WARP, SwiftShader) can stand behind when no GPU is there. */
const PORTABLE = new Set(['webgpu', 'dml', 'vulkan']);

/**
 * The GPU backends a worker advertises, from what its runtimes' probes found:
 * a portable backend (WebGPU, DirectML) that worked on a machine where no GPU
 * was found ran on a software device, slower than the CPU backend itself,
 * and is used only where `allowSoftware` (GOGRID_SOFTWARE_GPU) says so.
 */
export function advertisedBackends(found: readonly BackendProbe[], gpus: readonly GpuInfo[], allowSoftware: boolean): BackendProbe[] {
  if (allowSoftware || hasRealGpu(gpus)) return [...found];
  return found.map((p) =>
    p.ok && PORTABLE.has(p.backend) ? { ...p, ok: false, detail: 'it ran on a software device (no GPU was found here); GOGRID_SOFTWARE_GPU=1 uses it anyway' } : p,
  );
}

/** Whether the OS lists a GPU by a known vendor: virtual adapters (virtio, VMware SVGA, Microsoft Basic Display) are none. */
export function hasRealGpu(gpus: readonly Pick<GpuInfo, 'vendor' | 'model'>[]): boolean {
  return gpus.some((g) => vendorOf(g.vendor, g.model) !== null);
}

/**
 * Which of the backends that work on this machine (`working`, by any
 * runtime) stand for this GPU: CUDA for NVIDIA's, Metal and Core ML for a
 * Mac's, the portable ones for any real GPU. Virtual adapters (virtio, VMware
 * SVGA, Microsoft Basic Display) get none. For the hardware report only: the
 * scheduler reads each runtime's own findings.
 */
export function gpuBackends(gpu: Pick<GpuInfo, 'vendor' | 'model'>, platform: string, working: readonly string[]): string[] {
  const vendor = vendorOf(gpu.vendor, gpu.model);
  if (vendor === null) return [];
  return [...new Set(working)].filter((b) => {
    if (b === 'cuda') return vendor === 'nvidia';
    if (b === 'metal' || b === 'coreml') return platform === 'darwin';
    return PORTABLE.has(b);
  });
}

// Raw values are whatever the OS tools printed: empty strings, zeros for
// "unknown", numbers as strings on some platforms. Everything unusable is null.

function record(value: unknown): Record<string, unknown> {
  const parsed = AnyRecord.safeParse(value);
  return parsed.success ? parsed.data : {};
}

/** What the OS says, as the protocol takes a name: firmware strings come NUL-padded and may hold other junk. */
function text(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const t = cleanText(value.replaceAll('\0', '').trim().slice(0, 256), true);
  return t === '' ? null : t;
}

function positive(value: unknown): number | null {
  const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : null;
}

function count(value: unknown): number | null {
  const n = positive(value);
  return n !== null && Number.isInteger(n) ? n : null;
}

function round(value: number | null): number | null {
  return value === null ? null : Math.round(value);
}
