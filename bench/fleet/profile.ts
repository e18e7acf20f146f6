/**
 * Reads V8 profiles and names where the cost went. CPU (.cpuprofile): the top
 * frames by self time and the share of each package (gogrid's own src/, each
 * npm package, Node's internals, GC). Heap (.heapprofile, sampling): live
 * bytes by the package that asked for them and by allocating frame.
 *
 *   const cpu = summarizeProfile(JSON.parse(await readFile(path, 'utf8')), 15);
 *   for (const f of cpu.topFrames) console.log(f.selfPct, f.name, f.where);
 *   const heap = summarizeHeapProfile(JSON.parse(await readFile(heapPath, 'utf8')), 15);
 */
import { z } from 'zod';

const CpuProfile = z.object({
  nodes: z.array(
    z.object({
      id: z.number(),
      callFrame: z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() }),
      hitCount: z.number().default(0),
    }),
  ),
  startTime: z.number(),
  endTime: z.number(),
});

export interface ProfileSummary {
  /** Wall time the profile covers, and the CPU time its samples add up to (idle excluded). */
  wallMs: number;
  busyMs: number;
  topFrames: { name: string; where: string; selfMs: number; selfPct: number }[];
  /** Self time by package; `selfPct` is of busyMs. */
  byPackage: { name: string; selfMs: number; selfPct: number }[];
}

const IDLE = '(idle)';

export function summarizeProfile(raw: unknown, top: number): ProfileSummary {
  const profile = CpuProfile.parse(raw);
  const wallMs = (profile.endTime - profile.startTime) / 1000;
  const totalHits = profile.nodes.reduce((sum, n) => sum + n.hitCount, 0);
  const msPerHit = totalHits > 0 ? wallMs / totalHits : 0;
  const frames = new Map<string, { name: string; where: string; hits: number }>();
  const packages = new Map<string, number>();
  let busyHits = 0;
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    if (node.hitCount === 0 || functionName === IDLE) continue;
    busyHits += node.hitCount;
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${functionName}@${where}`;
    const frame = frames.get(key) ?? { name: functionName || '(anonymous)', where, hits: 0 };
    frame.hits += node.hitCount;
    frames.set(key, frame);
    const pkg = packageOf(functionName, url);
    packages.set(pkg, (packages.get(pkg) ?? 0) + node.hitCount);
  }
  const busyMs = busyHits * msPerHit;
  const pct = (hits: number) => (busyHits > 0 ? (100 * hits) / busyHits : 0);
  return {
    wallMs,
    busyMs,
    topFrames: [...frames.values()]
      .sort((a, b) => b.hits - a.hits)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: f.hits * msPerHit, selfPct: pct(f.hits) })),
    byPackage: [...packages]
      .sort((a, b) => b[1] - a[1])
      .map(([name, hits]) => ({ name, selfMs: hits * msPerHit, selfPct: pct(hits) })),
  };
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const src = url.indexOf('/src/');
  if (src >= 0) return url.slice(src + 1);
  return url.replace(/^file:\/\//, '');
}

function packageOf(functionName: string, url: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return /^node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url.slice(nm))?.[1] ?? 'node_modules';
  if (url.startsWith('node:')) return 'node (internals)';
  if (url.includes('/src/')) return 'gogrid src/';
  if (url.includes('/bench/')) return 'bench hook';
  return url;
}

const CallFrame = z.object({ functionName: z.string(), url: z.string(), lineNumber: z.number() });
interface HeapNode {
  callFrame: z.infer<typeof CallFrame>;
  selfSize: number;
  children: HeapNode[];
}
const HeapNode: z.ZodType<HeapNode> = z.lazy(() => z.object({ callFrame: CallFrame, selfSize: z.number(), children: z.array(HeapNode) }));
const HeapProfile = z.object({ head: HeapNode });

export interface HeapSummary {
  liveKiB: number;
  /** Live bytes by the innermost package on the allocating stack that is not Node itself. */
  byPackage: { name: string; kiB: number; pct: number }[];
  /** Live bytes by the innermost frame of that package: the line that made the objects. */
  topSites: { name: string; where: string; kiB: number; pct: number }[];
}

export function summarizeHeapProfile(raw: unknown, top: number): HeapSummary {
  const { head } = HeapProfile.parse(raw);
  const packages = new Map<string, number>();
  const sites = new Map<string, { name: string; where: string; bytes: number }>();
  let total = 0;
  const visit = (node: HeapNode, stack: HeapNode[]): void => {
    const path = [...stack, node];
    if (node.selfSize > 0) {
      total += node.selfSize;
      const owner = [...path].reverse().find((n) => !isRuntime(packageOf(n.callFrame.functionName, n.callFrame.url))) ?? node;
      const pkg = packageOf(owner.callFrame.functionName, owner.callFrame.url);
      packages.set(pkg, (packages.get(pkg) ?? 0) + node.selfSize);
      const where = owner.callFrame.url ? `${shortUrl(owner.callFrame.url)}:${owner.callFrame.lineNumber + 1}` : '';
      const key = `${owner.callFrame.functionName}@${where}`;
      const site = sites.get(key) ?? { name: owner.callFrame.functionName || '(anonymous)', where, bytes: 0 };
      site.bytes += node.selfSize;
      sites.set(key, site);
    }
    for (const child of node.children) visit(child, path);
  };
  visit(head, []);
  const pct = (bytes: number) => (total > 0 ? (100 * bytes) / total : 0);
  return {
    liveKiB: total / 1024,
    byPackage: [...packages].sort((a, b) => b[1] - a[1]).map(([name, bytes]) => ({ name, kiB: bytes / 1024, pct: pct(bytes) })),
    topSites: [...sites.values()]
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, top)
      .map((s) => ({ name: s.name, where: s.where, kiB: s.bytes / 1024, pct: pct(s.bytes) })),
  };
}

function isRuntime(pkg: string): boolean {
  return pkg === 'node (internals)' || pkg === '(native)' || pkg.startsWith('(');
}
