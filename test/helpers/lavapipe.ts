/**
 * Mesa's software Vulkan device (lavapipe, Debian's mesa-vulkan-drivers): the
 * GPU code path of node-llama-cpp, and of onnxruntime's WebGPU provider, on a
 * machine without a GPU. A test that
 * needs it skips where it is missing, and fails under CI, whose .ci/run
 * installs it.
 *
 *   it('…', async (ctx) => { needLavapipe(ctx); … });
 */
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, type TestContext } from 'vitest';

const ICD_DIR = '/usr/share/vulkan/icd.d';

const present = (() => {
  try {
    return readdirSync(ICD_DIR).some((f) => /^lvp_icd.*\.json$/.test(f));
  } catch {
    return false;
  }
})();

export function needLavapipe(ctx: TestContext): void {
  if (present) return;
  if (process.env['CI']) expect.fail(`no lavapipe ICD in ${ICD_DIR}: .ci/run installs mesa-vulkan-drivers`);
  ctx.skip(`no lavapipe Vulkan ICD in ${ICD_DIR} (apt-get install mesa-vulkan-drivers)`);
}

/**
 * The lavapipe that scripts/lavapipe.sh fetched into the checkout (Debian 12,
 * whose own is too old for Dawn), or null where it did not: the system's
 * Vulkan drivers are used there.
 */
export const WEBGPU_LAVAPIPE_ICD: string | null = (() => {
  const icd = fileURLToPath(new URL('../../.cache/lavapipe/lvp_icd.json', import.meta.url));
  return existsSync(icd) ? icd : null;
})();

/**
 * Points Vulkan at that lavapipe for onnxruntime's WebGPU provider (Dawn reads
 * VK_ICD_FILENAMES when it starts), in this test file and the processes it
 * starts; the LLM tests keep the system's driver, whose first load compiles
 * llama.cpp's shaders 4x faster.
 */
export function useLavapipeForWebGpu(): void {
  if (WEBGPU_LAVAPIPE_ICD === null) return;
  const before = process.env['VK_ICD_FILENAMES'];
  beforeAll(() => {
    process.env['VK_ICD_FILENAMES'] = WEBGPU_LAVAPIPE_ICD!;
  });
  afterAll(() => {
    if (before === undefined) delete process.env['VK_ICD_FILENAMES'];
    else process.env['VK_ICD_FILENAMES'] = before;
  });
}
