/**
 * Other programs' share of the CPU, 0..1 of the whole machine, over the
 * interval since the previous sample; null when unknown. The Linux meter reads
 * /proc; elsewhere the portable one does what it can.
 *
 *   const meter = cpuMeter(ownPids);
 *   every 2 s: signals.otherCpu = meter.sample();
 */
import { portableCpuMeter } from './cpu-portable.js';
import { procCpuMeter } from './cpu-proc.js';

export interface CpuMeter {
  sample(): number | null;
}

export type CpuMeterKind = 'proc' | 'portable';

export function cpuMeter(ownPids: () => readonly number[], kind: CpuMeterKind = process.platform === 'linux' ? 'proc' : 'portable'): CpuMeter {
  return kind === 'proc' ? procCpuMeter(ownPids) : portableCpuMeter(ownPids);
}
