import { describe, expect, it } from 'vitest';
import { parseCoordinatorMessage, parseWorkerMessage, PROTOCOL_VERSION, type HardwareReport } from '../../src/protocol/messages.js';

const hardware: HardwareReport = {
  cpu: { manufacturer: null, brand: null, physicalCores: null, threads: 2, speedGHz: null },
  memory: { totalBytes: 1024 },
  gpus: [],
  os: { platform: 'linux', distro: null, release: null, arch: 'x64', hostname: null },
};
const hello = {
  type: 'hello',
  protocolVersion: PROTOCOL_VERSION,
  workerId: 'w-1',
  name: 'box',
  appVersion: '0.1.0',
  hardware,
  capabilities: { executors: [], slots: 0 },
};

describe('control messages', () => {
  it('parses a hello and fills defaults', () => {
    expect(parseWorkerMessage(hello)).toMatchObject({ type: 'hello', cachedModels: [] });
  });

  it('parses a heartbeat with a pause reason', () => {
    const hb = { type: 'heartbeat', status: 'paused', pausedReason: 'On battery (38 %)', load: { cpu: 0.5, freeMemoryBytes: null } };
    expect(parseWorkerMessage(hb)).toMatchObject({ status: 'paused', runningJobs: [] });
  });

  it.each([
    ['not an object', 42, 'GG_ERR_MESSAGE_UNKNOWN'],
    ['no type', { hello: true }, 'GG_ERR_MESSAGE_UNKNOWN'],
    ['unknown type', { type: 'launch.missiles' }, 'GG_ERR_MESSAGE_UNKNOWN'],
    ['a coordinator-only type from a worker', { type: 'welcome' }, 'GG_ERR_MESSAGE_UNKNOWN'],
    ['a hello missing hardware', { ...hello, hardware: undefined }, 'GG_ERR_FRAME_INVALID'],
    ['a heartbeat with CPU load over 1', { type: 'heartbeat', status: 'idle', load: { cpu: 1.5, freeMemoryBytes: 0 } }, 'GG_ERR_FRAME_INVALID'],
    ['a heartbeat with an unknown status', { type: 'heartbeat', status: 'dancing', load: { cpu: 0, freeMemoryBytes: 0 } }, 'GG_ERR_FRAME_INVALID'],
  ])('rejects %s', (_name, value, code) => {
    expect(() => parseWorkerMessage(value)).toThrow(expect.objectContaining({ code }));
  });

  it('names the failing field', () => {
    expect(() => parseWorkerMessage({ ...hello, name: '' })).toThrow(/name/);
  });

  it('parses every coordinator message type', () => {
    const at = new Date().toISOString();
    const job = { jobId: 'j', kind: 'onnx', model: { sha256: 'a'.repeat(64), size: 1, name: 'm' }, input: {}, timeoutMs: 1, attempt: 1 };
    const all = [
      { type: 'welcome', protocolVersion: 1, workerId: 'w', heartbeatIntervalSecs: 30, heartbeatTimeoutSecs: 90 },
      { type: 'job.assign', job, leaseId: 'l', leaseExpiresAt: at },
      { type: 'job.cancel', jobId: 'j', leaseId: 'l', reason: 'r' },
      { type: 'worker.policy', adminPolicy: { paused: true, message: 'Maintenance until 18:00' } },
      { type: 'worker.drain' },
      { type: 'cert.renew', certPem: 'PEM' },
      { type: 'heartbeat.ack' },
      { type: 'error', code: 'GG_ERR_WORKER_REVOKED', message: 'm', fatal: true },
    ];
    expect(all.map((m) => parseCoordinatorMessage(m).type)).toEqual(all.map((m) => m.type));
  });
});
