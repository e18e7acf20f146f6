/**
 * Signal adapters (issue 5): what the policy knows about the machine, behind
 * one interface the core defines. Headless readers here; the Electron main
 * process pushes powerMonitor's readings into `pushedSignals`; tests script
 * them with test/helpers/scripted-signals.ts.
 *
 *   const source = headlessSignals({ ownPids: () => [process.pid, ...jobPids()] });
 *   const signals: Signals = { ...(await source.read()), control, jobRunning };
 */
export { headlessSignals, type HeadlessSignalOptions } from './headless.js';
export { pushedSignals, type PushedSignals } from './pushed.js';
export { SignalReadings, UNKNOWN_READINGS, type SignalSource } from './source.js';
export type { CpuMeterKind } from './cpu-meter.js';
