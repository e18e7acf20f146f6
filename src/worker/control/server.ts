/**
 * The headless worker's local control endpoint: the status window in a plain
 * browser and `gogrid worker pause|resume|snooze|finish|status` drive the
 * worker host through it. Loopback only, a bearer token from a 0600 file,
 * Host and Origin checked (see guard.ts); the API is protocol/control.ts.
 *
 *   const server = await startControlServer({ target: host, dataDir, staticDir: 'dist/renderer', logger });
 *   logger.info(`status window: ${statusUrl(server.url, server.token)}`);
 *   await server.close();   // also removes control.json
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ensurePrivateDir } from '../../common/files.js';
import { CONTROL_ROUTES, ControlAction, EnrollForm, SettingsUpdate, type WorkerView } from '../../protocol/index.js';
import { removeControlFile, writeControlFile } from './control-file.js';
import { newControlToken, requestGuard, type RequestGuard } from './guard.js';
import { answerErrors, frameworkErrors, parseBody } from '../../common/http-errors.js';
import type { ControlTarget } from './target.js';

export interface ControlServerOptions {
  target: ControlTarget;
  /** The worker's data dir: control.json is written here. */
  dataDir: string;
  /** The renderer's built files, served at `/`; without it only the API answers. */
  staticDir?: string;
  /** TCP port on 127.0.0.1. @default 0 (any free port) */
  port?: number;
  logger: Logger;
}

export interface ControlServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** The bearer token, also in control.json. */
  token: string;
  /** Stops listening and removes control.json; safe to call twice. */
  close(): Promise<void>;
}

/** Every response: the page may load only its own files and talk only to this endpoint. */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

/**
 * The status window's address. The token rides in the fragment, which
 * browsers never send to a server (nor in a Referer), so it stays out of logs.
 */
export function statusUrl(url: string, token: string): string {
  return `${url}/#token=${encodeURIComponent(token)}`;
}

export async function startControlServer(opts: ControlServerOptions): Promise<ControlServer> {
  await ensurePrivateDir(opts.dataDir);
  const token = newControlToken();
  let port = 0;
  const guard = requestGuard(() => port, token);
  const app = Fastify({
    loggerInstance: opts.logger,
    logController: new LogController({ disableRequestLogging: true }),
    frameworkErrors,
    bodyLimit: 64 * 1024,
  });

  answerErrors(app, 'worker');
  // Static files included: a rebinding page must not even read the page.
  app.addHook('onRequest', async (req) => guard.checkHost(req.headers));
  app.addHook('onSend', async (_req, reply) => {
    void reply.headers(SECURITY_HEADERS);
  });

  await app.register(apiRoutes, { target: opts.target, guard });
  if (opts.staticDir !== undefined) await app.register(fastifyStatic, { root: opts.staticDir, prefix: '/' });

  await app.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  port = (app.server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;
  try {
    await writeControlFile(opts.dataDir, { url, token, pid: process.pid });
  } catch (e) {
    await app.close();
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    token,
    close: () =>
      (closing ??= (async () => {
        await app.close();
        await removeControlFile(opts.dataDir, token);
      })()),
  };
}

/** The API, behind the token; static files are not (the page reads its token from the URL fragment). */
async function apiRoutes(api: FastifyInstance, { target, guard }: { target: ControlTarget; guard: RequestGuard }): Promise<void> {
  api.addHook('onRequest', async (req) => guard.checkToken(req.headers));
  api.addHook('onSend', async (_req, reply) => {
    void reply.header('cache-control', 'no-store');
  });

  api.get(CONTROL_ROUTES.status, async (): Promise<WorkerView> => target.view());
  api.post(CONTROL_ROUTES.control, async (req): Promise<WorkerView> => target.act(parseBody(ControlAction, req.body)));
  api.post(CONTROL_ROUTES.enroll, async (req): Promise<WorkerView> => target.enroll(parseBody(EnrollForm, req.body)));
  api.put(CONTROL_ROUTES.settings, async (req): Promise<WorkerView> => target.updateSettings(parseBody(SettingsUpdate, req.body)));
}
