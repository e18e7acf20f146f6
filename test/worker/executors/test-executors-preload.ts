/**
 * Preloaded by the node processes started in TEST_EXECUTORS_ENV
 * (test-executors.ts): adds the test executors to the registry that
 * job-process.ts reads.
 */
import { EXECUTORS } from '../../../src/worker/executors/registry.js';
import type { Executor } from '../../../src/worker/executors/types.js';
import { TEST_EXECUTORS } from './test-executors.js';

// Read-only to the worker; only test processes add to it.
for (const e of TEST_EXECUTORS) (EXECUTORS as Map<string, Executor>).set(e.kind, e);
