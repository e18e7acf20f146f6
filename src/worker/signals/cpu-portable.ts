/**
 * Other programs' CPU share where there is no /proc (macOS, Windows): the
 * machine's busy time from os.cpus(), minus this process's own from
 * process.cpuUsage(). Node has no cheap way to read another process's CPU
 * time there (systeminformation spawns ps or PowerShell, 10-500 ms a call,
 * and its macOS figure is ps's decaying per-core average), so while a job
 * process runs the reading is unknown rather than wrong: the policy ignores
 * an unknown CPU share.
 *
 *   const meter = portableCpuMeter(() => [process.pid]);
 */
import { cpus } from 'node:os';
import type { CpuMeter } from './cpu-meter.js';

export function portableCpuMeter(ownPids: () => readonly number[]): CpuMeter {
  let last = { ...machineMs(), self: selfMs() };
  return {
    sample() {
      const now = { ...machineMs(), self: selfMs() };
      const total = now.total - last.total;
      const busy = now.busy - last.busy;
      const self = now.self - last.self;
      last = now;
      const pids = ownPids();
      if (total <= 0 || pids.some((pid) => pid !== process.pid)) return null;
      const own = pids.includes(process.pid) ? self : 0;
      return Math.min(1, Math.max(0, (busy - own) / total));
    },
  };
}

/** Summed over all logical CPUs, in ms. */
function machineMs(): { total: number; busy: number } {
  let total = 0;
  let idle = 0;
  for (const { times } of cpus()) {
    total += times.user + times.nice + times.sys + times.idle + times.irq;
    idle += times.idle;
  }
  return { total, busy: total - idle };
}

function selfMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
