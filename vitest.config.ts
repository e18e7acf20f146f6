import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real QUIC, HTTPS and PGlite instances and time
    // what a person would notice (a worker offline within its 1.5 s test
    // heartbeat timeout, a cancel within a second). On two cores a second file
    // beside them starved them into failing (and the suite took 450 s either
    // way, the cores being busy), so files run one at a time.
    maxWorkers: 1,
    // Job processes start at the lowest OS priority; with every test file
    // competing for two cores they could starve for seconds. Tests of the
    // priority itself set it explicitly (test/worker/executors/priority.test.ts).
    // The worker's child processes start from dist/ (see test/helpers/build-dist.ts).
    env: { GOGRID_JOB_PRIORITY: 'normal', GOGRID_CHILDREN_FROM_DIST: '1' },
    // dist/ rebuilt when a source is newer; an empty embedded database made once, which every
    // in-memory one starts from (skipping initdb).
    globalSetup: ['test/helpers/build-dist.ts', 'test/helpers/pglite-snapshot.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
