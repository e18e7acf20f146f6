/**
 * Model download benchmark: how fast a worker's ModelCache fetches a model
 * from a coordinator over HTTPS (mTLS, sha256 verified while streaming,
 * fsynced before use), against a plain node:https GET of the same file from
 * a minimal node:https server, in the same run. Goal (issue 3): ≥ 80 %.
 *
 *   const r = await benchModelDownload({ sizeMiB: 200 });
 *   console.log(r.cacheMiBs, r.plainMiBs, r.ratio);
 *
 *   node --import tsx bench/jobs/models.ts [--size 200] [--rounds 3]
 *
 * Both servers run in child processes (models-server.ts), as they
 * would on another machine; the downloads run here. Rounds interleave the
 * methods so background load hits them alike; each result is the median, and
 * the ratio is the median of the per-round ratios.
 * The baselines: `plain` writes to a file as a competent client would
 * (a 1 MiB-buffered WriteStream, no fsync); `plainDiscard` only receives.
 */
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { COORDINATOR_SERVER_NAME, CreatedToken, ModelInfo } from '../../src/protocol/index.js';
import { requestJson } from '../../src/transport/https-client.js';
import { createCa, issueServerCert } from '../../src/transport/pki.js';
import { enroll } from '../../src/worker/enroll.js';
import { ModelCache } from '../../src/worker/model-cache.js';
import { httpsModelDownloader } from '../../src/worker/model-download.js';
import { Procs } from '../lib/procs.js';
import { median, round } from '../lib/stats.js';
import { ServerReady, type ServerCommand } from './models-server.js';

export interface ModelDownloadBenchOptions {
  /** @default 200 */
  sizeMiB?: number;
  /** Downloads per method. @default 3 */
  rounds?: number;
}

export interface ModelDownloadBench {
  sizeMiB: number;
  rounds: number;
  /** `POST /v1/models` of the file, streamed to the coordinator's disk (hashed, fsynced). */
  uploadMiBs: number;
  /** ModelCache.acquire over the coordinator's HTTPS route: mTLS, sha256 verified, fsynced, renamed. Median. */
  cacheMiBs: number;
  /** Plain node:https GET written to a file. Median. */
  plainMiBs: number;
  /** Plain node:https GET, bytes discarded: the transport alone. Median. */
  plainDiscardMiBs: number;
  /** cache / plain, per round (the two ran back to back), median; the goal is ≥ 0.8. */
  ratio: number;
  /** CPU time of this (downloading) process per MiB, all threads, medians. */
  cpuMsPerMiB: { cache: number; plain: number; plainDiscard: number };
  samples: { cache: number[]; plain: number[]; plainDiscard: number[] };
}

export async function benchModelDownload(opts: ModelDownloadBenchOptions = {}): Promise<ModelDownloadBench> {
  const sizeMiB = opts.sizeMiB ?? 200;
  const rounds = opts.rounds ?? 3;
  const procs = new Procs();
  try {
    const root = await procs.tempDir('models');
    const file = join(root, 'model.bin');
    const sha256 = await writeRandomFile(file, sizeMiB);
    const size = sizeMiB * 1024 * 1024;

    const coordinator = await startServer(procs, { type: 'coordinator', dataDir: join(root, 'coordinator') });
    if (coordinator.type !== 'coordinator') throw new Error('unexpected reply');
    const upload = await timed(() => uploadModel(coordinator, file, size, sha256));
    const token = await createToken(coordinator);
    const identity = await enroll({ dataDir: join(root, 'worker'), coordinator: { host: '127.0.0.1', port: coordinator.port }, token });

    const ca = await createCa({ commonName: 'bench CA' });
    const plainTls = await issueServerCert(ca, { dnsNames: [COORDINATOR_SERVER_NAME] });
    const plain = await startServer(procs, { type: 'plain', file, tls: plainTls });

    const download = httpsModelDownloader({ baseUrl: coordinator.apiUrl, tls: () => identity });
    const ref = { sha256, size, name: 'bench.bin' };
    const methods = {
      cache: async (i: number) => {
        const dir = join(root, `cache-${i}`);
        const cache = await ModelCache.open({ dir, maxBytes: 2 * size, download });
        const model = await cache.acquire(ref);
        model.release();
      },
      plain: async (i: number) => pipeline(await plainGet(plain.port, ca.certPem), createWriteStream(join(root, `plain-${i}`), { highWaterMark: 1024 * 1024 })),
      plainDiscard: async () => {
        const res = await plainGet(plain.port, ca.certPem);
        res.resume();
        await once(res, 'end');
      },
    };
    const samples = { cache: [] as number[], plain: [] as number[], plainDiscard: [] as number[] };
    const cpu = { cache: [] as number[], plain: [] as number[], plainDiscard: [] as number[] };
    // Round 0 warms up (JIT, the servers' page cache) and is not counted.
    for (let i = 0; i <= rounds; i++) {
      for (const name of ['cache', 'plain', 'plainDiscard'] as const) {
        const before = process.cpuUsage();
        const { secs } = await timed(() => methods[name](i));
        const used = process.cpuUsage(before);
        if (i > 0) {
          samples[name].push(round(sizeMiB / secs));
          cpu[name].push(round((used.user + used.system) / 1000 / sizeMiB, 2));
        }
        // Each download is deleted at once so that rounds do not fill the disk.
        await rm(join(root, name === 'cache' ? `cache-${i}` : `plain-${i}`), { recursive: true, force: true });
      }
    }
    const cacheMiBs = round(median(samples.cache));
    const plainMiBs = round(median(samples.plain));
    return {
      sizeMiB,
      rounds,
      uploadMiBs: round(sizeMiB / upload.secs),
      cacheMiBs,
      plainMiBs,
      plainDiscardMiBs: round(median(samples.plainDiscard)),
      ratio: round(median(samples.cache.map((x, i) => x / samples.plain[i]!)), 2),
      cpuMsPerMiB: { cache: round(median(cpu.cache), 2), plain: round(median(cpu.plain), 2), plainDiscard: round(median(cpu.plainDiscard), 2) },
      samples,
    };
  } finally {
    await procs.close();
  }
}

async function writeRandomFile(file: string, sizeMiB: number): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(function* () {
    for (let i = 0; i < sizeMiB; i++) {
      const chunk = randomBytes(1024 * 1024);
      // An ONNX file's first field (ir_version): the coordinator stores only what reads as ONNX or GGUF.
      if (i === 0) chunk.set([0x08, 0x07]);
      hash.update(chunk);
      yield chunk;
    }
  }, createWriteStream(file));
  return hash.digest('hex');
}

function startServer(procs: Procs, cmd: ServerCommand): Promise<ServerReady> {
  return procs.fork<ServerCommand>(join(import.meta.dirname, 'models-server.ts'), `${cmd.type} server`).call(cmd, ServerReady);
}

function request(opts: https.RequestOptions, body?: NodeJS.ReadableStream): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = https.request({ servername: COORDINATOR_SERVER_NAME, agent: false, ...opts }, resolve);
    req.on('error', reject);
    if (body) body.pipe(req);
    else req.end();
  });
}

async function readJson(res: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const chunk of res as AsyncIterable<Buffer>) text += chunk.toString('utf8');
  if ((res.statusCode ?? 0) >= 300) throw new Error(`HTTP ${res.statusCode}: ${text}`);
  return JSON.parse(text);
}

async function uploadModel(c: Extract<ServerReady, { type: 'coordinator' }>, file: string, size: number, sha256: string): Promise<void> {
  const headers = { authorization: `Bearer ${c.adminKey}`, 'content-type': 'application/octet-stream', 'content-length': String(size), 'x-gogrid-sha256': sha256 };
  const res = await request({ method: 'POST', host: '127.0.0.1', port: c.port, path: '/v1/models?name=bench.bin', ca: c.caPem, headers }, createReadStream(file));
  ModelInfo.parse(await readJson(res));
}

async function createToken(c: Extract<ServerReady, { type: 'coordinator' }>): Promise<string> {
  const created = await requestJson({ url: `${c.apiUrl}/v1/tokens`, method: 'POST', body: { ttlSecs: 600, maxUses: 1 }, ca: c.caPem, headers: { authorization: `Bearer ${c.adminKey}` } });
  return CreatedToken.parse(created).token;
}

async function plainGet(port: number, caPem: string): Promise<IncomingMessage> {
  const res = await request({ host: '127.0.0.1', port, path: '/', ca: caPem });
  if (res.statusCode !== 200) throw new Error(`plain server answered ${res.statusCode}`);
  return res;
}

async function timed<T>(f: () => Promise<T>): Promise<{ value: T; secs: number }> {
  const t = performance.now();
  const value = await f();
  return { value, secs: (performance.now() - t) / 1000 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { size: { type: 'string', default: '200' }, rounds: { type: 'string', default: '3' } } });
  console.log(JSON.stringify(await benchModelDownload({ sizeMiB: Number(values.size), rounds: Number(values.rounds) }), null, 2));
}
