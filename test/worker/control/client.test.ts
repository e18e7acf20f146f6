import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { controlClient } from '../../../src/worker/control/client.js';
import { controlFilePath } from '../../../src/worker/control/control-file.js';
import { startControlServer, type ControlServer } from '../../../src/worker/control/server.js';
import { MemoryTarget } from './memory-target.js';

const silent = pino({ level: 'silent' });

describe('control client', () => {
  let dir: string;
  let server: ControlServer | undefined;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gogrid-client-'));
  });
  afterEach(async () => {
    await server?.close();
    server = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  it("finds the running worker by its data dir and drives it", async () => {
    const target = new MemoryTarget();
    server = await startControlServer({ target, dataDir: dir, logger: silent });
    const client = await controlClient(dir);
    expect(client.url).toBe(server.url);
    expect((await client.act({ action: 'pause' })).policy.control).toEqual({ state: 'paused' });
    expect((await client.status()).policy.reason).toBe('Paused by you');
    expect((await client.updateSettings({ policy: { preset: 'desktop' } })).settings.policy).toEqual({ preset: 'desktop' });
    expect(target.calls.map((c) => c.method)).toEqual(['act', 'updateSettings']);
  });

  it('passes the worker\'s error code through', async () => {
    server = await startControlServer({ target: new MemoryTarget(), dataDir: dir, logger: silent });
    const client = await controlClient(dir);
    await expect(client.act({ action: 'snooze', minutes: 0 })).rejects.toMatchObject({ code: 'GG_ERR_BAD_REQUEST', message: expect.stringContaining('minutes') });
  });

  it('says no worker is running when there is no control.json', async () => {
    await expect(controlClient(dir)).rejects.toMatchObject({ code: 'GG_ERR_WORKER_NOT_RUNNING', message: `no worker is running with data dir ${dir}` });
  });

  it('says no worker is running when the pid in control.json is dead', async () => {
    const child = spawn(process.execPath, ['-e', '']);
    const pid = child.pid!;
    await once(child, 'exit');
    await writeFile(controlFilePath(dir), JSON.stringify({ url: 'http://127.0.0.1:9', token: 'x', pid }));
    await expect(controlClient(dir)).rejects.toMatchObject({ code: 'GG_ERR_WORKER_NOT_RUNNING' });
  });

  it('says no worker is running when the pid lives but nothing listens', async () => {
    server = await startControlServer({ target: new MemoryTarget(), dataDir: dir, logger: silent });
    const { url, token } = server;
    await server.close();
    server = undefined;
    // What a worker killed with SIGKILL leaves behind, with its pid reused by a live process.
    await writeFile(controlFilePath(dir), JSON.stringify({ url, token, pid: process.pid }));
    const client = await controlClient(dir);
    await expect(client.status()).rejects.toMatchObject({ code: 'GG_ERR_WORKER_NOT_RUNNING' });
  });

  it('reports a damaged control.json as such', async () => {
    await writeFile(controlFilePath(dir), '{"url": 5}');
    await expect(controlClient(dir)).rejects.toMatchObject({ code: 'GG_ERR_CONFIG_INVALID' });
    await writeFile(controlFilePath(dir), 'not json');
    await expect(controlClient(dir)).rejects.toMatchObject({ code: 'GG_ERR_CONFIG_INVALID' });
  });
});

describe('control client against a worker that hangs', () => {
  it('gives up after its timeout with a clear message', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gogrid-client-'));
    // A socket that accepts and never answers: a worker stuck in a long synchronous call.
    const silentServer = createServer(() => undefined).listen(0, '127.0.0.1');
    await once(silentServer, 'listening');
    try {
      const { port } = silentServer.address() as AddressInfo;
      await writeFile(controlFilePath(dir), JSON.stringify({ url: `http://127.0.0.1:${port}`, token: 't', pid: process.pid }));
      const client = await controlClient(dir, { timeoutMs: 200 });
      await expect(client.status()).rejects.toMatchObject({ code: 'GG_ERR_WORKER_NOT_RUNNING', message: `the worker with data dir ${dir} did not answer within 0.2 s` });
    } finally {
      silentServer.closeAllConnections();
      silentServer.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('control client against a newer worker', () => {
  it('fails on an error code it does not know, naming the code, and not as retryable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gogrid-client-'));
    const newer = createServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'GG_ERR_FROM_THE_FUTURE', message: 'not now' } }));
    }).listen(0, '127.0.0.1');
    await once(newer, 'listening');
    try {
      const { port } = newer.address() as AddressInfo;
      await writeFile(controlFilePath(dir), JSON.stringify({ url: `http://127.0.0.1:${port}`, token: 't', pid: process.pid }));
      const failure = await (await controlClient(dir)).status().catch((e: unknown) => e);
      expect(failure).toMatchObject({ code: 'GG_ERR_MESSAGE_UNKNOWN', retryable: false, message: expect.stringMatching(/^not now \(GG_ERR_FROM_THE_FUTURE: /) });
    } finally {
      newer.closeAllConnections();
      newer.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
