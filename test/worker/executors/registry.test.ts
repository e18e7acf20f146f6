import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { HardwareReport } from '../../../src/protocol/messages.js';
import { canRunKind, executorKinds } from '../../../src/worker/executors/index.js';

function hardware(platform: string, arch: string): HardwareReport {
  return {
    cpu: { manufacturer: null, brand: null, physicalCores: 2, threads: 2, speedGHz: null },
    memory: { totalBytes: 8 * 2 ** 30 },
    gpus: [],
    os: { platform, arch, distro: null, release: null, hostname: null },
  };
}

/**
 * Whether a native runtime's library (`libonnxruntime`, llama.cpp's
 * `llama-addon`) is mapped into a fresh node process after running `code`.
 * The script comes on stdin, not `-e`: node-llama-cpp tests its binary in a
 * child started with this process's exec arguments, which `-e` would hand on.
 */
function loadsNativeRuntime(code: string, library = 'libonnxruntime'): boolean {
  const script = `(async () => {\n${code}\nconst { readFileSync } = await import('node:fs');\nconsole.log(readFileSync('/proc/self/maps', 'utf8').includes(${JSON.stringify(library)}));\n})();`;
  const run = spawnSync(process.execPath, ['--import', 'tsx'], { input: script, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  return run.stdout.trim() === 'true';
}

describe('executor registry', () => {
  it('lists the real kinds only (never the test-only ones)', () => {
    expect(executorKinds()).toEqual(['onnx', 'llm']);
  });

  it.each([
    ['onnx', 'linux', 'x64', true],
    ['onnx', 'linux', 'arm64', true],
    ['onnx', 'darwin', 'arm64', true],
    ['onnx', 'win32', 'x64', true],
    ['onnx', 'darwin', 'x64', false], // onnxruntime-node ships no darwin-x64 binary since 1.24
    ['onnx', 'linux', 'ia32', false],
    ['llm', 'linux', 'ia32', false], // node-llama-cpp ships no binary for it
    ['test-crash', 'linux', 'x64', false],
  ])('canRunKind(%s) on %s-%s is %s', (kind, platform, arch, want) => {
    expect(canRunKind(kind, hardware(platform, arch))).toBe(want);
  });

  it("can run llm jobs here: node-llama-cpp's prebuilt binary for this platform is installed", () => {
    expect(canRunKind('llm', hardware(process.platform, process.arch))).toBe(true);
  });

  it.runIf(process.platform === 'linux')('leaves the native runtime out of the worker process (only job processes load it)', () => {
    expect(loadsNativeRuntime(`await import('./src/worker/executors/index.ts');`)).toBe(false);
    // The control: the check does see the library once something imports it.
    expect(loadsNativeRuntime(`await import('onnxruntime-node');`)).toBe(true);
    expect(loadsNativeRuntime(`await import('./src/worker/executors/index.ts');`, 'llama-addon')).toBe(false);
    expect(loadsNativeRuntime(`await (await import('node-llama-cpp')).getLlama({ gpu: false, build: 'never' });`, 'llama-addon')).toBe(true);
  });
});
