/**
 * Finds the coordinator an admin command talks to, then calls its API with
 * every reply parsed by the shared schemas.
 *
 *   On the coordinator's machine:  --data DIR   (api.json, admin.key and ca.crt are read there)
 *   From anywhere else:            --api URL --ca FILE, with GOGRID_API_KEY in the environment
 *
 *   const api = await AdminClient.resolve({ data, api, ca });
 *   const workers = await api.call('GET', '/v1/workers', WorkerList);
 */
import { readFile } from 'node:fs/promises';
import { setTimeout } from 'node:timers/promises';
import type { z } from 'zod';
import { GridError, MAX_PAYLOAD_BYTES } from '../protocol/index.js';
import { requestJson } from '../transport/https-client.js';
import { adminKeyPath, caCertPath, readApiInfo } from '../coordinator/local-files.js';
import { coordinatorDefaultDataDir } from '../worker/paths.js';

export interface AdminTargetOptions {
  data?: string;
  api?: string;
  ca?: string;
}

export class AdminClient {
  private constructor(
    readonly apiUrl: string,
    private readonly apiKey: string,
    private readonly caPem: string,
  ) {}

  static async resolve(opts: AdminTargetOptions): Promise<AdminClient> {
    if (opts.api) {
      const key = process.env.GOGRID_API_KEY;
      const caFile = opts.ca ?? process.env.GOGRID_CA_FILE;
      if (!key) throw new GridError('GG_ERR_UNAUTHENTICATED', '--api needs the API key in the GOGRID_API_KEY environment variable');
      if (!caFile) throw new GridError('GG_ERR_CONFIG_INVALID', "--api needs the coordinator's CA certificate: --ca FILE (its ca.crt) or GOGRID_CA_FILE");
      return new AdminClient(opts.api.replace(/\/+$/, ''), key, await readText(caFile, 'CA file'));
    }
    const dataDir = opts.data ?? coordinatorDefaultDataDir();
    const info = await readApiInfo(dataDir);
    if (!info) {
      throw new GridError(
        'GG_ERR_CONFIG_INVALID',
        `no coordinator has run with data dir ${dataDir}; pass --data DIR (the coordinator's) or --api URL`,
      );
    }
    const key = process.env.GOGRID_API_KEY ?? (await readText(adminKeyPath(dataDir), 'admin key')).trim();
    return new AdminClient(info.apiUrl, key, await readText(caCertPath(dataDir), 'CA certificate'));
  }

  async call<T extends z.ZodType>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    schema: T,
    body?: unknown,
    headers: Record<string, string> = {},
    bodyLength?: number,
  ): Promise<z.infer<T>> {
    const reply = await requestJson({
      url: `${this.apiUrl}${path}`,
      method,
      body,
      bodyLength,
      ca: this.caPem,
      // --wait long-polls for up to 25 s.
      timeoutMs: 60_000,
      // A job's output may be MAX_PAYLOAD_BYTES of JSON; the rest of its record is small.
      maxBytes: MAX_PAYLOAD_BYTES + 4 * 1024 * 1024,
      headers: { authorization: `Bearer ${this.apiKey}`, ...headers },
    });
    return schema.parse(reply);
  }

  /**
   * A POST that the server makes idempotent by `Idempotency-Key`: tried again
   * (after 1 s, then 2 s) when the answer was lost or the coordinator was
   * briefly unavailable, since with the key a retry cannot queue twice.
   */
  async postOnce<T extends z.ZodType>(path: string, schema: T, body: unknown, key: string, note: (line: string) => void): Promise<z.infer<T>> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.call('POST', path, schema, body, { 'idempotency-key': key });
      } catch (e) {
        if (!(e instanceof GridError) || !e.retryable || attempt === POST_TRIES) throw e;
        note(`${e.code}: ${e.message}; trying again (${attempt + 1} of ${POST_TRIES}, Idempotency-Key ${key})`);
        await setTimeout(1000 * attempt);
      }
    }
  }
}

const POST_TRIES = 3;

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new GridError('GG_ERR_CONFIG_INVALID', `cannot read the ${what} at ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}
