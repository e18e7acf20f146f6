/**
 * Reads what bench/jobs/profile-hook.ts wrote for a window of the
 * coordinator under load, per job finished in that window: where the CPU
 * went by area (the store, QUIC, the HTTP API, …) and which SQL statements
 * ran, how often and for how long.
 *
 *   const p = coordinatorProfile(JSON.parse(cpuprofileText), JSON.parse(sqlText), jobsFinishedInWindow);
 *   p.areas  // [{ area: 'store (PGlite)', pct: 48, usPerJob: 3900 }, …]
 *   p.sql    // [{ sql: 'INSERT INTO jobs …', perJob: 1, usPerJob: 420 }, …]
 *
 * Areas go by the innermost frame that belongs to a package or to gogrid's
 * own code, so native work (a UDP send, a TLS write, WebAssembly) counts for
 * the JavaScript that asked for it. Async hops lose their callers, which is
 * why this groups by package rather than by gogrid function.
 */
import { z } from 'zod';

const CallFrame = z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() });
const CpuProfile = z.object({
  nodes: z.array(z.object({ id: z.number(), callFrame: CallFrame, children: z.array(z.number()).optional() })),
  samples: z.array(z.number()),
  startTime: z.number(),
  endTime: z.number(),
});

export const SqlWindow = z.object({
  window: z.object({ start: z.number(), end: z.number() }),
  statements: z.array(z.object({ sql: z.string(), count: z.number(), ms: z.number() })),
});
export type SqlWindow = z.infer<typeof SqlWindow>;

export interface CoordinatorProfile {
  windowSecs: number;
  jobsInWindow: number;
  /** CPU the profiler saw on the main thread per job (its samples, idle excluded). */
  busyUsPerJob: number;
  areas: { area: string; pct: number; usPerJob: number }[];
  sql: { sql: string; perJob: number; usPerJob: number }[];
  sqlStatementsPerJob: number;
  sqlUsPerJob: number;
  /** The frames with the most self time (native ones under their own names: send is a UDP send, writev a TCP write). */
  top: { name: string; where: string; pct: number }[];
}

const AREAS: [RegExp, string][] = [
  [/^(wasm:|@electric-sql\/pglite)/, 'store (PGlite)'],
  [/^(pg|pg-pool|pg-protocol|pg-types|pg-connection-string|pgpass|postgres-\w+)$/, 'store (PostgreSQL client)'],
  [/^(@matrixai\/|ts-custom-error|node:dgram)/, 'QUIC (@matrixai/quic, UDP)'],
  [/^node:fs/, 'files (model sidecar per submit)'],
  [/^(fastify|@fastify\/|find-my-way|avvio|light-my-request|fast-json-stringify|fast-querystring|secure-json-parse|abstract-logging|rfdc|process-warning|toad-cache)/, 'HTTP API (fastify)'],
  [/^zod/, 'zod'],
  [/^(pino|thread-stream|sonic-boom)/, 'logging (pino)'],
  [/^gogrid:/, "gogrid's own code"],
];

export function coordinatorProfile(rawProfile: unknown, rawSql: unknown, jobsInWindow: number): CoordinatorProfile {
  const profile = CpuProfile.parse(rawProfile);
  const sqlWindow = SqlWindow.parse(rawSql);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hits = new Map<number, number>();
  for (const s of profile.samples) hits.set(s, (hits.get(s) ?? 0) + 1);
  const wallUs = profile.endTime - profile.startTime;
  const usPerHit = profile.samples.length > 0 ? wallUs / profile.samples.length : 0;
  const areas = new Map<string, number>();
  const frames = new Map<string, { name: string; where: string; n: number }>();
  let busy = 0;
  for (const [id, n] of hits) {
    const { functionName: leaf, url, lineNumber } = byId.get(id)!.callFrame;
    if (leaf === '(idle)') continue;
    busy += n;
    const where = url ? `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/(dist|src)\//, '$1/')}:${lineNumber + 1}` : '';
    const frame = frames.get(`${leaf}@${where}`) ?? { name: leaf || '(anonymous)', where, n: 0 };
    frame.n += n;
    frames.set(`${leaf}@${where}`, frame);
    const area = areaOf(id, byId, parent) ?? (leaf === '(garbage collector)' ? 'garbage collector' : 'Node internals, other');
    areas.set(area, (areas.get(area) ?? 0) + n);
  }
  const jobs = Math.max(1, jobsInWindow);
  const perJob = (us: number) => Math.round(us / jobs);
  const statements = sqlWindow.statements.filter((s) => s.count > 0 || s.ms > 1);
  return {
    windowSecs: Math.round(wallUs / 1e4) / 100,
    jobsInWindow,
    busyUsPerJob: perJob(busy * usPerHit),
    areas: [...areas]
      .sort((a, b) => b[1] - a[1])
      .map(([area, n]) => ({ area, pct: Math.round((1000 * n) / Math.max(1, busy)) / 10, usPerJob: perJob(n * usPerHit) })),
    sql: statements.slice(0, 15).map((s) => ({ sql: s.sql, perJob: Math.round((100 * s.count) / jobs) / 100, usPerJob: perJob(s.ms * 1000) })),
    sqlStatementsPerJob: Math.round((100 * statements.reduce((n, s) => n + s.count, 0)) / jobs) / 100,
    sqlUsPerJob: perJob(statements.reduce((n, s) => n + s.ms, 0) * 1000),
    top: [...frames.values()]
      .sort((a, b) => b.n - a.n)
      .slice(0, 12)
      .map((f) => ({ name: f.name, where: f.where, pct: Math.round((1000 * f.n) / Math.max(1, busy)) / 10 })),
  };
}

/** The area of the innermost frame on the sample's stack that names a package, WebAssembly or gogrid's dist/. */
function areaOf(id: number, byId: Map<number, { callFrame: { url: string } }>, parent: Map<number, number>): string | null {
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const owner = ownerOf(byId.get(cur)!.callFrame.url);
    if (owner === null) continue;
    return AREAS.find(([re]) => re.test(owner))?.[1] ?? `other package (${owner})`;
  }
  return null;
}

function ownerOf(url: string): string | null {
  // The coordinator's only UDP user is QUIC, and the only files it reads per job are model sidecars.
  if (url === 'node:dgram') return 'node:dgram';
  if (url === 'node:internal/fs/promises') return 'node:fs';
  if (!url || url.startsWith('node:')) return null;
  if (url.startsWith('wasm:')) return url;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url.slice(nm))?.[1] ?? null;
  if (/\/(dist|src)\/(coordinator|protocol|transport|common)\//.test(url)) return `gogrid:${url}`;
  return null;
}
