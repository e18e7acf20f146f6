/**
 * One WorkerView per state the status window must show, for the renderer
 * tests; each parsed with the protocol schema so a fixture cannot drift from
 * the contract.
 */
import { WorkerView } from '../../src/protocol/control.js';

const base: WorkerView = WorkerView.parse({
  appVersion: '0.1.0-test',
  connection: { state: 'online', detail: null, coordinator: 'grid.example.com:8443' },
  worker: { id: 'w-1b8b0e9ba0edc647', name: 'lab-pc-07' },
  hardware: {
    summary: 'Intel Core i7-1165G7 · 8 threads · 16 GiB · NVIDIA RTX 3060',
    cpu: 'Intel Core i7-1165G7',
    threads: 8,
    memoryBytes: 16 * 2 ** 30,
    gpus: ['NVIDIA RTX 3060'],
    os: 'linux x64',
  },
  jobs: { running: [], completedToday: 3, failedToday: 0, lastError: null },
  policy: { run: true, cause: 'away', reason: 'Running: this computer has been idle for 12 min', control: { state: 'active' }, byAdmin: false },
  settings: { policy: { preset: 'desktop' }, startAtLogin: true },
});

const view = (patch: (v: WorkerView) => WorkerView): WorkerView => WorkerView.parse(patch(structuredClone(base)));

export const VIEWS = {
  'not-enrolled': view((v) => ({
    ...v,
    connection: { state: 'not-enrolled', detail: null, coordinator: null },
    worker: null,
    hardware: null,
    jobs: { ...v.jobs, completedToday: 0 },
    policy: { ...v.policy, run: false, cause: 'starting', reason: 'Starting' },
  })),
  connecting: view((v) => ({
    ...v,
    connection: { state: 'connecting', detail: 'connecting to grid.example.com:8443', coordinator: 'grid.example.com:8443' },
    jobs: { ...v.jobs, completedToday: 0 },
  })),
  idle: base,
  working: view((v) => ({
    ...v,
    jobs: {
      ...v.jobs,
      running: [{ jobId: 'j-b43f0a90b37bdfe4', kind: 'onnx', modelName: 'mlp.onnx', progress: 0.4, detail: null, startedAt: '2026-01-05T10:00:00.000Z', suspended: false }],
    },
  })),
  'paused-by-you': view((v) => ({ ...v, policy: { ...v.policy, run: false, cause: 'user', reason: 'Paused by you', control: { state: 'paused' } } })),
  'paused-by-admin': view((v) => ({
    ...v,
    policy: { ...v.policy, run: false, cause: 'admin', reason: 'Paused by the administrator: maintenance until 18:00', byAdmin: true },
  })),
  error: view((v) => ({
    ...v,
    connection: { state: 'failed', detail: 'GG_ERR_WORKER_REVOKED: this worker was revoked by an administrator', coordinator: 'grid.example.com:8443' },
    jobs: { ...v.jobs, failedToday: 1, lastError: { message: 'GG_ERR_EXECUTOR_CRASHED: the job process exited with code 134', at: '2026-01-05T09:58:00.000Z' } },
  })),
} satisfies Record<string, WorkerView>;

export type ViewName = keyof typeof VIEWS;
