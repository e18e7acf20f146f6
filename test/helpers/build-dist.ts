/**
 * dist/ as current as src/ before any test runs: the tests start the CLI and
 * the worker's child processes (job, probes) from dist/ with plain node, not
 * from the sources through tsx (half a second of CPU less for each of the
 * hundreds they start), and the packaging test packs it. In CI `npm ci` has
 * just built it and this costs nothing; after an edit it rebuilds once.
 *
 *   // vitest.config.ts: globalSetup: ['test/helpers/build-dist.ts']
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function newest(dir: string): number {
  return Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
}

export default function setup(): void {
  const main = join(ROOT, 'dist', 'main', 'main.js');
  const built = existsSync(main) ? statSync(main).mtimeMs : 0;
  if (Math.max(newest(join(ROOT, 'src')), statSync(join(ROOT, 'package.json')).mtimeMs) <= built) return;
  const result = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`npm run build failed, and the tests run dist/:\n${result.stdout}${result.stderr}`);
}
