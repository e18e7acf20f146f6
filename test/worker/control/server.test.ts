import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { connect } from 'node:net';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { CONTROL_ROUTES, GridError, WorkerView } from '../../../src/protocol/index.js';
import { controlFilePath, readControlFile } from '../../../src/worker/control/control-file.js';
import { startControlServer, statusUrl, type ControlServer } from '../../../src/worker/control/server.js';
import { MemoryTarget } from './memory-target.js';

const silent = pino({ level: 'silent' });

interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): unknown;
}

/** node:http, not fetch: fetch will not send a forged Host header. */
function raw(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers, setHost: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text, json: () => JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function tryConnect(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe('control server', () => {
  let dir: string;
  let staticDir: string;
  let target: MemoryTarget;
  let server: ControlServer;
  let goodHeaders: Record<string, string>;
  const api = (method: string, path: string, body?: unknown, extra: Record<string, string> = {}) =>
    raw(server.port, method, path, { ...goodHeaders, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...extra }, body === undefined ? undefined : JSON.stringify(body));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gogrid-control-'));
    staticDir = join(dir, 'renderer');
    await mkdir(staticDir);
    await writeFile(join(staticDir, 'index.html'), '<!doctype html><title>GoGrid</title><script src="app.js"></script>');
    await writeFile(join(staticDir, 'app.js'), 'console.log("hi")');
    target = new MemoryTarget();
    server = await startControlServer({ target, dataDir: join(dir, 'data'), staticDir, logger: silent });
    goodHeaders = { host: `127.0.0.1:${server.port}`, authorization: `Bearer ${server.token}` };
  });
  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes control.json with mode 0600, naming its url, token and pid', async () => {
    const file = controlFilePath(join(dir, 'data'));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readControlFile(join(dir, 'data'))).toEqual({ url: `http://127.0.0.1:${server.port}`, token: server.token, pid: process.pid });
    expect(server.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('answers the status with the token, uncached, under the strict CSP', async () => {
    const res = await api('GET', CONTROL_ROUTES.status);
    expect(res.status).toBe(200);
    expect(WorkerView.parse(res.json())).toEqual(target.view());
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('refuses a missing or wrong token with 401', async () => {
    const host = { host: `127.0.0.1:${server.port}` };
    for (const headers of [host, { ...host, authorization: 'Bearer nope' }, { ...host, authorization: `Basic ${server.token}` }, { ...host, authorization: `Bearer ${server.token}x` }]) {
      const res = await raw(server.port, 'GET', CONTROL_ROUTES.status, headers);
      expect(res.status).toBe(401);
      expect(res.json()).toMatchObject({ error: { code: 'GG_ERR_UNAUTHENTICATED' } });
    }
    const post = await raw(server.port, 'POST', CONTROL_ROUTES.control, { ...host, 'content-type': 'application/json' }, '{"action":"pause"}');
    expect(post.status).toBe(401);
    expect(target.calls).toEqual([]);
  });

  it('refuses a Host other than 127.0.0.1:PORT or localhost:PORT with 403, token or not', async () => {
    for (const host of ['evil.example', `evil.example:${server.port}`, `127.0.0.1:${server.port + 1}`, '127.0.0.1', `[::1]:${server.port}`]) {
      const res = await api('GET', CONTROL_ROUTES.status, undefined, { host });
      expect(res.status, host).toBe(403);
      expect(res.json()).toMatchObject({ error: { code: 'GG_ERR_HOST_REFUSED', message: expect.stringContaining('Host') } });
    }
    expect((await api('GET', CONTROL_ROUTES.status, undefined, { host: `localhost:${server.port}` })).status).toBe(200);
    expect((await api('GET', CONTROL_ROUTES.status, undefined, { host: `LOCALHOST:${server.port}` })).status).toBe(200);
  });

  it('refuses a foreign Origin with 403 and takes its own', async () => {
    for (const origin of ['http://evil.example', 'null', `https://127.0.0.1:${server.port}`, `http://127.0.0.1:${server.port + 1}`, `http://localhost.evil.example:${server.port}`]) {
      const res = await api('POST', CONTROL_ROUTES.control, { action: 'pause' }, { origin });
      expect(res.status, origin).toBe(403);
      expect(res.json()).toMatchObject({ error: { code: 'GG_ERR_HOST_REFUSED', message: expect.stringContaining('Origin') } });
    }
    expect(target.calls).toEqual([]);
    for (const origin of [`http://127.0.0.1:${server.port}`, `http://localhost:${server.port}`]) {
      expect((await api('GET', CONTROL_ROUTES.status, undefined, { origin })).status).toBe(200);
    }
  });

  it('refuses bad bodies with 400 naming the field', async () => {
    const cases: Array<[string, string, unknown, RegExp]> = [
      ['POST', CONTROL_ROUTES.control, { action: 'snooze', minutes: 0 }, /^minutes: /],
      ['POST', CONTROL_ROUTES.control, { action: 'snooze' }, /give either untilMs or minutes/],
      ['POST', CONTROL_ROUTES.control, { action: 'fly' }, /^action: /],
      ['POST', CONTROL_ROUTES.control, { action: 'pause', extra: 1 }, /extra/],
      ['POST', CONTROL_ROUTES.enroll, { coordinator: 'grid:8443' }, /^token: /],
      ['PUT', CONTROL_ROUTES.settings, {}, /nothing to change/],
      ['PUT', CONTROL_ROUTES.settings, { policy: { preset: 'custom', idleMinutes: 0 } }, /^policy\.idleMinutes: /],
    ];
    for (const [method, path, body, message] of cases) {
      const res = await api(method, path, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json()).toMatchObject({ error: { code: 'GG_ERR_BAD_REQUEST', message: expect.stringMatching(message) } });
    }
    const broken = await raw(server.port, 'POST', CONTROL_ROUTES.control, { ...goodHeaders, 'content-type': 'application/json' }, '{"action":');
    expect(broken.status).toBe(400);
    expect(target.calls).toEqual([]);
  });

  describe('commands', () => {
    afterEach(() => {
      target.calls.length = 0;
    });

    it('passes a valid action to the target and answers its view', async () => {
      const res = await api('POST', CONTROL_ROUTES.control, { action: 'snooze', minutes: 90 });
      expect(res.status).toBe(200);
      expect(WorkerView.parse(res.json()).policy.control.state).toBe('snoozed');
      expect(target.calls).toEqual([{ method: 'act', arg: { action: 'snooze', minutes: 90 } }]);
      expect((await api('PUT', CONTROL_ROUTES.settings, { policy: { preset: 'desktop' } })).status).toBe(200);
      expect(target.view().settings.policy).toEqual({ preset: 'desktop' });
    });

    it("answers the target's GridError with its code's status", async () => {
      target.enrollError = new GridError('GG_ERR_TOKEN_MALFORMED', 'the token is not of the form gg1.…');
      const res = await api('POST', CONTROL_ROUTES.enroll, { coordinator: 'grid.example:8443', token: 'nonsense' });
      target.enrollError = null;
      expect(res.status).toBe(400);
      expect(res.json()).toEqual({ error: { code: 'GG_ERR_TOKEN_MALFORMED', message: 'the token is not of the form gg1.…' } });
    });
  });

  it('serves the page at / without the token but with the Host check and the CSP', async () => {
    const page = await raw(server.port, 'GET', '/', { host: `127.0.0.1:${server.port}` });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>GoGrid</title>');
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toBe(
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect((await raw(server.port, 'GET', '/app.js', { host: `localhost:${server.port}` })).status).toBe(200);
    const rebound = await raw(server.port, 'GET', '/', { host: `attacker.example:${server.port}` });
    expect(rebound.status).toBe(403);
    expect(rebound.body).not.toContain('GoGrid</title>');
    expect((await raw(server.port, 'GET', '/missing.js', { host: `127.0.0.1:${server.port}` })).status).toBe(404);
  });

  it('puts the token in the fragment of the status URL', () => {
    expect(statusUrl(server.url, server.token)).toBe(`http://127.0.0.1:${server.port}/#token=${server.token}`);
    expect(new URL(statusUrl(server.url, 'a/b+c')).hash).toBe('#token=a%2Fb%2Bc');
  });

  it('listens on 127.0.0.1 only', async () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    // Bound to 0.0.0.0, another loopback address would connect too.
    expect(await tryConnect('127.0.0.2', server.port)).toBe('ECONNREFUSED');
    expect(await tryConnect('127.0.0.1', server.port)).toBe('connected');
  });
});

describe('control server lifecycle', () => {
  it('removes control.json on close, and a second close is harmless', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gogrid-control-'));
    try {
      const server = await startControlServer({ target: new MemoryTarget(), dataDir: dir, logger: silent });
      expect(await readControlFile(dir)).not.toBeNull();
      await server.close();
      await server.close();
      await expect(readFile(controlFilePath(dir))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(raw(server.port, 'GET', CONTROL_ROUTES.status, { host: `127.0.0.1:${server.port}` })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers 404 at / when it has no static files', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gogrid-control-'));
    const server = await startControlServer({ target: new MemoryTarget(), dataDir: dir, logger: silent });
    try {
      const res = await raw(server.port, 'GET', '/', { host: `127.0.0.1:${server.port}` });
      expect(res.status).toBe(404);
      expect(res.json()).toMatchObject({ error: { code: 'GG_ERR_NOT_FOUND' } });
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
