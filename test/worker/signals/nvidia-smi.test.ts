/**
 * nvidia-smi's answers as recorded from drivers (two GPUs, a field it cannot
 * read, Windows line ends), and the reader around it: a missing binary,
 * a GPU our own job holds, reuse within maxAgeMs. There is no NVIDIA GPU
 * here: the tool itself is the boundary faked.
 */
import { describe, expect, it } from 'vitest';
import { gpuReadings, nvidiaReader, parseGpuRows, parsePids } from '../../../src/worker/signals/nvidia-smi.js';

describe('parsing nvidia-smi', () => {
  it('reads utilisation and temperature per GPU; [N/A] and nonsense are unknown', () => {
    expect(parseGpuRows('3, 41, 23104\n97, 83, 512\n')).toEqual([{ busy: 0.03, tempC: 41, freeMiB: 23104 }, { busy: 0.97, tempC: 83, freeMiB: 512 }]);
    expect(parseGpuRows('[N/A], 35, [N/A]\r\n12, [N/A], 100\r\n')).toEqual([{ busy: null, tempC: 35, freeMiB: null }, { busy: 0.12, tempC: null, freeMiB: 100 }]);
    expect(parseGpuRows('')).toEqual([]);
    expect(parseGpuRows('NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver.')).toEqual([{ busy: null, tempC: null, freeMiB: null }]);
    expect(parseGpuRows('250, 40')).toEqual([{ busy: null, tempC: 40, freeMiB: null }]);
    // Out of what a GPU can report, in every field: garbled, so unknown.
    for (const line of ['-5, -273, -1', '101, 9999999, 99999999999', '1e2, 4e1, 1e3', 'NaN, Infinity, 0x10']) {
      expect(parseGpuRows(line), line).toEqual([{ busy: null, tempC: null, freeMiB: null }]);
    }
    // Only the garbled field: the others are still readings.
    expect(parseGpuRows('50\u0000, 40, 10')).toEqual([{ busy: null, tempC: 40, freeMiB: 10 }]);
    expect(parseGpuRows('12.5, 40.7, 1023.9')).toEqual([{ busy: 0.125, tempC: 40.7, freeMiB: 1023 }]);
  });

  it('reads the pids holding a GPU context', () => {
    expect(parsePids('4242\n77\n')).toEqual([4242, 77]);
    expect(parsePids('')).toEqual([]);
  });

  it("counts the busiest GPU as other programs' only while no process of ours holds one, and reports the hottest", () => {
    const gpus = [{ busy: 0.2, tempC: 60, freeMiB: 8000 }, { busy: 0.7, tempC: 55, freeMiB: 20_000 }];
    expect(gpuReadings(gpus, [9], new Set([1, 2]))).toEqual({ gpuBusy: 0.7, gpuTempC: 60, freeVramMiB: 20_000 });
    expect(gpuReadings(gpus, [9, 2], new Set([1, 2]))).toEqual({ gpuBusy: null, gpuTempC: 60, freeVramMiB: 20_000 });
    expect(gpuReadings([{ busy: null, tempC: null, freeMiB: null }], [], new Set())).toEqual({ gpuBusy: null, gpuTempC: null, freeVramMiB: null });
  });
});

describe('nvidiaReader', () => {
  it('finds no nvidia-smi once and then stops looking', async () => {
    let calls = 0;
    const missing = Object.assign(new Error('spawn nvidia-smi ENOENT'), { code: 'ENOENT' });
    const read = nvidiaReader(() => [], { run: async () => (calls++, Promise.reject(missing)), maxAgeMs: 0 });
    expect(await read()).toEqual({ gpuBusy: null, gpuTempC: null, freeVramMiB: null });
    expect(await read()).toEqual({ gpuBusy: null, gpuTempC: null, freeVramMiB: null });
    expect(calls).toBe(2); // the two queries of the first read, none after
  });

  it('reuses a reading for maxAgeMs, then asks again; a failing driver is unknown, not absent', async () => {
    let t = 0;
    let answers = ['50, 70, 4096', '', 'x', ''];
    const run = async (args: string[]) => {
      if (answers[0] === 'x' && args[0]!.startsWith('--query-gpu')) {
        answers = answers.slice(2);
        throw new Error('Unable to determine the device handle');
      }
      const [gpus, apps] = answers;
      return args[0]!.startsWith('--query-gpu') ? gpus! : apps!;
    };
    const read = nvidiaReader(() => [1], { run, maxAgeMs: 5000, now: () => t });
    expect(await read()).toEqual({ gpuBusy: 0.5, gpuTempC: 70, freeVramMiB: 4096 });
    answers = ['x', '', '10, 40, 1024', ''];
    t = 4999;
    expect(await read()).toEqual({ gpuBusy: 0.5, gpuTempC: 70, freeVramMiB: 4096 });
    t = 5000;
    expect(await read()).toEqual({ gpuBusy: null, gpuTempC: null, freeVramMiB: null });
    t = 10_000;
    expect(await read()).toEqual({ gpuBusy: 0.1, gpuTempC: 40, freeVramMiB: 1024 });
  });
});
