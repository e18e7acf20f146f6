/**
 * One snapshot of an empty embedded database per test run, so the many
 * in-memory coordinators and stores the tests open skip PGlite's initdb
 * (about 4 s here; loading the snapshot about 1 s).
 *
 *   // vitest.config.ts: globalSetup: ['test/helpers/pglite-snapshot.ts']
 *   const db = await openDb('memory://', { memorySnapshot: emptyDatabase() });
 *
 * The global setup writes it to a temp file and names it in the environment
 * the test processes inherit; without it (a test run some other way) the
 * helpers return undefined and PGlite runs initdb as usual.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';

const ENV = 'GOGRID_TEST_PGLITE_SNAPSHOT';

export default async function setup(): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'gogrid-pglite-snapshot-'));
  const pg = await PGlite.create();
  const dump = await pg.dumpDataDir('none');
  await pg.close();
  const file = join(dir, 'empty.tar');
  await writeFile(file, new Uint8Array(await dump.arrayBuffer()));
  process.env[ENV] = file;
  return () => rm(dir, { recursive: true, force: true });
}

let cached: Blob | undefined;

/** The run's empty-database snapshot, or undefined outside a run with the global setup. */
export function emptyDatabase(): Blob | undefined {
  const file = process.env[ENV];
  if (file === undefined) return undefined;
  cached ??= new Blob([readFileSync(file)]);
  return cached;
}
