import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { HardwareReport } from '../../src/protocol/messages.js';
import { advertisedBackends, boundedProbe, collectHardware, cpuShare, cpuTicks, gpuBackends, sampleLoad, toHardwareReport, type RawHardware } from '../../src/worker/hardware.js';

const RawFixture = z.object({
  node: z.object({ platform: z.string(), arch: z.string(), hostname: z.string() }),
  cpu: z.unknown(),
  mem: z.unknown(),
  graphics: z.unknown(),
  osInfo: z.unknown(),
});

async function fixture(name: string): Promise<RawHardware> {
  const text = await readFile(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8');
  return RawFixture.parse(JSON.parse(text));
}

describe('collectHardware on this machine', () => {
  it('returns a schema-valid report with the basics filled in', async () => {
    const report = await collectHardware();
    expect(HardwareReport.parse(report)).toEqual(report);
    expect(report.cpu.threads).toBeGreaterThan(0);
    expect(report.memory.totalBytes).toBeGreaterThan(0);
    expect(report.os.platform).toBe(process.platform);
    expect(report.os.arch).toBe(process.arch);
    // Nothing the OS left blank may come through as "".
    expect(JSON.stringify(report)).not.toContain('""');
  });

  it('samples load as a fraction and free memory in bytes', async () => {
    const load = await sampleLoad();
    expect(load.cpu).not.toBeNull();
    expect(load.cpu).toBeGreaterThanOrEqual(0);
    expect(load.cpu).toBeLessThanOrEqual(1);
    expect(load.freeMemoryBytes).toBeGreaterThan(0);
  });
});

describe('CPU use between two samples of the cores’ counters', () => {
  const cores = (...times: [user: number, idle: number][]) => times.map(([user, idle]) => ({ times: { user, nice: 0, sys: 0, idle, irq: 0 } }));
  it('is the busy share of the time between them, over all cores', () => {
    const before = cpuTicks(cores([100, 900], [0, 1000]));
    expect(cpuShare(before, cpuTicks(cores([175, 925], [25, 1075])))).toBe(0.5);
    expect(cpuShare(before, cpuTicks(cores([100, 1000], [0, 1100])))).toBe(0);
  });
  it('is unknown when no time passed or the counters went back', () => {
    const ticks = cpuTicks(cores([100, 900]));
    expect(cpuShare(ticks, ticks)).toBeNull();
    expect(cpuShare(ticks, cpuTicks(cores([50, 400])))).toBeNull();
  });
});

describe('toHardwareReport on recorded raw output', () => {
  it("reports the cgroup's memory limit where the worker runs under one (a container, a systemd MemoryMax)", async () => {
    const raw = { ...(await fixture('linux-vm-recorded')), cgroupMemoryLimit: 4 * 2 ** 30 };
    expect(toHardwareReport(raw).memory).toEqual({ totalBytes: 25276063744, limitBytes: 4 * 2 ** 30 });
  });

  it('maps the real recording of this Linux VM (no GPU, CPU speed 0)', async () => {
    expect(toHardwareReport(await fixture('linux-vm-recorded'))).toEqual({
      cpu: { manufacturer: 'Intel', brand: 'Xeon® Processor', physicalCores: 2, threads: 2, speedGHz: null },
      memory: { totalBytes: 25276063744, limitBytes: null },
      gpus: [],
      os: { platform: 'linux', distro: 'Debian GNU/Linux', release: '12', arch: 'x64', hostname: 'vm' },
    });
  });

  it('maps a Mac with an Apple GPU: Metal, and no dedicated VRAM for unified memory', async () => {
    expect(toHardwareReport(await fixture('mac-apple-silicon'))).toEqual({
      cpu: { manufacturer: 'Apple', brand: 'M2 Pro', physicalCores: 12, threads: 12, speedGHz: 3.49 },
      memory: { totalBytes: 34359738368, limitBytes: null },
      gpus: [{ vendor: 'Apple', model: 'Apple M2 Pro', vramMiB: null, backends: [] }],
      os: { platform: 'darwin', distro: 'macOS', release: '14.5', arch: 'arm64', hostname: 'studio.local' },
    });
  });

  it('maps a Windows box with an NVIDIA card and an integrated Intel GPU', async () => {
    expect(toHardwareReport(await fixture('windows-nvidia'))).toEqual({
      cpu: { manufacturer: 'Intel', brand: 'Core™ i7-13700K', physicalCores: 16, threads: 24, speedGHz: 3.4 },
      memory: { totalBytes: 34183589888, limitBytes: null },
      gpus: [
        { vendor: 'NVIDIA', model: 'NVIDIA GeForce RTX 4070', vramMiB: 12282, backends: [] },
        { vendor: 'Intel Corporation', model: 'Intel(R) UHD Graphics 770', vramMiB: null, backends: [] },
      ],
      // Node's 'win32', not systeminformation's 'Windows'.
      os: { platform: 'win32', distro: 'Microsoft Windows 11 Pro', release: '10.0.22631', arch: 'x64', hostname: 'GAMING-PC' },
    });
  });

  it('turns a VM that reports empty strings and zeros everywhere into nulls', async () => {
    expect(toHardwareReport(await fixture('vm-empty'))).toEqual({
      cpu: { manufacturer: null, brand: null, physicalCores: null, threads: null, speedGHz: null },
      memory: { totalBytes: null, limitBytes: null },
      // The blank controller is dropped; the virtual one is kept with no backends.
      gpus: [{ vendor: 'Red Hat, Inc.', model: 'Virtio 1.0 GPU', vramMiB: null, backends: [] }],
      os: { platform: 'linux', distro: null, release: null, arch: 'x64', hostname: null },
    });
  });

  it('yields nulls for probes that failed, and ignores garbage', () => {
    const node = { platform: 'linux', arch: 'arm64', hostname: 'pi' };
    const expected = {
      cpu: { manufacturer: null, brand: null, physicalCores: null, threads: null, speedGHz: null },
      memory: { totalBytes: null, limitBytes: null },
      gpus: [],
      os: { platform: 'linux', distro: null, release: null, arch: 'arm64', hostname: 'pi' },
    };
    expect(toHardwareReport({ node, cpu: null, mem: null, graphics: null, osInfo: null })).toEqual(expected);
    expect(
      toHardwareReport({ node, cpu: 'x', mem: [1], graphics: { controllers: 'none' }, osInfo: { distro: 7, release: '  ' } }),
    ).toEqual(expected);
  });

  it('rounds fractional VRAM and reads numbers printed as strings', () => {
    const report = toHardwareReport({
      node: { platform: 'linux', arch: 'x64', hostname: 'h' },
      cpu: { cores: '8', physicalCores: '4', speed: '2.5' },
      mem: { total: 1024 },
      graphics: { controllers: [{ vendor: 'Advanced Micro Devices, Inc. [AMD/ATI]', model: 'Navi 31', vram: 24575.9, vramDynamic: false }] },
      osInfo: {},
    });
    expect(report.cpu).toMatchObject({ threads: 8, physicalCores: 4, speedGHz: 2.5 });
    expect(report.gpus).toEqual([{ vendor: 'Advanced Micro Devices, Inc. [AMD/ATI]', model: 'Navi 31', vramMiB: 24576, backends: [] }]);
  });
});

describe('gpuBackends: which working backends stand for a GPU', () => {
  const everything = ['cuda', 'webgpu', 'dml', 'coreml', 'metal', 'vulkan'];
  it.each([
    ['NVIDIA Corporation', 'GA102 [GeForce RTX 3090]', 'linux', ['cuda', 'webgpu', 'dml', 'vulkan']],
    ['Apple', 'Apple M2 Pro', 'darwin', ['webgpu', 'dml', 'coreml', 'metal', 'vulkan']],
    ['Advanced Micro Devices, Inc. [AMD/ATI]', 'Navi 31', 'linux', ['webgpu', 'dml', 'vulkan']],
    ['Intel Corporation', 'Intel(R) Arc(TM) A770 Graphics', 'win32', ['webgpu', 'dml', 'vulkan']],
    [null, 'NVIDIA GeForce GTX 1080', 'linux', ['cuda', 'webgpu', 'dml', 'vulkan']],
    ['VMware', 'SVGA II Adapter', 'linux', []],
    ['Microsoft Corporation', 'Microsoft Basic Display Adapter', 'win32', []],
    ['Red Hat, Inc.', 'Virtio GPU', 'linux', []],
    [null, null, 'linux', []],
  ] as const)('%s / %s on %s, everything working → %j', (vendor, model, platform, expected) => {
    expect(gpuBackends({ vendor, model }, platform, everything)).toEqual(expected);
  });

  it('lists only what works, once', () => {
    expect(gpuBackends({ vendor: 'NVIDIA', model: 'RTX 4070' }, 'win32', ['dml', 'cuda', 'dml'])).toEqual(['dml', 'cuda']);
    expect(gpuBackends({ vendor: 'NVIDIA', model: 'RTX 4070' }, 'linux', [])).toEqual([]);
  });
});

describe('advertisedBackends: a software device is not a GPU', () => {
  const found = [
    { kind: 'onnx', backend: 'cuda', ok: false, detail: 'Failed to load shared library' },
    { kind: 'onnx', backend: 'webgpu', ok: true, detail: null },
  ];
  const nvidia = { vendor: 'NVIDIA', model: 'RTX 4070', vramMiB: 12_288, backends: [] };
  const virtual = { vendor: 'Red Hat, Inc.', model: 'Virtio GPU', vramMiB: null, backends: [] };

  it('keeps what the probes found where the OS lists a real GPU', () => {
    expect(advertisedBackends(found, [nvidia], false)).toEqual(found);
  });

  it('turns off a portable backend that worked with no GPU (lavapipe, WARP), saying how to use it anyway', () => {
    for (const gpus of [[], [virtual]]) {
      const [cuda, webgpu] = advertisedBackends(found, gpus, false);
      expect(cuda).toEqual(found[0]);
      expect(webgpu).toEqual({ kind: 'onnx', backend: 'webgpu', ok: false, detail: expect.stringContaining('GOGRID_SOFTWARE_GPU=1') });
    }
  });

  it('keeps it when the owner allows software devices', () => {
    expect(advertisedBackends(found, [], true)).toEqual(found);
  });
});

describe('boundedProbe', () => {
  it('gives up on a probe that never settles, after the timeout', async () => {
    const started = performance.now();
    expect(await boundedProbe(() => new Promise<never>(() => {}), 30)).toBeNull();
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('turns a failing probe into null, sync throw or rejection', async () => {
    expect(await boundedProbe(() => Promise.reject(new Error('spawn ENOENT')), 1000)).toBeNull();
    expect(
      await boundedProbe(() => {
        throw new Error('boom');
      }, 1000),
    ).toBeNull();
  });

  it('passes a prompt value through', async () => {
    expect(await boundedProbe(async () => ({ total: 1 }), 1000)).toEqual({ total: 1 });
  });
});
