/**
 * `gogrid submit` when the coordinator's answer is lost on the way: the job
 * was queued, the CLI saw the connection drop, and its retry (same
 * Idempotency-Key) must print that job rather than queue a second one. The
 * loss is real: a TCP proxy on loopback between the CLI and the coordinator
 * cuts the first connection at the moment the answer comes back.
 */
import net from 'node:net';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listJobs } from '../../src/coordinator/store/index.js';
import { caCertPath } from '../../src/coordinator/local-files.js';
import { writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, runCli, startTestCoordinator, tempDir, type TestCoordinator } from '../helpers/grid.js';

let c: TestCoordinator;
let mlpSha: string;

beforeAll(async () => {
  c = await startTestCoordinator();
  mlpSha = await c.addModel(writeOnnxFixtures(await tempDir()).mlp);
});
afterAll(async () => {
  await c.stop();
  await removeTempDirs();
});

/** Bytes the request body is padded to: past the TLS handshake by far, so "this much sent" means "the request is on its way". */
const BODY_BYTES = 200_000;

/**
 * Forwards connections to `target`; on the first, the coordinator's first
 * bytes after the client sent over half the body (its answer) are not passed
 * on: the client's connection is closed instead.
 */
async function answerDroppingProxy(target: number): Promise<{ port: number; dropped: Promise<void>; close(): void }> {
  let connections = 0;
  let drop!: () => void;
  const dropped = new Promise<void>((resolve) => (drop = resolve));
  const server = net.createServer((client) => {
    const first = ++connections === 1;
    const upstream = net.connect(target, '127.0.0.1');
    let sent = 0;
    client.on('data', (d: Buffer) => {
      sent += d.length;
      upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (first && sent > BODY_BYTES / 2) {
        client.destroy();
        upstream.destroy();
        drop();
      } else client.write(d);
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as net.AddressInfo).port, dropped, close: () => server.close() };
}

it('prints the job its lost first try queued, and queues nothing twice', { timeout: 60_000 }, async () => {
  const proxy = await answerDroppingProxy(Number(new URL(c.apiUrl).port));
  try {
    const input = join(await tempDir(), 'input.json');
    await writeFile(input, JSON.stringify({ pad: 'x'.repeat(BODY_BYTES) }));
    const before = await listJobs(c.parts.db, { limit: 100_000 });
    const cli = runCli(
      ['submit', '--model', mlpSha, '--kind', 'nobody-runs-this', '--input', input, '--api', `https://127.0.0.1:${proxy.port}`, '--ca', caCertPath(c.dataDir)],
      { GOGRID_API_KEY: c.adminKey },
    );
    expect(await cli.exited, cli.stderr()).toBe(0);
    await proxy.dropped;
    expect(cli.stderr()).toMatch(/^gogrid: GG_ERR_COORDINATOR_UNREACHABLE: .*; trying again \(2 of 3, Idempotency-Key [0-9a-f-]{36}\)$/m);
    const after = await listJobs(c.parts.db, { limit: 100_000 });
    expect(after).toHaveLength(before.length + 1);
    expect(cli.stdout().trim()).toBe(after[0]!.id);
  } finally {
    proxy.close();
  }
});

it('queues nothing again when the same --idempotency-key is given twice, and says which job it was', { timeout: 60_000 }, async () => {
  const input = join(await tempDir(), 'input.json');
  await writeFile(input, JSON.stringify({ n: 1 }));
  const submit = async () => {
    const cli = runCli(['submit', '--model', mlpSha, '--kind', 'nobody-runs-this', '--input', input, '--idempotency-key', 'nightly-2026-12-07', '--data', c.dataDir]);
    expect(await cli.exited, cli.stderr()).toBe(0);
    return cli.stdout().trim();
  };
  const first = await submit();
  expect(await submit()).toBe(first);
  await writeFile(input, JSON.stringify({ n: 2 }));
  const other = runCli(['submit', '--model', mlpSha, '--kind', 'nobody-runs-this', '--input', input, '--idempotency-key', 'nightly-2026-12-07', '--data', c.dataDir]);
  expect(await other.exited).toBe(1);
  expect(other.stderr()).toMatch(/^gogrid: GG_ERR_IDEMPOTENCY_KEY_REUSED: Idempotency-Key nightly-2026-12-07 was sent with another request before/);
});

it('says why a job waits while --wait waits, and on Ctrl+C leaves the job queued and says how to follow it', { timeout: 60_000 }, async () => {
  const input = join(await tempDir(), 'input.json');
  await writeFile(input, JSON.stringify({ n: 3 }));
  const cli = runCli(['submit', '--model', mlpSha, '--kind', 'nobody-runs-this', '--input', input, '--wait', '--data', c.dataDir]);
  await cli.waitFor(/^job j-\S+: queued \(.+\)$/m);
  const id = /^job (j-\S+): queued/m.exec(cli.stderr())![1]!;
  // No worker is connected to this coordinator: the scheduler's own words.
  expect(cli.stderr()).toMatch(new RegExp(`^job ${id}: queued \\(no worker is connected\\)$`, 'm'));
  cli.child.kill('SIGINT');
  expect(await cli.exited).toBe(130);
  expect(cli.stderr()).toContain(`gogrid: stopped waiting; job ${id} goes on (follow it: gogrid job ${id}; stop it: gogrid cancel ${id})\n`);
  expect((await listJobs(c.parts.db, { limit: 100_000 })).find((j) => j.id === id)?.state).toBe('queued');
});
