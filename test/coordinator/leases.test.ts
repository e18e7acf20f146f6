/** The lease table's VRAM count: what the dispatcher tells the scheduler of each worker's GPU already given out. */
import { describe, expect, it } from 'vitest';
import { LeaseTable } from '../../src/coordinator/leases.js';

describe('LeaseTable.vramOf', () => {
  it("adds up the VRAM the worker's leased jobs declared, and forgets a job's once its lease ends or moves", () => {
    const t = new LeaseTable();
    t.grant('w1', { jobId: 'a', leaseId: 'l1', kind: 'onnx', vramMiB: 6000 });
    t.grant('w1', { jobId: 'b', leaseId: 'l2', kind: 'onnx', vramMiB: 2000 });
    t.grant('w1', { jobId: 'c', leaseId: 'l3', kind: 'onnx' });
    t.grant('w2', { jobId: 'd', leaseId: 'l4', kind: 'onnx', vramMiB: 500 });
    expect([t.vramOf('w1'), t.vramOf('w2'), t.vramOf('nobody')]).toEqual([8000, 500, 0]);
    t.end('w1', 'a');
    expect(t.vramOf('w1')).toBe(2000);
    // Leased again elsewhere (a retry): it counts there, no longer here.
    t.grant('w2', { jobId: 'b', leaseId: 'l5', kind: 'onnx', vramMiB: 2000 });
    expect([t.vramOf('w1'), t.vramOf('w2')]).toEqual([0, 2500]);
    t.forgetWorker('w2');
    expect(t.vramOf('w2')).toBe(0);
  });
});
