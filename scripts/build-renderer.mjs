// Bundles what Electron's renderer side loads, after `tsc` has built the rest
// of dist/ (`npm run build` runs both):
//   dist/renderer/  index.html, styles.css, icon.png and renderer.js (one classic
//                   script: file:// pages cannot load ES modules, and the CSP allows
//                   only 'self' scripts, nothing inline)
//   dist/preload/preload.cjs  (sandboxed preloads must be CommonJS; only `electron` stays external)
//   dist/dashboard/ the coordinator's fleet dashboard: index.html, dashboard.js, dashboard.css
//
//   node scripts/build-renderer.mjs            # into dist/
//   node scripts/build-renderer.mjs /tmp/x     # into /tmp/x/renderer and /tmp/x/preload (tests)
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = resolve(process.argv[2] ?? `${root}dist`);
const out = `${dist}/renderer/`;

// `z` re-exports every zod locale (260 KB minified) as `z.locales`, which
// nothing here reads; error messages come from the English one zod imports
// directly, so the namespace is replaced by an empty module.
const noZodLocales = {
  name: 'no-zod-locales',
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) => (args.importer.includes('/node_modules/zod/') ? { path: 'zod-locales', namespace: 'empty' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'empty' }, () => ({ contents: '', loader: 'js' }));
  },
};

await mkdir(out, { recursive: true });
await Promise.all([
  build({
    entryPoints: [`${root}src/renderer/main.ts`],
    outfile: `${out}renderer.js`,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome120'],
    minify: true,
    sourcemap: 'linked',
    plugins: [noZodLocales],
    logLevel: 'warning',
  }),
  build({
    entryPoints: [`${root}src/preload/preload.ts`],
    outfile: `${dist}/preload/preload.cjs`,
    bundle: true,
    format: 'cjs',
    platform: 'browser',
    target: ['chrome120'],
    external: ['electron'],
    logLevel: 'warning',
  }),
  // The coordinator's fleet dashboard (coordinator/http-dashboard.ts serves dist/dashboard/).
  build({
    entryPoints: { dashboard: `${root}src/dashboard/main.ts` },
    outdir: `${dist}/dashboard`,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['chrome120', 'firefox120', 'safari17'],
    minify: true,
    plugins: [noZodLocales],
    logLevel: 'warning',
  }),
  build({ entryPoints: { dashboard: `${root}src/dashboard/styles.css` }, outdir: `${dist}/dashboard`, bundle: true, minify: true, logLevel: 'warning' }),
  mkdir(`${dist}/dashboard`, { recursive: true }).then(() => copyFile(`${root}src/dashboard/index.html`, `${dist}/dashboard/index.html`)),
  copyFile(`${root}src/renderer/index.html`, `${out}index.html`),
  copyFile(`${root}src/renderer/styles.css`, `${out}styles.css`),
  copyFile(`${root}assets/tray/idle-32.png`, `${out}icon.png`),
]);
