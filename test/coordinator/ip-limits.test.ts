/**
 * What one client address may cost the HTTPS side: the counting itself
 * (pure, on a hand-moved clock), then a real coordinator on loopback closing
 * connections past the per-address cap and rate, a connection that never
 * sends a request, and answering 429 to an address that keeps trying wrong
 * API keys or enrollment tokens.
 */
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { ipKey, Throttle } from '../../src/coordinator/ip-limits.js';
import { COORDINATOR_SERVER_NAME, parseEnrollmentToken } from '../../src/protocol/index.js';
import { removeTempDirs, startTestCoordinator, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { connectRaw, rawWorker, type RawWorker } from '../helpers/raw-worker.js';
import { enroll } from '../../src/worker/enroll.js';
import { rawRequest } from '../helpers/https-raw.js';

describe('ipKey', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:0DB8:0001:0002:ffff::1', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['::1', '0:0:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    [undefined, 'unknown'],
  ])('counts %s as %s', (address, key) => {
    expect(ipKey(address)).toBe(key);
  });
});

describe('Throttle', () => {
  function clocked(opts: ConstructorParameters<typeof Throttle>[0]) {
    let now = 0;
    const t = new Throttle(opts, () => now);
    return { t, advance: (ms: number) => (now += ms) };
  }

  it('allows a burst, then one per refill, each key on its own', () => {
    const { t, advance } = clocked({ burst: 3, perSecond: 1 });
    expect([t.spend('a'), t.spend('a'), t.spend('a'), t.spend('a')]).toEqual([true, true, true, false]);
    expect(t.spend('b')).toBe(true);
    advance(999);
    expect(t.spend('a')).toBe(false);
    advance(1);
    expect([t.spend('a'), t.spend('a')]).toEqual([true, false]);
    advance(10_000);
    expect([t.spend('a'), t.spend('a'), t.spend('a'), t.spend('a')]).toEqual([true, true, true, false]);
  });

  it('refuses with GG_ERR_RATE_LIMITED and when to try again, spending nothing', () => {
    const { t, advance } = clocked({ burst: 2, perSecond: 1 / 3 });
    t.check('a', 'x');
    t.check('a', 'x');
    t.spend('a');
    t.spend('a');
    const refusal = (message: string) => {
      try {
        t.check('a', message);
      } catch (e) {
        return e;
      }
      return null;
    };
    expect(refusal('too many from a')).toMatchObject({ code: 'GG_ERR_RATE_LIMITED', message: 'too many from a; try again in 3 s', retryAfterSecs: 3 });
    advance(2000);
    expect(refusal('x')).toMatchObject({ retryAfterSecs: 1 });
    advance(1000);
    expect(() => t.check('a', 'x')).not.toThrow();
  });

  it('holds at most maxKeys, forgetting the one that spent longest ago', () => {
    const { t } = clocked({ burst: 2, perSecond: 0.001, maxKeys: 2 });
    t.spend('a');
    t.spend('b');
    t.spend('a');
    t.spend('c');
    // 'b' spent longest ago and was forgotten: it has its burst again; 'a' has spent both of its own.
    expect([t.spend('a'), t.spend('b'), t.spend('b')]).toEqual([false, true, true]);
  });
});

describe('a coordinator on loopback', () => {
  let c: TestCoordinator | undefined;
  afterEach(async () => {
    await c?.stop();
    c = undefined;
    await removeTempDirs();
  });

  /** A TLS connection that has finished its handshake (and sends nothing), or the error that ended it first. */
  function handshake(port: number): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ port, host: '127.0.0.1', servername: COORDINATOR_SERVER_NAME, ca: c!.ca.material.certPem });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
      s.once('close', () => reject(new Error('closed before the handshake finished')));
    });
  }

  it("closes an address's connection past max_https_connections_per_ip before its handshake, and takes one again when one closes", async () => {
    c = await startTestCoordinator({ toml: '[server]\nmax_https_connections_per_ip = 3\n' });
    const held = await Promise.all([1, 2, 3].map(() => handshake(c!.port)));
    await expect(handshake(c.port)).rejects.toThrow();
    // A closed one frees a place, once the coordinator has seen it close.
    held.pop()!.destroy();
    let again: tls.TLSSocket | null = null;
    for (let tries = 0; again === null && tries < 100; tries++) again = await handshake(c.port).catch(() => null);
    expect(again).not.toBeNull();
    again!.destroy();
    for (const s of held) s.destroy();
  });

  it("does not count workers' control connections over TCP against max_https_connections_per_ip (an office behind one NAT), nor close them for sending no request", async () => {
    c = await startTestCoordinator({ toml: '[server]\nmax_https_connections_per_ip = 2\n', httpsFirstRequestMs: 300 });
    // One at a time: a connection counts until its handshake is done, as every connection does.
    const workers: RawWorker[] = [];
    for (let i = 0; i < 4; i++) {
      const identity = await enroll({ dataDir: await tempDir(), coordinator: { host: '127.0.0.1', port: c.port }, token: await c.createToken() });
      workers.push(await rawWorker(c, identity, { executors: [], slots: 0 }, 'tcp'));
    }
    // Past the first-request deadline, and the cap still leaves room for HTTPS.
    await new Promise((resolve) => setTimeout(resolve, 600));
    const held = await Promise.all([1, 2].map(() => handshake(c!.port)));
    await expect(handshake(c.port)).rejects.toThrow();
    for (const w of workers) await w.send({ type: 'heartbeat', status: 'idle', pausedReason: null, load: { cpu: 0, freeMemoryBytes: 0 }, runningJobs: [] });
    expect(c.parts.sessions.onlineCount).toBe(4);
    for (const s of held) s.destroy();
    await Promise.all(workers.map((w) => w.close()));
  });

  it('closes connections an address opens faster than connections_per_ip_per_sec, after a burst of twice that', async () => {
    c = await startTestCoordinator({ toml: '[server]\nconnections_per_ip_per_sec = 5\n' });
    let opened = 0;
    for (;;) {
      const s = await handshake(c.port).catch(() => null);
      if (!s) break;
      s.destroy();
      opened++;
      expect(opened).toBeLessThan(30);
    }
    // Ten at once, plus what refilled at five a second while they were made.
    expect(opened).toBeGreaterThanOrEqual(10);
  });

  it('drops QUIC handshakes an address starts faster than connections_per_ip_per_sec, and counts them', { timeout: 60_000 }, async () => {
    c = await startTestCoordinator({ toml: '[server]\nconnections_per_ip_per_sec = 2\n' });
    const identity = await enroll({ dataDir: await tempDir(), coordinator: { host: '127.0.0.1', port: c.port }, token: await c.createToken() });
    const tls = { caPem: identity.caPem, certPem: identity.certPem, keyPem: identity.keyPem };
    // Eight at once: a burst of twice the rate gets through, the rest are dropped (their clients time out in 3 s).
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const conn = await connectRaw(c!.port, tls).catch((e: { code?: string }) => e.code ?? 'error');
        if (typeof conn === 'string') return conn;
        await conn.close();
        return 'connected';
      }),
    );
    expect(outcomes.filter((o) => o === 'connected').length).toBeGreaterThanOrEqual(4);
    expect(outcomes.filter((o) => o === 'connected').length).toBeLessThan(8);
    expect(new Set(outcomes)).toEqual(new Set(['connected', 'GG_ERR_COORDINATOR_UNREACHABLE']));
    const metrics = await rawRequest({ url: `${c.apiUrl}/metrics`, ca: c.ca.material.certPem, headers: { authorization: `Bearer ${c.adminKey}` } });
    expect(metrics.body.toString()).toMatch(/^gogrid_refusals_total\{reason="quic_per_ip_rate"\} [1-9]/m);
  });

  it('closes a connection that sends no request, and keeps one that does', async () => {
    c = await startTestCoordinator({ httpsFirstRequestMs: 300 });
    const idle = await handshake(c.port);
    const started = performance.now();
    await once(idle, 'close');
    expect(performance.now() - started).toBeLessThan(5000);
    // A plain TCP connection that never starts TLS goes too (the handshake timeout).
    const raw = net.connect(c.port, '127.0.0.1');
    await once(raw, 'close');
    // A request in time is answered, and later requests on it too.
    const busy = await handshake(c.port);
    const answers: string[] = [];
    busy.on('data', (d: Buffer) => answers.push(d.toString()));
    const ask = () => busy.write(`GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n`);
    ask();
    await new Promise<void>((resolve) => busy.once('data', () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 500)); // longer than the first-request deadline
    ask();
    await new Promise<void>((resolve) => busy.once('data', () => resolve()));
    expect(answers.join('')).toMatch(/HTTP\/1\.1 200[\s\S]*HTTP\/1\.1 200/);
    busy.destroy();
  });

  it('answers 429 with Retry-After to an address that keeps sending wrong API keys, also for the right one', async () => {
    c = await startTestCoordinator();
    const get = (key: string) =>
      rawRequest({ url: `${c!.apiUrl}/v1/workers`, ca: c!.ca.material.certPem, headers: { authorization: `Bearer ${key}` } });
    for (let i = 0; i < 20; i++) expect((await get(`ggk_wrong_${i}`)).status).toBe(401);
    const refused = await get('ggk_wrong_again');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toMatch(/^[1-3]$/);
    expect(refused.json()).toMatchObject({ error: { code: 'GG_ERR_RATE_LIMITED', type: 'rate_limit_error', message: expect.stringMatching(/^too many wrong enrollment tokens or API keys from 127\.0\.0\.1; try again in [1-3] s$/) } });
    expect((await get(c.adminKey)).status).toBe(429);
  });

  it('answers 429 to wrong secrets for one enrollment token before its address runs out, and spends nothing of the token', async () => {
    c = await startTestCoordinator();
    const token = parseEnrollmentToken(await c.createToken());
    const enroll = (secret: string) =>
      rawRequest({
        url: `${c!.apiUrl}/v1/enroll`,
        method: 'POST',
        ca: c!.ca.material.certPem,
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(JSON.stringify({ tokenId: token.id, tokenSecret: secret, proposedWorkerId: 'w-x', name: 'x', csrPem: 'not a csr' })),
      });
    const codes: string[] = [];
    for (let i = 0; i < 11; i++) codes.push(((await enroll(`wrong-secret-${String(i).padStart(9, '0')}`)).json() as { error: { code: string } }).error.code);
    expect(codes).toEqual([...Array<string>(10).fill('GG_ERR_TOKEN_INVALID'), 'GG_ERR_RATE_LIMITED']);
    expect(((await enroll(token.secret)).json() as { error: { message: string } }).error.message).toMatch(new RegExp(`^too many wrong secrets for enrollment token ${token.id}; try again in [1-6] s$`));
    expect((await c.api<{ id: string; uses: number }[]>('GET', '/v1/tokens')).find((t) => t.id === token.id)?.uses).toBe(0);
  });
});
