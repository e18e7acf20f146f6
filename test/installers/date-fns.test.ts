/**
 * The packed app keeps of date-fns (brought by pino-roll for the log files)
 * what the app loads, and leaves out what it does not: the `fp` variants,
 * the other locales and the type declarations. Evaluated with
 * electron-builder's own file matcher over the real node_modules, against
 * the files a real `require('pino-roll')` loads.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { keptNodeModuleFiles, readBuilderConfig, ROOT, TARGETS } from './builder.js';

const DIR = path.join(ROOT, 'node_modules/date-fns');

/** The date-fns files Node loads for `require('pino-roll')`, relative to the repository. */
function loadedByPinoRoll(): string[] {
  const script = "require('pino-roll'); console.log(JSON.stringify(Object.keys(require.cache)))";
  const out = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
  return z
    .array(z.string())
    .parse(JSON.parse(out.stdout))
    .filter((f) => f.startsWith(`${DIR}/`))
    .map((f) => path.relative(ROOT, f).split(path.sep).join('/'));
}

describe('date-fns in the packed app', () => {
  const config = readBuilderConfig();
  const loaded = loadedByPinoRoll();

  it.each(TARGETS)('keeps every file pino-roll loads on $platform-$arch, and drops the rest (8 MB of its 10)', (target) => {
    const kept = keptNodeModuleFiles(config, target, [{ dir: DIR, relative: 'node_modules/date-fns' }]);
    const all = keptNodeModuleFiles({}, target, [{ dir: DIR, relative: 'node_modules/date-fns' }]);
    expect(loaded.length).toBeGreaterThan(100);
    expect(loaded.filter((f) => !kept.includes(f))).toEqual([]);
    expect(kept).toContain('node_modules/date-fns/package.json');
    expect(kept.filter((f) => /\/fp\/|\/locale\/de\b|\.d\.c?ts$/.test(f))).toEqual([]);
    expect(all.length).toBeGreaterThan(2 * kept.length);
  });
});
