import { describe, expect, it } from 'vitest';
import { misfit, planAssignments, type SchedulableJob, type SchedulableWorker } from '../../src/coordinator/scheduler.js';
import type { HardwareReport, JobRequirements } from '../../src/protocol/index.js';

const GiB = 2 ** 30;
const hw = (
  o: { platform?: string; arch?: string; mem?: number | null; gpus?: HardwareReport['gpus']; llm?: HardwareReport['llm']; backends?: HardwareReport['backends'] } = {},
): HardwareReport => ({
  cpu: { manufacturer: null, brand: null, physicalCores: 4, threads: 8, speedGHz: null },
  memory: { totalBytes: o.mem === undefined ? 16 * GiB : o.mem },
  gpus: o.gpus ?? [],
  ...(o.llm !== undefined && { llm: o.llm }),
  ...(o.backends !== undefined && { backends: o.backends }),
  os: { platform: o.platform ?? 'linux', distro: null, release: null, arch: o.arch ?? 'x64', hostname: null },
});
const cuda = { vendor: 'NVIDIA', model: 'RTX 4070', vramMiB: 12_288, backends: ['cuda', 'vulkan'] };
const metal = { vendor: 'Apple', model: 'M2', vramMiB: null, backends: ['metal', 'coreml'] };
/** What onnxruntime's probe found on a worker. */
const onnxProbe = (backend: string, ok = true) => ({ kind: 'onnx', backend, ok, detail: ok ? null : 'Failed to load shared library' });

const worker = (id: string, o: Partial<SchedulableWorker> = {}): SchedulableWorker => ({
  id,
  hardware: hw(),
  executors: ['onnx'],
  labels: [],
  slots: 1,
  running: 0,
  placedVramMiB: 0,
  paused: false,
  gpuOff: null,
  cachedModels: new Set(),
  loadedModels: new Set(),
  cpuLoad: null,
  freeMemoryBytes: null,
  freeVramMiB: null,
  ...o,
});
const job = (id: string, requirements: JobRequirements = {}, o: Partial<SchedulableJob> = {}): SchedulableJob => ({
  id,
  kind: 'onnx',
  model: { sha256: 'm1' },
  requirements,
  ...o,
});

describe('misfit: can this worker ever run this job?', () => {
  it.each<[string, JobRequirements, Partial<SchedulableWorker>, string | null]>([
    ['no requirements', {}, {}, null],
    ['another kind', {}, { executors: ['llm'] }, 'runs no onnx jobs'],
    ['os matches', { os: ['linux', 'darwin'] }, {}, null],
    ['os differs', { os: ['win32'] }, {}, 'is linux, not win32'],
    ['arch matches', { arch: ['x64'] }, {}, null],
    ['arch differs', { arch: ['arm64'] }, {}, 'is x64, not arm64'],
    ['memory enough, exactly', { minFreeMemoryBytes: 16 * GiB }, {}, null],
    ['memory short', { minFreeMemoryBytes: 32 * GiB }, {}, 'has 16.0 GiB of memory, less than the 32.0 GiB needed'],
    ['memory unknown', { minFreeMemoryBytes: 1 }, { hardware: hw({ mem: null }) }, 'does not report its memory'],
    ['job memory cap enough, exactly', { minFreeMemoryBytes: 4 * GiB }, { hardware: { ...hw(), memory: { totalBytes: 16 * GiB, jobLimitBytes: 4 * GiB } } }, null],
    [
      'job memory cap short',
      { minFreeMemoryBytes: 6 * GiB },
      { hardware: { ...hw(), memory: { totalBytes: 16 * GiB, jobLimitBytes: 4 * GiB } } },
      'caps a job at 4.0 GiB of memory (GOGRID_JOB_MEMORY_LIMIT_MIB there), less than the 6.0 GiB needed',
    ],
    ['any GPU, none there', { gpu: {} }, {}, 'has no GPU its onnx runtime can use'],
    // An older worker's GPU list was guessed from vendor names; it ran ONNX jobs on the CPU only.
    ['any GPU, only a guessed one there', { gpu: {} }, { hardware: hw({ gpus: [cuda] }) }, 'has no GPU its onnx runtime can use'],
    ['any GPU, one backend works', { gpu: {} }, { hardware: hw({ backends: [onnxProbe('webgpu')] }) }, null],
    ['"any" is none named', { gpu: { backend: 'any' } }, { hardware: hw({ backends: [onnxProbe('webgpu')] }) }, null],
    ['any GPU, every probe failed', { gpu: {} }, { hardware: hw({ gpus: [cuda], backends: [onnxProbe('cuda', false)] }) }, 'has no GPU its onnx runtime can use'],
    ['cuda wanted, cuda works', { gpu: { backend: 'cuda' } }, { hardware: hw({ gpus: [metal, cuda], backends: [onnxProbe('cuda'), onnxProbe('webgpu')] }) }, null],
    ['cuda wanted, its probe failed', { gpu: { backend: 'cuda' } }, { hardware: hw({ gpus: [cuda], backends: [onnxProbe('cuda', false), onnxProbe('webgpu')] }) }, 'has no working cuda backend for onnx jobs'],
    ['cuda wanted, found by another runtime only', { gpu: { backend: 'cuda' } }, { hardware: hw({ gpus: [cuda], backends: [{ ...onnxProbe('cuda'), kind: 'llm' }] }) }, 'has no working cuda backend for onnx jobs'],
    ['cuda wanted, none, the CPU allowed', { gpu: { backend: 'cuda', fallback: true } }, {}, null],
    ['VRAM enough, exactly', { gpu: { backend: 'cuda', minVramMiB: 12_288 } }, { hardware: hw({ gpus: [cuda], backends: [onnxProbe('cuda')] }) }, null],
    ['VRAM short', { gpu: { minVramMiB: 16_000 } }, { hardware: hw({ gpus: [cuda], backends: [onnxProbe('cuda')] }) }, 'has no GPU with 16000 MiB of VRAM'],
    ['VRAM short, the CPU allowed', { gpu: { minVramMiB: 16_000, fallback: true } }, { hardware: hw({ gpus: [cuda], backends: [onnxProbe('cuda')] }) }, null],
    ['VRAM unknown counts as none', { gpu: { minVramMiB: 1 } }, { hardware: hw({ gpus: [metal], backends: [onnxProbe('coreml')] }) }, 'has no GPU with 1 MiB of VRAM'],
    // A software WebGPU device (GOGRID_SOFTWARE_GPU) stands for no GPU the OS lists.
    ['VRAM of a GPU behind another backend', { gpu: { backend: 'webgpu', minVramMiB: 1 } }, { hardware: hw({ gpus: [{ ...cuda, backends: ['cuda'] }], backends: [onnxProbe('webgpu')] }) }, 'has no GPU with 1 MiB of VRAM'],
    ['labels present', { labels: ['lab', 'fast'] }, { labels: ['fast', 'lab', 'x'] }, null],
    ['one label missing', { labels: ['lab', 'fast'] }, { labels: ['lab'] }, 'lacks the label fast'],
    ['two labels missing', { labels: ['a', 'b'] }, {}, 'lacks the labels a, b'],
  ])('%s', (_name, requirements, w, expected) => {
    expect(misfit(job('j', requirements), worker('w', w))).toBe(expected);
  });

  it('leaves an llm job to the memory llama.cpp sizes for itself: no job memory cap applies to it', () => {
    const capped = worker('w', { executors: ['llm'], hardware: { ...hw(), memory: { totalBytes: 16 * GiB, jobLimitBytes: 4 * GiB } } });
    expect(misfit(job('j', { minFreeMemoryBytes: 6 * GiB }, { kind: 'llm' }), capped)).toBeNull();
  });
});

describe('planAssignments', () => {
  it('prefers a worker that caches the model over a less loaded one', () => {
    const plan = planAssignments([job('j')], [worker('a', { slots: 4 }), worker('b', { slots: 4, running: 3, cachedModels: new Set(['m1']) })]);
    expect(plan.assignments).toEqual([{ jobId: 'j', workerId: 'b' }]);
  });

  it('matches an LLM job against the backend llama.cpp loaded, not the GPU list', () => {
    const llm = (backend?: string) => job('j', { gpu: backend ? { backend } : {} }, { kind: 'llm' });
    const w = (found: HardwareReport['llm']) => worker('w', { executors: ['llm'], hardware: hw({ gpus: [cuda], ...(found !== undefined && { llm: found }) }) });
    const vulkan = { gpu: 'vulkan' as const, devices: ['RTX 4070'], vramMiB: 12_288, freeVramMiB: 12_000 };
    expect(misfit(llm(), w(vulkan))).toBeNull();
    expect(misfit(llm('vulkan'), w(vulkan))).toBeNull();
    expect(misfit(llm('cuda'), w(vulkan))).toBe('has no working cuda backend for llm jobs');
    expect(misfit(llm(), w({ gpu: null, devices: [], vramMiB: null, freeVramMiB: null }))).toBe('has no GPU its llm runtime can use');
    expect(misfit(llm(), w(undefined))).toBe('has no GPU its llm runtime can use');
    expect(misfit({ ...llm('vulkan'), requirements: { gpu: { backend: 'vulkan', minVramMiB: 16_000 } } }, w(vulkan))).toBe('has no GPU with 16000 MiB of VRAM');
  });

  it("keeps GPU jobs off a worker whose owner keeps jobs off its GPU now, and says so; CPU jobs still go there", () => {
    const gpuHw = hw({ gpus: [cuda], backends: [onnxProbe('cuda')] });
    const away = 'GPU jobs wait until you are away';
    const busyOwner = worker('a', { hardware: gpuHw, gpuOff: away });
    const gpuJob = job('g', { gpu: { backend: 'cuda' } });
    expect(planAssignments([gpuJob], [busyOwner])).toEqual({ assignments: [], waiting: [{ jobId: 'g', reason: `the eligible worker is keeping jobs off its GPU now (${away})` }] });
    expect(planAssignments([gpuJob], [busyOwner, worker('b', { hardware: gpuHw, paused: true })]).waiting[0]?.reason).toBe(
      `the 2 eligible workers are paused or keeping jobs off their GPU now (${away})`,
    );
    expect(planAssignments([gpuJob], [busyOwner, worker('b', { hardware: gpuHw, running: 0 })]).assignments).toEqual([{ jobId: 'g', workerId: 'b' }]);
    expect(planAssignments([job('c')], [busyOwner]).assignments).toEqual([{ jobId: 'c', workerId: 'a' }]);
    // Allowed the CPU: it goes there, though a worker whose GPU it may use is preferred.
    const fallback = job('f', { gpu: { backend: 'cuda', fallback: true } });
    expect(planAssignments([fallback], [busyOwner]).assignments).toEqual([{ jobId: 'f', workerId: 'a' }]);
    expect(planAssignments([fallback], [busyOwner, worker('b', { hardware: gpuHw, slots: 2, running: 1 })]).assignments).toEqual([{ jobId: 'f', workerId: 'b' }]);
  });

  it('sends a GPU no more jobs at once than their declared VRAM fits, counting those already leased there', () => {
    const gpuHw = hw({ gpus: [cuda], backends: [onnxProbe('cuda')] });
    const needs = (id: string, minVramMiB: number, fallback = false) => job(id, { gpu: { backend: 'cuda', minVramMiB, fallback } });
    const w = (o: Partial<SchedulableWorker> = {}) => worker('a', { hardware: gpuHw, slots: 4, ...o });
    // 12,288 MiB: 8,000 and 4,000 fit together, a third does not, whatever slots are left.
    const plan = planAssignments([needs('j1', 8000), needs('j2', 4000), needs('j3', 1000)], [w()]);
    expect(plan.assignments.map((a) => a.jobId)).toEqual(['j1', 'j2']);
    expect(plan.waiting).toEqual([{ jobId: 'j3', reason: 'waiting for a free slot: the eligible worker is busy or short of free memory or VRAM' }]);
    expect(planAssignments([needs('j3', 1000)], [w({ running: 1, placedVramMiB: 12_000 })]).assignments).toEqual([]);
    expect(planAssignments([needs('j3', 288)], [w({ running: 1, placedVramMiB: 12_000 })]).assignments).toEqual([{ jobId: 'j3', workerId: 'a' }]);
    // Nor one whose GPU other programs fill, as the worker last reported it.
    expect(planAssignments([needs('j1', 8000)], [w({ freeVramMiB: 6000 })]).assignments).toEqual([]);
    expect(planAssignments([needs('j1', 6000)], [w({ freeVramMiB: 6000 })]).assignments).toEqual([{ jobId: 'j1', workerId: 'a' }]);
    // Jobs that declare none, or will run on the CPU there, take no VRAM.
    expect(planAssignments([job('cpu'), needs('f', 16_000, true)], [w({ placedVramMiB: 12_288, hardware: hw({ gpus: [cuda] }) })]).assignments.map((a) => a.jobId)).toEqual(['cpu', 'f']);
  });

  it('prefers the model loaded, then cached, then fitting in free memory or VRAM, over a less loaded worker', () => {
    const llm = job('j', {}, { kind: 'llm', model: { sha256: 'm1', size: 4 * GiB } });
    const pick = (...workers: SchedulableWorker[]) => planAssignments([llm], workers).assignments[0]?.workerId;
    const idle = { executors: ['llm'], slots: 4 };
    const busy = { ...idle, running: 3 };
    expect(pick(worker('a', { ...idle, cachedModels: new Set(['m1']) }), worker('b', { ...busy, loadedModels: new Set(['m1']) }))).toBe('b');
    expect(pick(worker('a', { ...idle, freeMemoryBytes: 8 * GiB }), worker('b', { ...busy, cachedModels: new Set(['m1']) }))).toBe('b');
    expect(pick(worker('a', { ...idle, freeMemoryBytes: 2 * GiB }), worker('b', { ...busy, freeMemoryBytes: 5 * GiB }))).toBe('b');
    expect(pick(worker('a', { ...idle, freeMemoryBytes: 2 * GiB }), worker('b', { ...busy, freeMemoryBytes: 1 * GiB, hardware: hw({ gpus: [cuda] }) }))).toBe('b');
    // A GPU whose VRAM is not known holds nothing for sure; a model of unknown size fits nowhere in particular.
    expect(pick(worker('a', idle), worker('b', { ...busy, hardware: hw({ gpus: [metal] }) }))).toBe('a');
    expect(planAssignments([{ ...llm, model: { sha256: 'm1' } }], [worker('a', idle), worker('b', { ...busy, freeMemoryBytes: 64 * GiB })]).assignments[0]?.workerId).toBe('a');
  });

  it('prefers a worker the job has not failed on, before one that has its model loaded, but uses it when no other fits', () => {
    const llm = job('j', {}, { kind: 'llm', model: { sha256: 'm1', size: 4 * GiB }, failedOn: ['a'] });
    const idle = { executors: ['llm'], slots: 4 };
    const pick = (...workers: SchedulableWorker[]) => planAssignments([llm], workers).assignments[0]?.workerId;
    expect(pick(worker('a', { ...idle, loadedModels: new Set(['m1']) }), worker('b', { ...idle, running: 3 }))).toBe('b');
    expect(pick(worker('a', { ...idle, loadedModels: new Set(['m1']) }))).toBe('a');
    expect(pick(worker('a', idle), worker('b', { ...idle, executors: ['onnx'] }))).toBe('a');
  });

  it('counts, for an LLM, the VRAM that llama.cpp found free where the worker probed it, not what the OS says the GPUs have', () => {
    const llm = job('j', {}, { kind: 'llm', model: { sha256: 'm1', size: 4 * GiB } });
    const pick = (...workers: SchedulableWorker[]) => planAssignments([llm], workers).assignments[0]?.workerId;
    const idle = { executors: ['llm', 'onnx'], slots: 4 };
    const busy = { ...idle, running: 3 };
    const found = (freeVramMiB: number | null) => ({ gpu: 'cuda' as const, devices: ['RTX 4070'], vramMiB: 12_288, freeVramMiB });
    const cpuOnly = { gpu: null, devices: [], vramMiB: null, freeVramMiB: null };
    expect(pick(worker('a', idle), worker('b', { ...busy, hardware: hw({ gpus: [cuda], llm: found(8192) }) }))).toBe('b');
    // Most of it taken by another program at the probe.
    expect(pick(worker('a', idle), worker('b', { ...busy, hardware: hw({ gpus: [cuda], llm: found(2048) }) }))).toBe('a');
    // A GPU that llama.cpp cannot use (no driver for its build), whatever its VRAM.
    expect(pick(worker('a', idle), worker('b', { ...busy, hardware: hw({ gpus: [cuda], llm: cpuOnly }) }))).toBe('a');
    // No probe (an older worker): the OS's VRAM, as before.
    expect(pick(worker('a', idle), worker('b', { ...busy, hardware: hw({ gpus: [cuda] }) }))).toBe('b');
    // An ONNX job is not llama.cpp's: VRAM counts where onnxruntime found the GPU's backend, for a job that asks for a GPU.
    const onnx = (requirements: JobRequirements) => job('o', requirements, { model: { sha256: 'm2', size: 4 * GiB } });
    const onnxGpu = hw({ gpus: [cuda], llm: cpuOnly, backends: [onnxProbe('cuda')] });
    expect(planAssignments([onnx({ gpu: {} })], [worker('a', { ...idle, hardware: onnxGpu }), worker('b', { ...busy, hardware: onnxGpu })]).assignments[0]?.workerId).toBe('a');
    expect(planAssignments([onnx({ gpu: { fallback: true } })], [worker('a', idle), worker('b', { ...busy, hardware: onnxGpu })]).assignments[0]?.workerId).toBe('b');
    expect(planAssignments([onnx({})], [worker('a', idle), worker('b', { ...busy, hardware: onnxGpu })]).assignments[0]?.workerId).toBe('a');
  });

  it('then the least loaded by slot use, then by CPU, then the lowest id', () => {
    expect(planAssignments([job('j')], [worker('a', { slots: 2, running: 1 }), worker('b', { slots: 4, running: 1 })]).assignments[0]?.workerId).toBe('b');
    expect(planAssignments([job('j')], [worker('a', { cpuLoad: 0.9 }), worker('b', { cpuLoad: 0.1 })]).assignments[0]?.workerId).toBe('b');
    expect(planAssignments([job('j')], [worker('b'), worker('a')]).assignments[0]?.workerId).toBe('a');
    // An unknown CPU load sits between busy and idle.
    expect(planAssignments([job('j')], [worker('a', { cpuLoad: 0.9 }), worker('b')]).assignments[0]?.workerId).toBe('b');
  });

  it('respects slot counts across the whole plan and spreads jobs', () => {
    const plan = planAssignments(
      ['1', '2', '3', '4', '5'].map((i) => job(i)),
      [worker('a', { slots: 2 }), worker('b', { slots: 1 })],
    );
    expect(plan.assignments).toEqual([
      { jobId: '1', workerId: 'a' },
      { jobId: '2', workerId: 'b' },
      { jobId: '3', workerId: 'a' },
    ]);
    expect(plan.waiting.map((w) => w.jobId)).toEqual(['4', '5']);
    expect(plan.waiting[0]?.reason).toBe('waiting for a free slot: the 2 eligible workers are busy or short of free memory');
  });

  it('serves jobs in the given queue order, so a later job cannot take an earlier one’s slot', () => {
    const plan = planAssignments([job('first'), job('second')], [worker('a')]);
    expect(plan.assignments).toEqual([{ jobId: 'first', workerId: 'a' }]);
  });

  it('never assigns to a paused worker, and says so', () => {
    const plan = planAssignments([job('j')], [worker('a', { paused: true })]);
    expect(plan).toEqual({ assignments: [], waiting: [{ jobId: 'j', reason: 'the eligible worker is paused' }] });
  });

  it('skips a worker short of free memory right now, but keeps it eligible', () => {
    const plan = planAssignments([job('j', { minFreeMemoryBytes: 4 * GiB })], [worker('a', { freeMemoryBytes: 1 * GiB })]);
    expect(plan.waiting[0]?.reason).toMatch(/^waiting for a free slot/);
    expect(planAssignments([job('j', { minFreeMemoryBytes: 4 * GiB })], [worker('a', { freeMemoryBytes: 8 * GiB })]).assignments).toHaveLength(1);
  });

  it('explains a job no connected worker can ever run, counting the reasons', () => {
    const plan = planAssignments(
      [job('j', { gpu: { backend: 'cuda' } })],
      [worker('a'), worker('b'), worker('c', { executors: [] }), worker('d', { hardware: hw({ gpus: [cuda], backends: [onnxProbe('cuda')] }), paused: true })],
    );
    expect(plan.assignments).toEqual([]);
    expect(plan.waiting[0]?.reason).toBe('the eligible worker is paused');
    const none = planAssignments([job('j', { gpu: { backend: 'cuda' } })], [worker('a'), worker('b'), worker('c', { executors: [] })]);
    expect(none.waiting[0]?.reason).toBe('no connected worker can run this job: has no working cuda backend for onnx jobs (2 workers); runs no onnx jobs (1 worker)');
  });

  it('says when no worker is connected at all', () => {
    expect(planAssignments([job('j')], []).waiting).toEqual([{ jobId: 'j', reason: 'no worker is connected' }]);
  });

  it('plans nothing for an empty queue', () => {
    expect(planAssignments([], [worker('a')])).toEqual({ assignments: [], waiting: [] });
  });
});
