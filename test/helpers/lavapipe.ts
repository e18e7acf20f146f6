/**
 * Mesa's software Vulkan device (lavapipe, Debian's mesa-vulkan-drivers): the
 * GPU code path of node-llama-cpp on a machine without a GPU. A test that
 * needs it skips where it is missing, and fails under CI, whose .ci/run
 * installs it.
 *
 *   it('…', async (ctx) => { needLavapipe(ctx); … });
 */
import { readdirSync } from 'node:fs';
import { expect, type TestContext } from 'vitest';

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
