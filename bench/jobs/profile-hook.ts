/**
 * Preloaded into the coordinator for the jobs benchmark's profiling run only
 * (never in production, never in a measured run). SIGUSR2 starts a window,
 * the next SIGUSR2 ends it and writes, beside $GOGRID_BENCH_CPU_PROFILE:
 *   - the V8 CPU profile of the window (that file);
 *   - `<file>.sql.json`: the window's epoch ms, and each SQL statement
 *     PGlite ran in it, with its count and the time spent running it (PGlite
 *     runs a statement synchronously, in WebAssembly, in execProtocolRawSync);
 * then prints "gogrid-bench: profile written" on stdout.
 *
 *   node --import tsx --import ./bench/jobs/profile-hook.ts dist/cli/main.js coordinator …
 *   kill -USR2 $PID; sleep 5; kill -USR2 $PID
 *
 * `--cpu-prof` would cover the whole life of the process (PGlite's start,
 * enrollment, the warm-up); this covers only the seconds under load.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { PGlite } from '@electric-sql/pglite';

const out = process.env['GOGRID_BENCH_CPU_PROFILE'];
let session: Session | undefined;

// ---------------------------------------------------------------- SQL accounting

interface SqlStat {
  sql: string;
  count: number;
  ms: number;
}

const sql = new Map<string, SqlStat>();
let counting = false;
/** Epoch ms of the window's ends, so the benchmark can count the jobs that finished inside it. */
let windowStart = 0;
/** The statement the protocol messages now running belong to: set by its Parse ('P') or simple Query ('Q') message. */
let current = '(none)';

// The same module instance dist/ imports: the package resolves to one file.
const proto = PGlite.prototype as unknown as { execProtocolRawSync(message: Uint8Array): Uint8Array };
const run = proto.execProtocolRawSync;
proto.execProtocolRawSync = function (message) {
  if (!counting) return run.call(this, message);
  const text = statementText(message);
  if (text !== null) current = text;
  const t0 = performance.now();
  try {
    return run.call(this, message);
  } finally {
    const s = sql.get(current) ?? { sql: current, count: 0, ms: 0 };
    if (text !== null) s.count++;
    s.ms += performance.now() - t0;
    sql.set(current, s);
  }
};

/** The SQL of a Parse or Query message (type byte, int32 length, [statement name], text), whitespace folded. */
function statementText(m: Uint8Array): string | null {
  const type = m[0];
  if (type !== 0x50 && type !== 0x51) return null;
  let at = 5;
  if (type === 0x50) at = m.indexOf(0, at) + 1;
  const end = m.indexOf(0, at);
  return Buffer.from(m.subarray(at, end < 0 ? m.length : end))
    .toString('utf8')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 160);
}

// ---------------------------------------------------------------- the window

async function toggle(): Promise<void> {
  if (!out) throw new Error('set GOGRID_BENCH_CPU_PROFILE to the file the profile goes to');
  if (!session) {
    session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    sql.clear();
    counting = true;
    windowStart = Date.now();
    process.stdout.write('gogrid-bench: profiling\n');
    return;
  }
  const { profile } = await session.post('Profiler.stop');
  counting = false;
  session.disconnect();
  session = undefined;
  await writeFile(out, JSON.stringify(profile));
  const window = { start: windowStart, end: Date.now() };
  await writeFile(`${out}.sql.json`, JSON.stringify({ window, statements: [...sql.values()].sort((a, b) => b.ms - a.ms) }));
  process.stdout.write('gogrid-bench: profile written\n');
}

process.on('SIGUSR2', () => {
  toggle().catch((e: unknown) => process.stderr.write(`gogrid-bench profile hook: ${String(e)}\n`));
});
