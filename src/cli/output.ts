/**
 * How the CLI talks to people: one line per failure on stderr with its code,
 * logs on stderr (pretty on a terminal, JSON otherwise), results on stdout.
 *
 *   const logger = await createLogger({ level: 'info', format: 'auto', file: '/var/log/gogrid/worker' }); // file: also JSON lines there
 *   failAndExit(err); // prints "gogrid: GG_ERR_TOKEN_EXPIRED: …" and exits 1
 */
import { InvalidArgumentError, type Command } from 'commander';
import { dump as yamlText } from 'js-yaml';
import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { openLogFile } from '../common/log-file.js';
import { GridError, isGridError, printable } from '../protocol/index.js';

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

/** How a listing prints: a table (`wide`: every column), or the API's objects as JSON or YAML. */
export const OUTPUT_FORMATS = ['table', 'wide', 'json', 'yaml'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** A listing's column: its header, its cell, and whether only `wide` shows it. */
export interface Column<T> {
  header: string;
  cell: (row: T) => string;
  wide?: true;
}

/** What a listing's format flags parse to. */
export interface ListingFlags {
  json?: boolean;
  output?: string;
  wide?: boolean;
}

/** `-o json|yaml|wide` (as kubectl has it) and `--wide` beside a listing's `--json`. */
export function addListingOptions(cmd: Command): Command {
  return cmd
    .option('-o, --output <format>', 'json, yaml, or wide (a table with every column)', (value: string) => {
      if (!(['json', 'yaml', 'wide'] as const).includes(value as never)) throw new InvalidArgumentError(`"${value}" is not json, yaml or wide`);
      return value;
    })
    .option('--wide', 'a table with every column (the same as -o wide)');
}

/** The format the flags ask for; GG_ERR_BAD_REQUEST when two of them disagree. */
export function listingFormat(flags: ListingFlags): OutputFormat {
  const asked = [flags.json ? 'json' : null, flags.output ?? null, flags.wide ? 'wide' : null].filter((f): f is OutputFormat => f !== null);
  const distinct = [...new Set(asked)];
  if (distinct.length > 1) throw new GridError('GG_ERR_BAD_REQUEST', `${distinct.join(' and ')} output were both asked for; choose one`);
  return distinct[0] ?? 'table';
}

/** Prints `rows` as the format says: JSON and YAML are the API's objects, stable for scripts; tables are for people. */
export function printListing<T>(format: OutputFormat, rows: T[], columns: Column<T>[]): void {
  if (format === 'json') return printJson(rows);
  // YAML of the same objects; no anchors for repeated values, no folded long lines (a reader pastes them back).
  if (format === 'yaml') return void process.stdout.write(yamlText(rows, { noRefs: true, lineWidth: -1 }));
  const shown = columns.filter((c) => format === 'wide' || !c.wide);
  process.stdout.write(table(shown.map((c) => c.header), rows.map((r) => shown.map((c) => c.cell(r)))));
}
