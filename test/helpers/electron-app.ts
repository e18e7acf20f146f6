/**
 * The desktop app's main process, started for real under plain Node with the
 * Electron stand-in (test/helpers/electron-stand-in/): from the sources (tsx)
 * or from a packaged app's extracted files. The test sees what the app did
 * (tray, windows, IPC handlers, quit events, exit) and acts as its user and
 * its renderer would.
 *
 *   const app = startStandInApp({ entry: MAIN_SOURCE, args: ['--local'], home });
 *   await app.waitFor((e) => e.type === 'tray' && /Online/.test(e.tooltip), 'online');
 *   await app.command({ type: 'tray-click', label: 'Quit GoGrid Worker' });
 *   expect(await app.exited).toBe(0);
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { within } from './within.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN_SOURCE = join(ROOT, 'src', 'main', 'main.ts');
const REGISTER = fileURLToPath(new URL('./electron-stand-in/register.mjs', import.meta.url));

const TrayItem = z.object({ label: z.string().nullable(), type: z.string(), enabled: z.boolean(), checked: z.boolean().optional() });
/** What electron.cjs reports; the events the tests read are spelt out, the rest pass through. */
export const StandInEvent = z.union([
  z.object({ type: z.literal('tray'), icon: z.string(), iconEmpty: z.boolean(), tooltip: z.string(), menu: z.array(TrayItem) }),
  z.object({ type: z.literal('window-load'), id: z.number(), file: z.string(), found: z.boolean(), handlers: z.array(z.string()) }),
  z.object({ type: z.literal('error-box'), title: z.string(), content: z.string() }),
  z.object({ type: z.literal('exit'), code: z.number() }),
  z.object({ type: z.literal('power-save-blocker'), started: z.boolean(), id: z.number(), kind: z.string().optional() }),
  z.looseObject({ type: z.string() }),
]);
export type StandInEvent = z.infer<typeof StandInEvent>;

const Message = z.union([
  z.object({ standIn: StandInEvent }),
  z.object({ standInReply: z.looseObject({ id: z.number(), error: z.string().optional(), value: z.unknown().optional() }) }),
]);

export type StandInCommand =
  | { type: 'tray-click'; label?: string }
  | { type: 'invoke'; channel: string; args?: unknown[]; url: string; isMainFrame?: boolean }
  | { type: 'power'; set?: { idleSeconds?: number; onBattery?: boolean; locked?: boolean }; event?: string }
  | { type: 'quit' };

export interface StandInApp {
  readonly child: ChildProcess;
  readonly events: StandInEvent[];
  /** The first event, past or future, that matches; fails after `ms` naming `what`, with the app's last output. */
  waitFor<T extends StandInEvent>(match: (e: StandInEvent) => e is T, what: string, ms?: number): Promise<T>;
  waitFor(match: (e: StandInEvent) => boolean, what: string, ms?: number): Promise<StandInEvent>;
  /** Runs a command in the app (a click, a call from the page); rejects with the stand-in's error. */
  command(command: StandInCommand): Promise<unknown>;
  /** The exit code once the process has ended. */
  readonly exited: Promise<number | null>;
  output(): string;
  kill(): void;
}

export function startStandInApp(opts: {
  entry: string;
  args?: string[];
  /** HOME (and the XDG folders under it) for this app: its data dir, autostart and provisioning paths. */
  home: string;
  env?: Record<string, string>;
  /** app.isPackaged: true for an installed app (app.md). */
  packaged?: boolean;
}): StandInApp {
  const fromSource = opts.entry.endsWith('.ts');
  const child = spawn(process.execPath, [...(fromSource ? ['--import', 'tsx'] : []), '--import', REGISTER, opts.entry, ...(opts.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    serialization: 'json',
    env: {
      ...process.env,
      HOME: opts.home,
      XDG_CONFIG_HOME: join(opts.home, '.config'),
      XDG_DATA_HOME: join(opts.home, '.local', 'share'),
      XDG_CONFIG_DIRS: join(opts.home, 'etc-xdg'),
      GOGRID_DATA_DIR: '',
      GOGRID_PROVISIONING_FILE: '',
      GOGRID_LOG_LEVEL: 'info',
      ELECTRON_STAND_IN_PACKAGED: opts.packaged ? '1' : '0',
      ...opts.env,
    },
  });
  const events: StandInEvent[] = [];
  const waiters = new Set<{ match: (e: StandInEvent) => boolean; resolve: (e: StandInEvent) => void }>();
  const replies = new Map<number, (reply: { error?: string; value?: unknown }) => void>();
  let nextId = 1;
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.on('message', (raw) => {
    const message = Message.parse(raw);
    if ('standInReply' in message) {
      replies.get(message.standInReply.id)?.(message.standInReply);
      replies.delete(message.standInReply.id);
      return;
    }
    events.push(message.standIn);
    for (const w of [...waiters]) {
      if (w.match(message.standIn)) {
        waiters.delete(w);
        w.resolve(message.standIn);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const waitFor = (match: (e: StandInEvent) => boolean, what: string, ms = 30_000): Promise<StandInEvent> => {
    const seen = events.find(match);
    if (seen) return Promise.resolve(seen);
    const found = new Promise<StandInEvent>((resolve) => waiters.add({ match, resolve }));
    const ended = exited.then((code) => Promise.reject(new Error(`the app exited (${code}) before ${what}:\n${out.slice(-3000)}`)));
    return within(ms, what, Promise.race([found, ended])).catch((e: unknown) => {
      throw new Error(`${e instanceof Error ? e.message : String(e)}\nlast output:\n${out.slice(-3000)}`);
    });
  };
  return {
    child,
    events,
    waitFor: waitFor as StandInApp['waitFor'],
    command: (command) =>
      new Promise((resolve, reject) => {
        const id = nextId++;
        replies.set(id, (reply) => (reply.error === undefined ? resolve(reply.value) : reject(new Error(reply.error))));
        child.send({ standInCommand: { ...command, id } });
      }),
    exited,
    output: () => out,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** The tray's state line (its menu's first item), as a person reads it. */
export function trayState(e: StandInEvent): string | null {
  return e.type === 'tray' && 'menu' in e && Array.isArray(e.menu) ? ((e.menu as Array<{ label: string | null }>)[0]?.label ?? null) : null;
}
