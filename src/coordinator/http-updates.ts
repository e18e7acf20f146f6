/**
 * The desktop app's update feed, as a fastify plugin: electron-updater's
 * "generic" provider reads `<feed>/latest.yml` (Windows), `latest-mac.yml` or
 * `latest-linux.yml`, then downloads the installer the file names, from the
 * same folder. An operator copies a release's files into
 * `<coordinator data dir>/updates/<channel>/`; nothing else is needed.
 *
 *   GET|HEAD /updates/:channel/:file   (worker client certificate, or API key) → the file, with ranges
 *
 *   await app.register(updateRoutes, { dir: updatesDir(dataDir), requireApiKey, isWorkerAllowed: activeWorkerCheck(db) });
 *
 * Why a worker certificate is required, as for model downloads: the feed
 * carries installers of hundreds of MB (only enrolled machines should make a
 * coordinator send those), and the app must present the coordinator's
 * private CA to electron-updater anyway (Chromium's network stack does not
 * trust it), so its updater already talks Node https with the worker's
 * key pair; requiring the certificate costs the client nothing.
 */
import { createReadStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { GridError } from '../protocol/index.js';
import { isErrno } from '../common/files.js';
import { workerFromCertificate } from './http-auth.js';
import { errorPayload } from '../common/http-errors.js';
import { parseRange } from './http-range.js';

export interface UpdateRoutesOptions {
  /** `updatesDir(dataDir)`: one folder per channel, each holding a release's files. */
  dir: string;
  /** The admin API key check of buildHttpApi (operators checking what is served). */
  requireApiKey: (req: FastifyRequest) => Promise<void>;
  /** Whether the worker named by a valid client certificate is enrolled and not revoked. */
  isWorkerAllowed: (workerId: string) => Promise<boolean>;
}

export function updatesDir(dataDir: string): string {
  return path.join(dataDir, 'updates');
}

type Route = { Params: { channel: string; file: string } };

// One path segment each, so no request can name a file outside the channel folder.
const CHANNEL = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
// electron-builder's artifact names: letters, digits, spaces, dots, dashes, underscores, plus signs.
const FILE = /^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,254}$/;

export const updateRoutes: FastifyPluginAsync<UpdateRoutesOptions> = async (app, opts) => {
  // Created up front so an operator finds the folder where the docs say it is.
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });

  const authorize = async (req: FastifyRequest): Promise<void> => {
    if (req.headers.authorization !== undefined) return opts.requireApiKey(req);
    await workerFromCertificate(req, opts.isWorkerAllowed);
  };
  // HEAD is its own route: fastify's automatic one would read the whole file to discard it.
  app.get<Route>('/updates/:channel/:file', { exposeHeadRoute: false, onRequest: authorize }, (req, reply) => serve(req, reply, false));
  app.head<Route>('/updates/:channel/:file', { onRequest: authorize }, (req, reply) => serve(req, reply, true));

  async function serve(req: FastifyRequest<Route>, reply: FastifyReply, headOnly: boolean): Promise<FastifyReply> {
    const { channel, file } = req.params;
    if (!CHANNEL.test(channel) || !FILE.test(file)) {
      throw new GridError('GG_ERR_BAD_REQUEST', `${channel}/${file}: expected a channel folder and a file name (letters, digits, . _ - + and spaces)`);
    }
    const target = path.join(opts.dir, channel, file);
    const info = await stat(target).catch((e: unknown) => {
      if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) return null;
      throw e;
    });
    if (!info?.isFile()) {
      throw new GridError('GG_ERR_NOT_FOUND', `no update file ${channel}/${file} on this coordinator; copy a release's files into ${path.join(opts.dir, channel)}`);
    }
    // The channel files change with each release and must never be cached; an
    // installer's name carries its version, but an operator may replace a bad build in place.
    const metadata = file.endsWith('.yml');
    void reply
      .header('cache-control', 'no-cache')
      .header('etag', `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`)
      .header('last-modified', info.mtime.toUTCString())
      .header('accept-ranges', 'bytes');
    const range = parseRange(req.headers.range, info.size);
    if (range.kind === 'unsatisfiable') {
      return reply.code(416).header('content-range', `bytes */${info.size}`).send(errorPayload('GG_ERR_BAD_REQUEST', `range ${req.headers.range} is outside the file's ${info.size} bytes`));
    }
    const { start, end } = range.kind === 'partial' ? range : { start: 0, end: info.size - 1 };
    if (range.kind === 'partial') void reply.code(206).header('content-range', `bytes ${start}-${end}/${info.size}`);
    void reply.header('content-type', metadata ? 'text/yaml; charset=utf-8' : 'application/octet-stream').header('content-length', String(end - start + 1));
    if (headOnly || info.size === 0) return reply.send();
    return reply.send(createReadStream(target, { start, end }));
  }
};
