/**
 * Signals without Electron: battery from systeminformation, other programs'
 * CPU share from /proc (Linux) or os.cpus(), idle time from X11 where
 * `xprintidle` works, NVIDIA GPUs' use and temperature from nvidia-smi. The screen lock has no headless source: always unknown.
 *
 *   const source = headlessSignals({ ownPids: () => [process.pid, ...runner.pids()] });
 *   const readings = await source.read();   // every ~2 s; the CPU share covers the time since the last read
 *   source.close();
 */
import { batteryReader } from './battery.js';
import { cpuMeter, type CpuMeterKind } from './cpu-meter.js';
import type { SignalReadings, SignalSource } from './source.js';
import { nvidiaReader, type GpuReadings } from './nvidia-smi.js';
import { x11IdleReader } from './x11-idle.js';

export interface HeadlessSignalOptions {
  /** This worker's processes (itself and its job processes): their CPU is not "other programs". */
  ownPids: () => readonly number[];
  /** Battery readings younger than this are reused. @default 10_000 */
  batteryMaxAgeMs?: number;
  /** @default 'proc' on Linux, else 'portable' */
  cpu?: CpuMeterKind;
  /** Where DISPLAY, WAYLAND_DISPLAY and PATH are read. @default process.env */
  env?: NodeJS.ProcessEnv;
  /** Other programs' GPU use and its temperature. @default nvidia-smi's (nvidia-smi.ts) */
  gpu?: () => Promise<GpuReadings>;
}

export function headlessSignals(opts: HeadlessSignalOptions): SignalSource {
  const battery = batteryReader({ maxAgeMs: opts.batteryMaxAgeMs ?? 10_000 });
  const cpu = cpuMeter(opts.ownPids, opts.cpu);
  const idle = x11IdleReader(opts.env ?? process.env);
  const gpu = opts.gpu ?? nvidiaReader(opts.ownPids);
  const stop = new AbortController();
  return {
    async read(): Promise<SignalReadings> {
      const otherCpu = cpu.sample();
      const [power, idleSeconds, { gpuBusy, gpuTempC }] = await Promise.all([battery(), idle === null || stop.signal.aborted ? null : idle(stop.signal), gpu()]);
      return { idleSeconds, screenLocked: null, ...power, otherCpu, gpuBusy, gpuTempC };
    },
    close() {
      stop.abort();
    },
  };
}
