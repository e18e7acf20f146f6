/**
 * The one thing that differs between the two hosts of the status window:
 * inside Electron the preload's `window.gogrid` carries each call over IPC;
 * in a plain browser the same calls go to the headless worker's loopback
 * control endpoint with the bearer token from the URL fragment. Both answer
 * with a WorkerView or an ApiErrorBody, parsed here, so the rest of the
 * renderer never learns which host it is in.
 *
 *   const bridge = pickBridge(window);
 *   const view = await bridge.status();
 */
import { ApiErrorBody } from '../protocol/api.js';
import { CONTROL_ROUTES, WorkerView, type ControlAction, type EnrollForm, type SettingsUpdate } from '../protocol/control.js';

/** What the preload exposes as `window.gogrid`; answers are unknown until parsed. */
export interface PreloadApi {
  status(): Promise<unknown>;
  act(action: ControlAction): Promise<unknown>;
  enroll(form: EnrollForm): Promise<unknown>;
  updateSettings(update: SettingsUpdate): Promise<unknown>;
}

export interface Bridge {
  status(): Promise<WorkerView>;
  act(action: ControlAction): Promise<WorkerView>;
  enroll(form: EnrollForm): Promise<WorkerView>;
  updateSettings(update: SettingsUpdate): Promise<WorkerView>;
}

/** A refusal from the host, with its GG_ERR code, or a failure to reach it at all (`code` null). */
export class BridgeError extends Error {
  override readonly name = 'BridgeError';
  constructor(
    readonly code: string | null,
    message: string,
  ) {
    super(message);
  }
}

function toView(answer: unknown): WorkerView {
  const refusal = ApiErrorBody.safeParse(answer);
  if (refusal.success) throw new BridgeError(refusal.data.error.code, refusal.data.error.message);
  const view = WorkerView.safeParse(answer);
  if (!view.success) throw new BridgeError(null, 'The worker answered with something this window does not understand; are both the same version?');
  return view.data;
}

export function ipcBridge(api: PreloadApi): Bridge {
  const call = async (answer: Promise<unknown>) => toView(await answer);
  return {
    status: () => call(api.status()),
    act: (action) => call(api.act(action)),
    enroll: (form) => call(api.enroll(form)),
    updateSettings: (update) => call(api.updateSettings(update)),
  };
}

export function httpBridge(token: string, fetchFn: typeof fetch = fetch): Bridge {
  const call = async (method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<WorkerView> => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetchFn(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch {
      throw new BridgeError(null, 'The worker does not answer; is it still running?');
    }
    const answer: unknown = await res.json().catch(() => null);
    if (!res.ok && !ApiErrorBody.safeParse(answer).success) throw new BridgeError(null, `The worker answered HTTP ${res.status}.`);
    return toView(answer);
  };
  return {
    status: () => call('GET', CONTROL_ROUTES.status),
    act: (action) => call('POST', CONTROL_ROUTES.control, action),
    enroll: (form) => call('POST', CONTROL_ROUTES.enroll, form),
    updateSettings: (update) => call('PUT', CONTROL_ROUTES.settings, update),
  };
}

const TOKEN_KEY = 'gogrid.token';

/**
 * The token arrives once in the fragment (`#token=…`, never sent to a server
 * or written to its logs); it moves to sessionStorage, so a reload of this
 * tab still works, and leaves the address bar.
 */
export function takeToken(loc: Pick<Location, 'hash' | 'pathname' | 'search'>, hist: Pick<History, 'replaceState'>, store: Storage): string | null {
  const fromHash = new URLSearchParams(loc.hash.replace(/^#/, '')).get('token');
  if (fromHash) {
    store.setItem(TOKEN_KEY, fromHash);
    hist.replaceState(null, '', loc.pathname + loc.search);
    return fromHash;
  }
  return store.getItem(TOKEN_KEY);
}

/** The preload's bridge when there is one, else the HTTP bridge; null when neither can work (no token). */
export function pickBridge(win: Window & { gogrid?: PreloadApi }): Bridge | null {
  if (win.gogrid) return ipcBridge(win.gogrid);
  const token = takeToken(win.location, win.history, win.sessionStorage);
  return token ? httpBridge(token) : null;
}
