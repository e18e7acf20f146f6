import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests start real QUIC, HTTPS and PGlite instances; two cores
    // are shared by every file, so keep file-level parallelism modest.
    maxWorkers: 2,
    // Job processes start at the lowest OS priority; with every test file
    // competing for two cores they could starve for seconds. Tests of the
    // priority itself set it explicitly (test/worker/executors/priority.test.ts).
    env: { GOGRID_JOB_PRIORITY: 'normal' },
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
