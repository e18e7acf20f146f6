/**
 * What the worker host keeps across restarts, in `settings.json` in the data
 * dir: the owner's policy settings and pause, start at login, a moved
 * coordinator's address, and the last override the administrator sent (so an
 * administrator's pause holds while the coordinator is unreachable).
 *
 *   const settings = await loadHostSettings(dataDir, (problem) => logger.warn(problem));
 *   await saveHostSettings(dataDir, { ...settings, control: controlFor({ action: 'pause' }, Date.now(), busy) });
 *   await saveHostSettings(dataDir, settingsAfter(settings, update, { hasLoginItem: false }));   // throws: nothing saved
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AdminOverride, firstZodProblem, GridError, MAX_SNOOZE_MS, PolicySettings, UserControl, type ControlAction, type SettingsUpdate } from '../protocol/index.js';
import { isErrno, writeFileAtomic } from '../common/files.js';
import { parseCoordinatorAddress } from './address.js';
import { WORKER_DATA_DIR_ENV } from './paths.js';
import { compilePolicy } from './policy/index.js';

export const SETTINGS_FILE = 'settings.json';

export const HostSettings = z.object({
  /** Absent: the host's default preset (desktop in the app, dedicated headless). */
  policy: PolicySettings.optional(),
  control: UserControl.default({ state: 'active' }),
  /** Absent: never set, so the app's default (on) applies. */
  startAtLogin: z.boolean().optional(),
  /** HOST:PORT overriding the enrolled address (the coordinator moved; its CA stays pinned). */
  coordinator: z.string().optional(),
  adminPolicy: AdminOverride.default({}),
});
export type HostSettings = z.infer<typeof HostSettings>;

/**
 * The saved settings. A saved setting never stops a start (a worker that
 * cannot start until someone edits a file is worse than one that forgot a
 * snooze): a setting that is not valid is left at its default, and
 * `onProblem` says which and why.
 */
export async function loadHostSettings(dataDir: string, onProblem: (problem: string) => void = () => undefined): Promise<HostSettings> {
  const file = join(dataDir, SETTINGS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return HostSettings.parse({});
    // The app shows this in a dialog at start: say which folder, and what to do.
    if (isErrno(e, 'ENOTDIR')) throw new GridError('GG_ERR_CONFIG_INVALID', `the worker's data folder ${dataDir} cannot be made: it, or a folder on its path, is a file (move that file away, or set ${WORKER_DATA_DIR_ENV} to another folder)`);
    throw new GridError('GG_ERR_CONFIG_INVALID', `cannot read ${file}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    onProblem(`${file} is not valid JSON: every setting is at its default until one is changed`);
    return HostSettings.parse({});
  }
  const saved = typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : {};
  const kept: Record<string, unknown> = {};
  for (const [key, schema] of Object.entries(HostSettings.shape)) {
    const parsed = schema.safeParse(saved[key]);
    if (parsed.success) kept[key] = saved[key];
    else onProblem(`${file}: ${firstZodProblem(parsed.error, [key])}; using the default`);
  }
  return HostSettings.parse(kept);
}

export async function saveHostSettings(dataDir: string, settings: HostSettings): Promise<void> {
  await writeFileAtomic(join(dataDir, SETTINGS_FILE), `${JSON.stringify(settings, null, 2)}\n`, 0o600);
}

/** The owner's pause state after one of the status window's buttons. */
export function controlFor(action: ControlAction, nowMs: number, jobsRunning: number): UserControl {
  switch (action.action) {
    case 'pause':
      return { state: 'paused' };
    case 'resume':
      return { state: 'active' };
    case 'snooze': {
      const untilMs = action.untilMs ?? nowMs + action.minutes! * 60_000;
      if (untilMs <= nowMs || untilMs > nowMs + MAX_SNOOZE_MS) {
        throw new GridError('GG_ERR_BAD_REQUEST', `untilMs: a snooze ends in the next ${MAX_SNOOZE_MS / 86_400_000} days, not at ${untilMs}`);
      }
      return { state: 'snoozed', untilMs };
    }
    case 'finish':
      return jobsRunning > 0 ? { state: 'finishing' } : { state: 'paused' };
  }
}

/** The settings with the owner's change applied; throws (naming the bad key) before anything is saved. */
export function settingsAfter(settings: HostSettings, update: SettingsUpdate, host: { hasLoginItem: boolean }): HostSettings {
  const next: HostSettings = { ...settings };
  if (update.policy) {
    compilePolicy(update.policy, next.adminPolicy);
    next.policy = update.policy;
  }
  if (update.coordinator !== undefined) {
    parseCoordinatorAddress(update.coordinator);
    next.coordinator = update.coordinator;
  }
  if (update.startAtLogin !== undefined) {
    if (!host.hasLoginItem) throw new GridError('GG_ERR_BAD_REQUEST', 'this worker has no login item to change (it runs headless)');
    next.startAtLogin = update.startAtLogin;
  }
  return next;
}
