/**
 * Every sentence the policy shows a person, in one place, so the wording can
 * be read (and one day translated) as a whole. One short sentence each,
 * saying what is happening, not which rule fired.
 *
 *   reasons.onBattery(38)  // "On battery (38 %)"
 */

/** Rules compare whole percents, the numbers shown here, so a sentence never contradicts its rule ("50 %" while the limit is "over 50 %"). */
export const wholePercent = (p: number) => Math.round(p);
const percent = (p: number) => `${wholePercent(p)} %`;

/** 360_000 → "6 min"; 3_900_000 → "1 h 5 min". Whole minutes, rounded down, as a clock would show. */
export function formatDuration(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (h === 0) return `${m} min`;
  return m === 0 ? `${h} h` : `${h} h ${m} min`;
}

/** Adds a note in parentheses, inside the sentence's own trailing parentheses if it has them. */
export function withNote(text: string, note: string | null): string {
  if (note === null) return text;
  return text.endsWith(')') ? `${text.slice(0, -1)}; ${note})` : `${text} (${note})`;
}

export const reasons = {
  adminPaused: (message: string | null) => (message === null ? 'Paused by the administrator' : `Paused by the administrator: ${message}`),
  userPaused: 'Paused by you',
  snoozed: (until: string) => `Snoozed until ${until}`,
  finishing: 'Finishing the current job, then pausing',
  outsideSchedule: (opens: string, byAdmin: boolean) => `Outside ${byAdmin ? 'the' : 'your'} schedule (runs ${opens})`,
  onBattery: (charge: number | null) => (charge === null ? 'On battery' : `On battery (${percent(charge)})`),
  chargeUnknown: 'On battery (charge unknown)',
  batteryLow: (charge: number | null) =>
    charge === null ? 'Battery low: waiting for the charger' : `Battery low (${percent(charge)}): waiting for the charger`,
  inUse: 'You are using this computer',
  inUseUnknown: 'Cannot tell whether you are using this computer (no input or screen-lock signal here): choose Dedicated, or Custom with "Run while I use this computer"',
  cpuBusy: (usePercent: number) => `Other programs are using ${percent(usePercent)} of the CPU`,
  cpuWasBusy: (usePercent: number) => `Other programs were just using ${percent(usePercent)} of the CPU`,
  runningDedicated: 'Always on: this computer is dedicated to the grid',
  runningIdle: (idleMs: number) => `Running: this computer has been idle for ${formatDuration(idleMs)}`,
  runningLocked: 'Running: the screen is locked',
  runningInUse: (gpuWaits: boolean) => (gpuWaits ? 'Running while you use this computer, without the GPU' : 'Running while you use this computer'),
  runningUnknownUse: (gpuWaits: boolean) =>
    gpuWaits ? 'Running without the GPU: cannot tell whether you are using this computer' : 'Running, whether or not you are using this computer',
  /** Why jobs may not use the GPU while the worker runs (the coordinator sends GPU jobs elsewhere meanwhile). */
  gpuOffByYou: 'GPU off: you turned it off',
  gpuOffByAdmin: 'GPU off: turned off by your administrator',
  gpuOffInRules: (byAdmin: boolean) => `GPU off in ${byAdmin ? 'the rules set by your administrator' : 'your settings'}`,
  gpuWaitsUntilAway: 'GPU jobs wait until you are away',
  gpuWaitsUnknownUse: 'GPU jobs wait: cannot tell whether you are using this computer',
  gpuBusy: (usePercent: number) => `Other programs are using the GPU (${percent(usePercent)})`,
  gpuWasBusy: (usePercent: number) => `Other programs were just using the GPU (${percent(usePercent)})`,
  gpuHot: (tempC: number, resumeBelowC: number) => `GPU at ${Math.round(tempC)} °C: GPU jobs wait until it cools below ${resumeBelowC} °C`,
  /** Notes added to a reason when the administrator's layer decided it. */
  adminRule: 'rule set by your administrator',
  adminSettings: (rules: boolean, limits: boolean) =>
    rules && limits ? 'rules and limits set by your administrator' : rules ? 'rules set by your administrator' : limits ? 'limits set by your administrator' : null,
} as const;
