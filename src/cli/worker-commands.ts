/**
 * `gogrid worker pause|resume|snooze|finish|status`: the owner's controls for
 * the worker running with a data dir, through its loopback control endpoint.
 * `gogrid worker` with flags and no subcommand still runs a worker
 * (serve-commands.ts); these hang off that same command.
 *
 *   gogrid worker pause --data /srv/gogrid       # Paused. Resume with: gogrid worker resume --data /srv/gogrid
 *   gogrid worker snooze 30m
 *   gogrid worker snooze until 15:20
 *   gogrid worker status --json
 */
import type { Command } from 'commander';
import { GridError, MAX_SNOOZE_MS, type ControlAction, type WorkerView } from '../protocol/index.js';
import { controlClient } from '../worker/control/index.js';
import { defaultDataDir } from '../worker/paths.js';
import { parseDurationSecs } from './duration.js';
import { printJson } from './output.js';

interface ControlFlags {
  data?: string;
  json?: boolean;
}

/** Adds the control subcommands to the `worker` command that `registerServeCommands` created. */
export function registerWorkerCommands(program: Command, run: (fn: () => Promise<void>) => Promise<void>): void {
  const worker = program.commands.find((c) => c.name() === 'worker');
  if (!worker) throw new Error('registerServeCommands must add `gogrid worker` before its control subcommands');
  worker.addHelpText('after', '\nWithout a command it runs the worker; the commands control the one running with --data DIR.');
  // `gogrid worker staus` is a misspelt command, not an argument to the worker: say so as commander does for
  // unknown commands ("Did you mean status?"), rather than "too many arguments". unknownCommand is commander's
  // own (not in its typings; commander is pinned, and a test fails if it goes).
  worker.allowExcessArguments(true).hook('preAction', (_cmd, acting) => {
    if (acting === worker && worker.args.length > 0) (worker as unknown as { unknownCommand(): never }).unknownCommand();
  });

  const control = (name: string, description: string, perform: (args: string[]) => ControlAction | null, say: (view: WorkerView, resumeHint: string) => string) =>
    worker
      .command(name)
      .description(description)
      .option('--data <dir>', "the running worker's data dir (default: the per-OS worker data dir)")
      .option('--json', 'print the worker view as JSON')
      .action(async (...params: unknown[]) => {
        // commander passes the declared arguments (if any), the options, then the command itself.
        const cmd = params.at(-1) as Command;
        const flags = cmd.opts<ControlFlags>();
        await run(async () => {
          const given = flags.data ?? worker.opts<ControlFlags>().data;
          const dataDir = given ?? defaultDataDir();
          // Bad words fail before the worker is looked for.
          const action = perform(cmd.args);
          const client = await controlClient(dataDir);
          const view = action === null ? await client.status() : await client.act(action);
          if (flags.json) printJson(view);
          else process.stdout.write(`${say(view, `gogrid worker resume${given === undefined ? '' : ` --data ${shellQuote(given)}`}`)}\n`);
        });
      });

  control('pause', 'pause until you resume it (a running job is suspended or handed back)', () => ({ action: 'pause' }), (_v, resume) => `Paused. Resume with: ${resume}`);
  control(
    'snooze',
    'pause for DURATION (1h, 30m; default 1h) or until a time (until 15:20, until 2026-03-10T15:20)',
    (args) => snoozeAction(args, Date.now()),
    (v, resume) => `${sentence(v.policy.reason)} Resume earlier with: ${resume}`,
  ).argument('[when...]');
  control('finish', 'finish the running job, take no new one, then stay paused', () => ({ action: 'finish' }), (v, resume) => `${sentence(v.policy.reason)} Resume with: ${resume}`);
  control('resume', 'lift your pause, snooze or finish', () => ({ action: 'resume' }), (v) => `Resumed. Now: ${sentence(v.policy.reason)}`);
  control('status', "print the worker's state and why it runs or waits", () => null, describe);
}

/**
 * `[]` → 1 h; `['30m']` → 30 min; `['until', '15:20']` → the next 15:20 on
 * this machine's clock; `['until', ISO]` or `[ISO]` → that moment.
 */
export function snoozeAction(words: string[], nowMs: number): ControlAction {
  if (words.length === 0) return { action: 'snooze', minutes: 60 };
  const until = words[0] === 'until';
  const text = (until ? words.slice(1) : words).join(' ').trim();
  let untilMs: number;
  if (/^\d{1,2}:\d{2}$/.test(text) && until) {
    untilMs = nextClockTime(text, nowMs);
  } else if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    untilMs = Date.parse(text);
    if (Number.isNaN(untilMs)) throw new GridError('GG_ERR_BAD_REQUEST', `snooze: "${text}" is not a date and time; use e.g. 2026-03-10T15:20`);
    if (untilMs <= nowMs) throw new GridError('GG_ERR_BAD_REQUEST', `snooze: ${text} has passed`);
  } else if (!until && words.length === 1) {
    const secs = parseDurationSecs(text, 'snooze');
    if (secs % 60 === 0 && secs <= MAX_SNOOZE_MS / 1000) return { action: 'snooze', minutes: secs / 60 };
    untilMs = nowMs + secs * 1000;
  } else {
    throw new GridError('GG_ERR_BAD_REQUEST', `snooze: "${words.join(' ')}" is neither a duration (30m, 1h) nor "until HH:MM" nor "until 2026-03-10T15:20"`);
  }
  if (untilMs - nowMs > MAX_SNOOZE_MS) throw new GridError('GG_ERR_BAD_REQUEST', 'snooze: at most 7 days; pause instead to stop until you resume');
  return { action: 'snooze', untilMs };
}

/** "15:20" → the next moment this machine's clock shows 15:20: today, or tomorrow if that has passed. */
function nextClockTime(text: string, nowMs: number): number {
  const [h, m] = text.split(':').map(Number) as [number, number];
  if (h > 23 || m > 59) throw new GridError('GG_ERR_BAD_REQUEST', `snooze: "${text}" is not a time of day; use HH:MM from 00:00 to 23:59`);
  const at = new Date(nowMs);
  at.setHours(h, m, 0, 0);
  if (at.getTime() <= nowMs) at.setDate(at.getDate() + 1);
  return at.getTime();
}

function describe(v: WorkerView): string {
  const who = v.worker ? `${v.worker.name} (${v.worker.id})` : 'Not enrolled';
  const detail = v.connection.detail ? `: ${v.connection.detail}` : '';
  return `${who}: ${v.connection.state}${detail}. ${sentence(v.policy.reason)}`;
}

function sentence(text: string): string {
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** A path as a shell would need it typed back. */
function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}
