/**
 * A worker on a network that drops UDP (flaky-link.ts drops every datagram
 * between it and the coordinator, as an office firewall does): it connects
 * over TLS on TCP on its own, runs jobs there, shows as `tcp` next to a QUIC
 * worker on the same coordinator, and moves back to QUIC once UDP gets through.
 * And one whose only way out is an HTTP proxy: everything goes through it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobInfo, WorkerInfo, WorkerList } from '../../src/protocol/api.js';
import { mlpAnswer, writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { connectProxy } from '../helpers/connect-proxy.js';
import { flakyLink, type FlakyLink } from '../helpers/flaky-link.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { within } from '../helpers/within.js';

let c: TestCoordinator;
let link: FlakyLink;

beforeAll(async () => {
  c = await startTestCoordinator();
  link = await flakyLink(() => c.port);
});
afterAll(async () => {
  await link.close();
  await c.stop();
  await removeTempDirs();
});

const workerInfo = async (id: string) => WorkerInfo.parse(await c.api('GET', `/v1/workers/${id}`));

describe('a worker whose UDP is dropped', () => {
  it('connects over TCP, runs jobs beside a QUIC worker, and moves back to QUIC when UDP gets through again', async () => {
    link.dropUdp = true;
    const behindFirewall = await startTestWorker({ port: link.port }, { token: await c.createToken(), transport: 'auto', quicRetryMs: 300 });
    const online = await within(15_000, 'online over TCP', behindFirewall.agent.waitFor('online'));
    expect(online.detail).toMatch(/ over TCP$/);
    const id = behindFirewall.identity.workerId;
    expect(await workerInfo(id)).toMatchObject({ state: 'online', transport: 'tcp' });

    // A mixed fleet: another worker on QUIC at the same coordinator.
    const direct = await startTestWorker(c, { token: await c.createToken(), transport: 'auto' });
    await direct.agent.waitFor('online');
    const fleet = WorkerList.parse(await c.api('GET', '/v1/workers'));
    expect(Object.fromEntries(fleet.map((w) => [w.id, w.transport]))).toEqual({ [id]: 'tcp', [direct.identity.workerId]: 'quic' });
    await direct.agent.stop();

    // A job over the TCP session: assigned, its model downloaded over HTTPS, its result sent back.
    const fixtures = writeOnnxFixtures(await tempDir());
    const sha256 = await c.addModel(fixtures.mlp);
    const job = JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256 }, input: { inputs: { x: { dtype: 'float32', dims: [1, 4], data: [1, 2, 3, 4] } } } }));
    const done = await c.finished(job.id, 60_000);
    expect(done).toMatchObject({ state: 'succeeded', workerId: id });
    const y = (done.output as { outputs: { y: { data: number[] } } }).outputs.y.data;
    mlpAnswer([1, 2, 3, 4]).forEach((v, i) => expect(y[i]).toBeCloseTo(v, 4));

    // UDP is back: within a few retries (every 300 ms here) the worker is on QUIC, and stays online.
    link.dropUdp = false;
    await expect.poll(async () => (await workerInfo(id)).transport, { timeout: 15_000 }).toBe('quic');
    await expect.poll(() => behindFirewall.agent.state, { timeout: 10_000 }).toMatchObject({ state: 'online', detail: expect.not.stringMatching(/TCP/) });
    await behindFirewall.agent.stop();
  });
});

describe('a worker whose only way out is an HTTP proxy', () => {
  it('enrolls, connects over TCP and downloads its model through HTTPS_PROXY, to a name only the proxy resolves', async () => {
    // The coordinator's name resolves nowhere but at the proxy: a worker that went around it would fail.
    const proxy = await connectProxy({ resolve: () => '127.0.0.1' });
    const saved = process.env.HTTPS_PROXY;
    process.env.HTTPS_PROXY = proxy.url().href;
    try {
      const address = `grid.gogrid-test.invalid:${c.port}`;
      const w = await startTestWorker(c, { token: await c.createToken(), coordinatorAddress: address, transport: 'auto' });
      const online = await within(15_000, 'online through the proxy', w.agent.waitFor('online'));
      expect(online.detail).toMatch(/ over TCP$/);
      const fixtures = writeOnnxFixtures(await tempDir());
      const sha256 = await c.addModel(fixtures.identity);
      const job = JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256 }, input: { inputs: {} }, maxAttempts: 1 }));
      // It fails on its input, after the worker fetched the model: the download is what is tested here.
      expect(await c.finished(job.id, 60_000)).toMatchObject({ state: 'failed', workerId: w.identity.workerId, error: { code: 'GG_ERR_INPUT_INVALID' } });
      // Enrollment (the CA, then the enroll call), the control connection, the model download.
      expect(proxy.asked.filter((a) => a === address).length).toBeGreaterThanOrEqual(4);
      await w.agent.stop();
    } finally {
      if (saved === undefined) delete process.env.HTTPS_PROXY;
      else process.env.HTTPS_PROXY = saved;
      await proxy.close();
    }
  });
});
