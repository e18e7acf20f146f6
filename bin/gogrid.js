#!/usr/bin/env node
// Runs the built CLI (dist/, made by `npm run build`, which `npm ci` runs via `prepare`).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('gogrid: not built yet; run `npm run build` (or `npm ci`) in the repository first\n');
  process.exit(1);
}
await import(entry.href);
