/**
 * A real coordinator, a real worker, and a stream of hostile requests and
 * frames: every HTTP route with hostile path parameters, queries and bodies,
 * control frames with a hostile field from an enrolled worker, and QUIC
 * datagrams from anyone (every long-header type, short headers, noise). The
 * properties: every answer is a 4xx with `{ error: { code, message } }` or a
 * success (never a 500), a bad frame gets an error frame naming the problem,
 * no rejection goes unhandled, and the healthy worker is never disturbed: it
 * stays online and still runs a job to the known answer at the end.
 * A failure prints fast-check's seed and path; pass them to `fc.assert` to replay it.
 */
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiErrorBody, JobInfo } from '../../src/protocol/api.js';
import { COORDINATOR_SERVER_NAME } from '../../src/protocol/messages.js';
import { TENSOR_DTYPES } from '../../src/protocol/tensor.js';
import { enroll } from '../../src/worker/enroll.js';
import type { WorkerIdentity } from '../../src/worker/identity.js';
import { writeOnnxFixtures } from '../fixtures/make-onnx.js';
import { removeTempDirs, startTestCoordinator, startTestWorker, tempDir, type TestCoordinator } from '../helpers/grid.js';
import { hostileJson, hostileNumber, hostileString, withHostileField } from '../helpers/hostile.js';
import { rawRequest } from '../helpers/https-raw.js';
import { connectRaw, helloFrame } from '../helpers/raw-worker.js';

let c: TestCoordinator;
let healthy: Awaited<ReturnType<typeof startTestWorker>>;
let identity: WorkerIdentity;
let identitySha: string;
let disturbed = false;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  c = await startTestCoordinator();
  identitySha = await c.addModel(writeOnnxFixtures(await tempDir()).identity);
  healthy = await startTestWorker(c, { token: await c.createToken() });
  await healthy.agent.waitFor('online');
  c.parts.sessions.on('offline', (id) => {
    if (id === healthy.identity.workerId) disturbed = true;
  });
  identity = await enroll({ dataDir: await tempDir(), coordinator: { host: '127.0.0.1', port: c.port }, token: await c.createToken() });
});

afterAll(async () => {
  // Nothing else was affected: the healthy worker stayed online and still computes the known answer.
  expect(disturbed, 'the healthy worker went offline').toBe(false);
  // A fuzzed PUT /v1/policy can be a valid pause of the whole fleet ({ paused: true, message: <a fine string> }): lift it.
  await c.api('DELETE', '/v1/policy');
  const x = { dtype: 'string', dims: [3], data: ['\u202e', 'a\u0001b', '😀'] };
  const empty = Object.fromEntries(TENSOR_DTYPES.map((t) => [`x_${t}`, { dtype: t, dims: [0], data: [] }]));
  const job = JobInfo.parse(await c.api('POST', '/v1/jobs', { model: { sha256: identitySha }, input: { inputs: { ...empty, x_string: x } } }));
  const done = await c.finished(job.id);
  expect(done, JSON.stringify(done.error)).toMatchObject({ state: 'succeeded', output: { outputs: { y_string: x } } });
  await healthy.agent.stop();
  await c.stop();
  await removeTempDirs();
  process.off('unhandledRejection', onUnhandled);
  expect(unhandled, 'a rejection went unhandled').toEqual([]);
});

/** Every route the coordinator serves; a test below keeps this list complete. */
const ROUTES: [method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string][] = [
  ['GET', '/healthz'],
  ['GET', '/v1/enroll/ca'],
  ['POST', '/v1/enroll'],
  ['POST', '/v1/models'],
  ['GET', '/v1/models'],
  ['GET', '/v1/models/:model/info'],
  ['PUT', '/v1/models/:model/name'],
  ['POST', '/v1/models/:model/aliases'],
  ['DELETE', '/v1/models/:model/aliases/:alias'],
  ['GET', '/v1/models/:sha256'],
  ['POST', '/v1/jobs'],
  ['GET', '/v1/jobs'],
  ['GET', '/v1/jobs/:id'],
  ['POST', '/v1/jobs/:id/cancel'],
  ['GET', '/v1/jobs/:id/input'],
  ['POST', '/v1/jobs/:id/result'],
  ['GET', '/v1/workers'],
  ['GET', '/v1/workers/:id'],
  ['POST', '/v1/workers/:id/revoke'],
  ['GET', '/v1/workers/:id/policy'],
  ['PUT', '/v1/workers/:id/policy'],
  ['DELETE', '/v1/workers/:id/policy'],
  ['GET', '/v1/policy'],
  ['PUT', '/v1/policy'],
  ['DELETE', '/v1/policy'],
  ['GET', '/v1/tokens'],
  ['POST', '/v1/tokens'],
  ['DELETE', '/v1/tokens/:id'],
  ['GET', '/v1/keys'],
  ['POST', '/v1/keys'],
  ['DELETE', '/v1/keys/:id'],
  ['POST', '/v1/chat/completions'],
  ['POST', '/v1/embeddings'],
  ['POST', '/v1/completions'],
  ['GET', '/updates/:channel/:file'],
  ['GET', '/metrics'],
  ['GET', '/readyz'],
  ['GET', '/dashboard'],
  ['GET', '/dashboard/:file'],
  ['GET', '/v1/fleet'],
  ['GET', '/v1/fleet/workers'],
  ['GET', '/v1/fleet/events'],
];

/** Answers that never end (server-sent events): fuzzed in their own test (test/dashboard/dashboard.test.ts), not read to the end here. */
const STREAMS = new Set(['GET /v1/fleet/events']);

it('the fuzzed route list names every route the coordinator registers', () => {
  const dir = join(import.meta.dirname, '../../src/coordinator');
  const registered = readdirSync(dir)
    .filter((f) => f.startsWith('http') && f.endsWith('.ts'))
    .flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(/\b(?:app|admin)\.(get|post|put|delete)(?:<[^>]*>)?\('([^']+)'/g)])
    .map((m) => `${m[1]!.toUpperCase()} ${m[2]}`);
  expect(registered.length).toBeGreaterThan(20);
  expect(ROUTES.map(([m, p]) => `${m} ${p}`).sort()).toEqual([...new Set(registered)].sort());
});

/** Percent-encodes the UTF-8 of `s`; a lone surrogate becomes the invalid UTF-8 a hostile client would send for it. */
function encodePathPart(s: string): string {
  let out = '';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    const bytes = cp >= 0xd800 && cp <= 0xdfff ? Buffer.from([0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f)]) : Buffer.from(ch, 'utf8');
    out += [...bytes].map((b) => (/[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`)).join('');
  }
  return out || 'x';
}

const request = fc.record({
  route: fc.constantFrom(...ROUTES.filter(([m, p]) => !STREAMS.has(`${m} ${p}`))),
  params: fc.array(hostileString, { minLength: 2, maxLength: 2 }),
  query: fc.option(fc.tuple(fc.constantFrom('wait', 'limit', 'state', 'name', 'offset', 'x'), fc.oneof(hostileString, hostileNumber.map(String))), { nil: undefined }),
  body: fc.option(
    fc.oneof(
      hostileJson,
      withHostileField({ model: { sha256: 'a'.repeat(64) }, input: { inputs: {} } }, ['kind', 'input', 'requirements.labels', 'timeoutMs', 'queueTimeoutMs', 'model.sha256']),
      withHostileField({ ttlSecs: 60, description: 'd' }, ['description', 'ttlSecs', 'maxUses']),
      withHostileField({ scope: 'inference', name: 'n' }, ['scope', 'name']),
      withHostileField({ model: 'm', messages: [{ role: 'user', content: 'hi' }], prompt: 'p', max_tokens: 4 }, ['model', 'messages.0.content', 'messages.0.role', 'prompt', 'stop', 'seed', 'max_tokens']),
      withHostileField({ name: 'n', alias: 'a' }, ['name', 'alias']),
      withHostileField({ kind: 'llm', model: { sha256: 'a'.repeat(64) }, input: { prompt: 'p', maxTokens: 4 } }, ['input.prompt', 'input.maxTokens', 'input.messages', 'input.stop', 'input.seed', 'input.temperature']),
      withHostileField({ paused: true, message: 'm' }, ['message', 'settings', 'limits']),
    ),
    { nil: undefined },
  ),
  // What an HTTP header can carry of a hostile string (Node refuses to send the rest).
  idempotencyKey: fc.option(hostileString.map((k) => k.replace(/[^\t\x20-\x7e\x80-\xff]/g, '')), { nil: undefined }),
});

describe('every HTTP route, with hostile parameters, queries and bodies', () => {
  it('answers a 4xx error body or a success, never a 500', async () => {
    await fc.assert(
      fc.asyncProperty(request, async ({ route: [method, template], params, query, body, idempotencyKey }) => {
        let i = 0;
        const path = template.replace(/:\w+/g, () => encodePathPart(params[i++]!));
        const qs = query ? `?${query[0]}=${encodePathPart(query[1])}` : '';
        const payload = body === undefined || method === 'GET' ? undefined : Buffer.from(JSON.stringify(body) ?? 'null');
        const res = await rawRequest({
          url: `${c.apiUrl}${path}${qs}`,
          method,
          ca: c.ca.material.certPem,
          headers: {
            authorization: `Bearer ${c.adminKey}`,
            ...(payload ? { 'content-type': 'application/json' } : {}),
            ...(idempotencyKey === undefined ? {} : { 'idempotency-key': idempotencyKey }),
          },
          ...(payload ? { body: payload } : {}),
        });
        expect(res.status, `${method} ${path}${qs}: ${res.body.toString().slice(0, 300)}`).toBeLessThan(500);
        if (res.status >= 400) expect(ApiErrorBody.safeParse(res.json()).success).toBe(true);
      }),
      { numRuns: 300 },
    );
    // A TLS handshake per request: a few seconds alone, several times that beside the rest of the suite.
  }, 120_000);
});

/** Valid frames an enrolled worker may send after hello, with the fields a hostile value goes into. */
const FRAMES: [Record<string, unknown>, string[]][] = [
  [{ type: 'heartbeat', status: 'idle', load: { cpu: 0.5, freeMemoryBytes: 1 } }, ['status', 'pausedReason', 'load.cpu', 'runningJobs', 'slots', 'cachedModels', 'loadedModels']],
  [{ type: 'job.progress', jobId: 'j-1', leaseId: 'l-1', progress: 0.5 }, ['jobId', 'leaseId', 'progress', 'message']],
  [{ type: 'job.partial', jobId: 'j-1', leaseId: 'l-1', offset: 0, text: 'Hel', tokens: [7] }, ['jobId', 'leaseId', 'offset', 'text', 'tokens']],
  [{ type: 'job.result', jobId: 'j-1', leaseId: 'l-1', outcome: { ok: true, output: { outputs: {} } } }, ['jobId', 'runMs', 'outcome.output', 'outcome']],
  [{ type: 'job.release', jobId: 'j-1', leaseId: 'l-1', reason: 'r' }, ['jobId', 'reason']],
];

describe('control frames from an enrolled worker', () => {
  /** The raw worker's next heartbeat as the coordinator takes it (the frames before it were taken too), and how to stop waiting. */
  function heartbeatTaken(): { taken: Promise<'taken'>; stop(): void } {
    let on = (_id: string) => undefined as void;
    const taken = new Promise<'taken'>((resolve) => {
      on = (id) => id === identity.workerId && resolve('taken');
      c.parts.sessions.on('heartbeat', on);
    });
    return { taken, stop: () => c.parts.sessions.off('heartbeat', on) };
  }

  it.each(['quic', 'tcp'] as const)('are taken, or answered with an error frame; the coordinator and the other worker carry on (over %s)', async (transport) => {
    const frame = fc.oneof(...FRAMES.map(([base, paths]) => withHostileField(base, paths)), hostileJson);
    const hello = await helloFrame(identity.workerId);
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        const conn = await connectRaw(c.port, { caPem: identity.caPem, certPem: identity.certPem, keyPem: identity.keyPem }, { transport });
        try {
          const frames = conn.channel.frames()[Symbol.asyncIterator]();
          await conn.channel.send(hello);
          expect((await frames.next()).value).toMatchObject({ type: 'welcome' });
          // NaN and the like go out as null, as JSON.stringify writes them.
          await conn.channel.send(f as never);
          // A well-formed heartbeat after it: either it is taken (so was the frame), or an error frame came first.
          const heartbeat = heartbeatTaken();
          await conn.channel.send({ type: 'heartbeat', status: 'idle', load: { cpu: 0, freeMemoryBytes: 0 } }).catch(() => undefined);
          const answer = await Promise.race([heartbeat.taken, frames.next().then((n) => n.value as { type?: string } | undefined)]).finally(heartbeat.stop);
          if (answer === 'taken') return;
          expect(answer).toMatchObject({ type: 'error', fatal: true, code: expect.stringMatching(/^GG_ERR_(FRAME_INVALID|MESSAGE_UNKNOWN|MESSAGE_UNEXPECTED)$/) });
        } finally {
          await conn.close();
        }
      }),
      { numRuns: 40 },
    );
    expect(await c.api('GET', '/healthz')).toMatchObject({ ok: true });
    // A QUIC handshake per run: about 0.2 s each alone, several times that beside the rest of the suite.
  }, 120_000);
});

describe('bytes on the control protocol over TCP (ALPN gogrid/1), from anyone', () => {
  it('half a frame, a huge length, noise, with or without a certificate, then the peer gone: the coordinator and its HTTPS carry on', async () => {
    const noise = fc.oneof(
      fc.uint8Array({ maxLength: 3000 }),
      // A length prefix past the frame limit, or one that promises more than ever comes.
      fc.tuple(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.uint8Array({ maxLength: 64 })).map(([n, rest]) => {
        const head = Buffer.alloc(4);
        head.writeUInt32BE(n);
        return Buffer.concat([head, rest]);
      }),
    );
    await fc.assert(
      fc.asyncProperty(noise, fc.boolean(), fc.boolean(), async (bytes, withCert, hangUp) => {
        const socket = tls.connect({
          host: '127.0.0.1',
          port: c.port,
          servername: COORDINATOR_SERVER_NAME,
          ca: identity.caPem,
          ALPNProtocols: ['gogrid/1'],
          ...(withCert ? { cert: identity.certPem, key: identity.keyPem } : {}),
        });
        await once(socket, 'secureConnect');
        socket.on('error', () => undefined);
        socket.write(bytes);
        // The peer dies halfway (a reset), or ends its half and waits for the coordinator to close.
        if (hangUp) socket.destroy();
        else {
          socket.end();
          socket.resume();
          await once(socket, 'close');
        }
      }),
      { numRuns: 30 },
    );
    expect(await c.api('GET', '/healthz')).toMatchObject({ ok: true });
  }, 120_000);
});

/**
 * A QUIC v1 long header of `type` (0 Initial, 1 0-RTT, 2 Handshake, 3 Retry)
 * with the given connection ids, an Initial's token, and a payload behind a
 * length field: what a peer that knows the format, or a worker still talking
 * to a restarted coordinator, sends to connections this process never had.
 */
function longHeader(p: { type: number; dcid: Uint8Array; scid: Uint8Array; token: Uint8Array; payload: Uint8Array }): Buffer {
  const varint = (n: number) => (n < 64 ? Buffer.from([n]) : Buffer.from([0x40 | (n >> 8), n & 0xff]));
  return Buffer.concat([
    Buffer.from([0xc0 | (p.type << 4), 0, 0, 0, 1, p.dcid.length]),
    p.dcid,
    Buffer.from([p.scid.length]),
    p.scid,
    ...(p.type === 0 ? [varint(p.token.length), p.token] : []),
    varint(p.payload.length),
    p.payload,
  ]);
}

describe('QUIC datagrams from anyone', () => {
  it('are answered or dropped; the coordinator and its worker carry on', async () => {
    const bytes = (max: number) => fc.uint8Array({ maxLength: max });
    const datagram = fc.oneof(
      fc.record({ type: fc.integer({ min: 0, max: 3 }), dcid: bytes(20), scid: bytes(20), token: bytes(64), payload: bytes(1200) }).map(longHeader),
      // Short headers (a 1-RTT packet of a connection this coordinator does not know) and plain noise.
      bytes(1300).map((b) => Buffer.concat([Buffer.from([0x40 | (b[0] ?? 0) % 64]), b])),
      bytes(1500).map((b) => Buffer.from(b)),
    );
    const udp = createSocket('udp4');
    udp.bind(0, '127.0.0.1');
    await once(udp, 'listening');
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(datagram, { minLength: 1, maxLength: 40 }), async (datagrams) => {
          for (const d of datagrams) udp.send(d, c.port, '127.0.0.1');
          // A heartbeat of the healthy worker taken after them: its session lives (a rejection is caught in afterAll).
          await new Promise((resolve) => c.parts.sessions.once('heartbeat', resolve));
        }),
        { numRuns: 12 },
      );
    } finally {
      udp.close();
    }
    expect(await c.api('GET', '/healthz')).toMatchObject({ ok: true });
  }, 60_000);
});
