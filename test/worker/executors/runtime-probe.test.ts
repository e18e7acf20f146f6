/**
 * The runtime probe in a real child process: onnxruntime loads here, a
 * runtime that throws on load is named with its reason, and one that crashes
 * the probe fails every kind asked with it rather than the worker.
 */
import { describe, expect, it } from 'vitest';
import { unloadableKinds } from '../../../src/worker/executors/runtime-probe.js';
import { useTestExecutors } from './helpers.js';
// The test executors in this process's registry too: the probe asks only about kinds with a load step.
import './test-executors-preload.js';

describe('unloadableKinds', () => {
  useTestExecutors();

  it('loads onnxruntime here, and names a runtime that does not load with its reason', { timeout: 60_000 }, async () => {
    const failed = await unloadableKinds(['onnx', 'test-unloadable', 'test-echo']);
    expect([...failed]).toEqual([['test-unloadable', 'onnxruntime_binding.node: The specified module could not be found (MSVCP140.dll)']]);
  });

  it('fails every kind asked when the runtime crashes the probe, and the worker goes on', { timeout: 60_000 }, async () => {
    const failed = await unloadableKinds(['onnx', 'test-crashes-on-load']);
    expect([...failed.keys()]).toEqual(['onnx', 'test-crashes-on-load']);
    expect(failed.get('onnx')).toMatch(/^the runtime probe ended without an answer \(SIGABRT\)/);
  });

  it('asks nothing of kinds without a load step', async () => {
    expect(await unloadableKinds(['test-echo', 'no-such-kind'])).toEqual(new Map());
  });
});
