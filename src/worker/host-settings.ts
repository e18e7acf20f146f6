/**
 * What the worker host keeps across restarts, in `settings.json` in the data
 * dir: the owner's policy settings and pause, start at login, a moved
 * coordinator's address, and the last override the administrator sent (so an
 * administrator's pause holds while the coordinator is unreachable).
 *
 *   const settings = await loadHostSettings(dataDir);
 *   await saveHostSettings(dataDir, { ...settings, control: { state: 'paused' } });
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AdminOverride, GridError, PolicySettings, UserControl } from '../protocol/index.js';
import { isErrno, writeFileAtomic } from '../common/files.js';

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

export async function loadHostSettings(dataDir: string): Promise<HostSettings> {
  const file = join(dataDir, SETTINGS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return HostSettings.parse({});
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new GridError('GG_ERR_CONFIG_INVALID', `${file} is not valid JSON; fix it or delete it to start from the defaults`);
  }
  const parsed = HostSettings.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new GridError('GG_ERR_CONFIG_INVALID', `${file}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export async function saveHostSettings(dataDir: string, settings: HostSettings): Promise<void> {
  await writeFileAtomic(join(dataDir, SETTINGS_FILE), `${JSON.stringify(settings, null, 2)}\n`, 0o600);
}
