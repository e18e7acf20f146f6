/**
 * How the CLI talks to people: one line per failure on stderr with its code,
 * logs on stderr (pretty on a terminal, JSON otherwise), results on stdout.
 *
 *   const logger = await createLogger({ level: 'info', format: 'auto', file: '/var/log/gogrid/worker' }); // file: also JSON lines there
 *   failAndExit(err); // prints "gogrid: GG_ERR_TOKEN_EXPIRED: …" and exits 1
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { openLogFile } from '../common/log-file.js';
import { isGridError, printable } from '../protocol/index.js';

export type LogFormat = 'auto' | 'pretty' | 'json';

/** Logs on stderr; with `file`, also as JSON lines in rolled files (common/log-file.ts). */
export async function createLogger(opts: { level: string; format: LogFormat; file?: string }): Promise<Logger> {
  const usePretty = opts.format === 'pretty' || (opts.format === 'auto' && process.stderr.isTTY === true);
  const stderr: DestinationStream = usePretty
    ? pretty({ destination: 2, sync: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' })
    : pino.destination({ fd: 2, sync: true });
  if (opts.file === undefined) return pino({ level: opts.level }, stderr);
  const file = await openLogFile(opts.file);
  const level = opts.level as pino.Level;
  return pino({ level }, pino.multistream([{ level, stream: stderr }, { level, stream: file.stream }]));
}

/** Exit codes: 1 for an expected failure (bad token, unreachable…), 70 (EX_SOFTWARE) for a bug. */
export function failAndExit(e: unknown): never {
  if (isGridError(e)) {
    process.stderr.write(`gogrid: ${e.code}: ${printable(e.message)}\n`);
    process.exit(1);
  }
  process.stderr.write(`gogrid: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(70);
}

/**
 * A plain aligned table; the --json form of each command is the stable
 * interface. Cells hold what workers and clients named things: control and
 * bidi characters are shown as escapes, so a name cannot rewrite the screen
 * or disguise the columns after it.
 */
export function table(headers: string[], cells: string[][]): string {
  const rows = cells.map((r) => r.map(printable));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

let prettyJson = false;

/** `--pretty` (every command with --json has it; program.ts reads it before each action). */
export function setPrettyJson(on: boolean): void {
  prettyJson = on;
}

/** JSON for machines: one line, so a 5,000-float output is one line, not 5,000; `--pretty` indents it. */
export function jsonText(value: unknown): string {
  return `${prettyJson ? JSON.stringify(value, null, 2) : JSON.stringify(value)}\n`;
}

export function printJson(value: unknown): void {
  process.stdout.write(jsonText(value));
}
