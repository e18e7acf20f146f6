/**
 * .github/workflows/release.yml cannot run here (it needs GitHub's Windows,
 * macOS and Linux runners); this checks its shape: a tag builds every
 * installer on its own OS, the per-user MSI too, secrets only reach commands
 * through environment variables, and the update metadata is kept.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ROOT } from './builder.js';

const yaml = createRequire(createRequire(import.meta.url).resolve('app-builder-lib/package.json'))('js-yaml') as { load(text: string): unknown };
const file = path.join(ROOT, '.github/workflows/release.yml');

const Step = z.looseObject({ name: z.string().optional(), run: z.string().optional(), uses: z.string().optional(), if: z.string().optional(), env: z.record(z.string(), z.string()).optional() });
const Job = z.looseObject({ 'runs-on': z.string(), needs: z.string().optional(), steps: z.array(Step), strategy: z.unknown().optional() });
const Workflow = z.object({
  name: z.string(),
  on: z.object({ push: z.object({ tags: z.array(z.string()) }) }),
  permissions: z.record(z.string(), z.string()),
  jobs: z.object({ check: Job, build: Job, release: Job }),
});
const workflow = Workflow.parse(yaml.load(readFileSync(file, 'utf8')));
const matrix = z
  .object({ matrix: z.object({ include: z.array(z.object({ os: z.string(), args: z.string() })) }) })
  .parse(workflow.jobs.build.strategy).matrix.include;
const runs = (job: z.infer<typeof Job>) => job.steps.map((s) => s.run ?? '').join('\n');

describe('the release workflow', () => {
  it('runs on version tags, read-only unless it publishes', () => {
    expect(workflow.on.push.tags).toEqual(['v*']);
    expect(workflow.permissions).toEqual({ contents: 'read' });
    expect(workflow.jobs.release.permissions).toEqual({ contents: 'write' });
  });

  it('builds each platform on its own runner, after the checks pass', () => {
    expect(matrix.map((m) => [m.os.split('-')[0], m.args])).toEqual([
      ['ubuntu', '--linux --x64'],
      ['macos', '--mac --arm64'],
      ['windows', '--win --x64'],
    ]);
    expect(workflow.jobs.build.needs).toBe('check');
    // The same script as every other CI run: lint, typecheck, the whole suite.
    expect(runs(workflow.jobs.check)).toContain('bash .ci/run');
    expect(runs(workflow.jobs.build)).toContain('npx electron-builder ${{ matrix.args }} --publish never');
  });

  it('also builds the per-user MSI from the same unpacked app', () => {
    const step = workflow.jobs.build.steps.find((s) => s.run?.includes('-c.msi.perMachine=false'));
    expect(step?.if).toBe("runner.os == 'Windows'");
    expect(step?.run).toContain('--prepackaged release/win-unpacked');
    expect(step?.run).toContain('per-user');
  });

  it('hands secrets to commands only through environment variables', () => {
    for (const job of Object.values(workflow.jobs)) {
      for (const step of job.steps) expect(step.run ?? '', step.name).not.toMatch(/secrets\./);
    }
    const installers = workflow.jobs.build.steps.find((s) => s.name === 'Installers');
    expect(Object.keys(installers?.env ?? {}).sort()).toEqual(['APPLE_API_ISSUER', 'APPLE_API_KEY_ID', 'CSC_KEY_PASSWORD', 'CSC_LINK', 'WIN_CSC_KEY_PASSWORD', 'WIN_CSC_LINK']);
  });

  it('installs as .ci/run does and keeps the update metadata with the installers', () => {
    const install = workflow.jobs.build.steps.find((s) => s.run?.startsWith('npm ci'));
    expect(install?.env).toEqual({ ONNXRUNTIME_NODE_INSTALL: 'skip', ELECTRON_SKIP_BINARY_DOWNLOAD: '1' });
    const upload = workflow.jobs.build.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'));
    const paths = z.object({ path: z.string() }).parse(upload?.with).path;
    for (const pattern of ['release/*.msi', 'release/*.exe', 'release/*.dmg', 'release/*.zip', 'release/*.deb', 'release/*.blockmap', 'release/latest*.yml']) {
      expect(paths).toContain(pattern);
    }
  });
});
