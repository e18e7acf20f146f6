/**
 * A coordinator killed outright closes no connection: its workers used to
 * notice only at the QUIC idle timeout (heartbeat_timeout_secs, 90 s by
 * default) and dial again after it. They now notice an unanswered heartbeat
 * within a third of it, and come back to the restarted coordinator by
 * themselves. Real processes: `gogrid coordinator` and `gogrid worker`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { WorkerList } from '../../src/protocol/api.js';
import { requestJson } from '../../src/transport/https-client.js';
import { removeTempDirs, runCli, tempDir, type CliProcess } from '../helpers/grid.js';

const children: CliProcess[] = [];
afterAll(async () => {
  for (const p of children) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(children.map((p) => p.exited));
  await removeTempDirs();
});

it('has its workers dial again within a third of the heartbeat timeout, and back once it restarts', { timeout: 90_000 }, async () => {
  const dir = await tempDir();
  let port = 0;
  // A 9 s timeout: the QUIC idle timeout the workers waited out before; the unanswered heartbeat takes 3 s.
  const startCoordinator = async () => {
    const p = runCli(['coordinator', '--data', dir, '--bind', '127.0.0.1', '--port', String(port), '--heartbeat-interval', '0.5', '--heartbeat-timeout', '9']);
    children.push(p);
    await p.waitFor(/listening on 127\.0\.0\.1:\d+/);
    port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(p.stdout())![1]);
    return p;
  };
  let coordinator = await startCoordinator();
  const [ca, key] = await Promise.all([readFile(join(dir, 'ca.crt'), 'utf8'), readFile(join(dir, 'admin.key'), 'utf8')]);
  const api = (method: 'GET' | 'POST', path: string, body?: unknown) =>
    requestJson({ url: `https://127.0.0.1:${port}${path}`, method, body, ca, headers: { authorization: `Bearer ${key.trim()}` }, timeoutMs: 10_000 });
  const online = () => expect.poll(async () => WorkerList.parse(await api('GET', '/v1/workers')).map((w) => w.state), { timeout: 20_000, interval: 100 }).toEqual(['online']);

  const { token } = (await api('POST', '/v1/tokens', {})) as { token: string };
  const worker = runCli(['worker', '--data', await tempDir(), '--coordinator', `127.0.0.1:${port}`, '--token', token, '--log-format', 'json']);
  children.push(worker);
  await online();

  coordinator.child.kill('SIGKILL');
  await coordinator.exited;
  const killedAt = Date.now();
  await worker.waitFor(/did not answer a heartbeat within 3 s; connecting again/, 8000);
  // Within the deadline after the last answered heartbeat, well before the 9 s idle timeout.
  expect(Date.now() - killedAt).toBeLessThan(6000);

  coordinator = await startCoordinator();
  await online();
});
