/**
 * Talks to the running worker whose data dir this is, through its loopback
 * control endpoint; every reply is parsed with the shared schemas.
 *
 *   const worker = await controlClient(dataDir);   // GG_ERR_WORKER_NOT_RUNNING when none is
 *   const view = await worker.act({ action: 'snooze', minutes: 60 });
 */
import {
  ApiErrorBody,
  CONTROL_ROUTES,
  GridError,
  WorkerView,
  type ControlAction,
  type EnrollForm,
  type SettingsUpdate,
} from '../../protocol/index.js';
import { peerError } from '../peer-error.js';
import { readControlFile } from './control-file.js';

export interface ControlClient {
  /** `http://127.0.0.1:PORT` */
  url: string;
  token: string;
  status(): Promise<WorkerView>;
  act(action: ControlAction): Promise<WorkerView>;
  enroll(form: EnrollForm): Promise<WorkerView>;
  updateSettings(update: SettingsUpdate): Promise<WorkerView>;
}

/** @param timeoutMs per request @default 10_000 */
export async function controlClient(dataDir: string, opts: { timeoutMs?: number } = {}): Promise<ControlClient> {
  const info = await readControlFile(dataDir);
  // A worker killed hard leaves its file behind; its pid tells.
  if (info === null || !isAlive(info.pid)) throw notRunning(dataDir);
  const timeoutMs = opts.timeoutMs ?? 10_000;

  const call = async (method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<WorkerView> => {
    let res: Response;
    try {
      res = await fetch(`${info.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${info.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      if (e instanceof Error && e.name === 'TimeoutError') {
        throw new GridError('GG_ERR_WORKER_NOT_RUNNING', `the worker with data dir ${dataDir} did not answer within ${timeoutMs / 1000} s`, { cause: e });
      }
      // The pid is alive but is not (or no longer) our worker: a reused pid, or a worker stopping right now.
      throw notRunning(dataDir, e);
    }
    const json: unknown = await res.json().catch(() => null);
    if (res.ok) return WorkerView.parse(json);
    const error = ApiErrorBody.safeParse(json);
    if (!error.success) throw new GridError('GG_ERR_INTERNAL', `the worker answered HTTP ${res.status} without an error body`);
    throw peerError(error.data.error.code, error.data.error.message);
  };

  return {
    url: info.url,
    token: info.token,
    status: () => call('GET', CONTROL_ROUTES.status),
    act: (action) => call('POST', CONTROL_ROUTES.control, action),
    enroll: (form) => call('POST', CONTROL_ROUTES.enroll, form),
    updateSettings: (update) => call('PUT', CONTROL_ROUTES.settings, update),
  };
}

function notRunning(dataDir: string, cause?: unknown): GridError {
  return new GridError('GG_ERR_WORKER_NOT_RUNNING', `no worker is running with data dir ${dataDir}`, { cause });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
