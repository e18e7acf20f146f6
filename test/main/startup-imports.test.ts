/**
 * What the app loads at every login: the packages main.ts reaches through
 * static imports, as esbuild's bundler resolves them (dynamic `import()`s go
 * to chunks of their own, loaded only when they run). The coordinator stack
 * (fastify, PGlite, pg) is for local test mode only.
 */
import { build, type Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The external packages the entry and the chunks it imports statically load, by package name. */
function staticPackages(metafile: Metafile, entry: string): Set<string> {
  const outputs = metafile.outputs;
  const start = Object.keys(outputs).find((o) => outputs[o]!.entryPoint === entry)!;
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (out: string) => {
    if (seen.has(out)) return;
    seen.add(out);
    for (const imp of outputs[out]!.imports) {
      if (imp.kind !== 'import-statement') continue;
      if (imp.external) packages.add(imp.path.startsWith('@') ? imp.path.split('/').slice(0, 2).join('/') : imp.path.split('/')[0]!);
      else visit(imp.path);
    }
  };
  visit(start);
  return packages;
}

describe("the app's start", () => {
  it('does not load the coordinator stack, which only local test mode starts', { timeout: 60_000 }, async () => {
    const result = await build({
      absWorkingDir: ROOT,
      entryPoints: ['src/main/main.ts'],
      bundle: true,
      splitting: true,
      format: 'esm',
      platform: 'node',
      packages: 'external',
      outdir: 'out',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const atStart = staticPackages(result.metafile, 'src/main/main.ts');
    expect(atStart).toContain('electron');
    expect(atStart).toContain('@matrixai/quic');
    for (const coordinatorOnly of ['fastify', '@electric-sql/pglite', 'pg']) expect(atStart, coordinatorOnly).not.toContain(coordinatorOnly);
    // The check can fail: the whole build, dynamic chunks included, does load them.
    const all = new Set(Object.values(result.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path.split('/')[0])));
    expect(all).toContain('fastify');
  });
});
