/**
 * The status window's IPC, main side: one `ipcMain.handle` per control
 * route, each call checked before it reaches the worker host. The sender
 * must be our own page in a main frame (not an iframe, not a page navigated
 * elsewhere), and every payload is parsed with the protocol/control.ts
 * schema. Answers are what the HTTP endpoint sends: a WorkerView, or an
 * ApiErrorBody for a refusal, so the renderer reads both hosts the same way.
 *
 *   const unregister = registerIpc(ipcMain, { target: host, pageUrl, logger });
 *   parseIpcRequest('gogrid:/v1/control', { url: pageUrl, isMainFrame: true }, [{ action: 'pause' }], pageUrl);
 */
import type { IpcMain, IpcMainInvokeEvent } from 'electron';
import type { Logger } from 'pino';
import type { ApiErrorBody } from '../protocol/api.js';
import { CONTROL_ROUTES, ControlAction, EnrollForm, SettingsUpdate, type WorkerView } from '../protocol/control.js';
import { GridError } from '../protocol/errors.js';
import { parseBody, toErrorBody } from '../common/http-errors.js';
import type { ControlTarget } from '../worker/control/target.js';

type Route = keyof typeof CONTROL_ROUTES;
const ROUTES = Object.keys(CONTROL_ROUTES) as Route[];

/** `gogrid:<route path>`; preload/preload.ts spells the same names out (its type checks them). */
export const IPC_CHANNELS = Object.fromEntries(ROUTES.map((r) => [r, `gogrid:${CONTROL_ROUTES[r]}`])) as { [K in Route]: `gogrid:${(typeof CONTROL_ROUTES)[K]}` };

export type IpcRequest =
  | { route: 'status' }
  | { route: 'control'; action: ControlAction }
  | { route: 'enroll'; form: EnrollForm }
  | { route: 'settings'; update: SettingsUpdate };

/** The frame that sent a call; null when it is already gone. */
export interface IpcSender {
  url: string;
  isMainFrame: boolean;
}

/** The page as loaded, without fragment or query, which it may change itself. */
function pageOf(url: string): string | null {
  try {
    const u = new URL(url);
    u.hash = '';
    u.search = '';
    return u.href;
  } catch {
    return null;
  }
}

/**
 * Checks one call: GG_ERR_UNAUTHENTICATED for a sender other than our page's
 * main frame, GG_ERR_BAD_REQUEST for an unknown channel or a payload that
 * does not match its schema (naming the first bad field).
 */
export function parseIpcRequest(channel: string, sender: IpcSender | null, args: readonly unknown[], pageUrl: string): IpcRequest {
  if (!sender || !sender.isMainFrame || pageOf(sender.url) !== pageOf(pageUrl)) {
    throw new GridError('GG_ERR_UNAUTHENTICATED', `IPC on ${channel} refused: it came from ${sender ? `${sender.isMainFrame ? '' : 'a subframe of '}${sender.url}` : 'a closed frame'}, not the status window`);
  }
  const route = ROUTES.find((r) => IPC_CHANNELS[r] === channel);
  if (!route) throw new GridError('GG_ERR_BAD_REQUEST', `no IPC channel ${JSON.stringify(channel)}`);
  const expected = route === 'status' ? 0 : 1;
  if (args.length !== expected) throw new GridError('GG_ERR_BAD_REQUEST', `${channel} takes ${expected} argument${expected === 1 ? '' : 's'}, got ${args.length}`);
  switch (route) {
    case 'status':
      return { route };
    case 'control':
      return { route, action: parseBody(ControlAction, args[0]) };
    case 'enroll':
      return { route, form: parseBody(EnrollForm, args[0]) };
    case 'settings':
      return { route, update: parseBody(SettingsUpdate, args[0]) };
  }
}

export function runIpcRequest(target: ControlTarget, req: IpcRequest): Promise<WorkerView> {
  switch (req.route) {
    case 'status':
      return Promise.resolve(target.view());
    case 'control':
      return target.act(req.action);
    case 'enroll':
      return target.enroll(req.form);
    case 'settings':
      return target.updateSettings(req.update);
  }
}

/** One call from start to answer; never rejects (a rejection would reach the page as an unparseable string). */
export async function answerIpc(
  target: ControlTarget | Promise<ControlTarget>,
  call: { channel: string; sender: IpcSender | null; args: readonly unknown[] },
  pageUrl: string,
  logger: Logger,
): Promise<WorkerView | ApiErrorBody> {
  try {
    const request = parseIpcRequest(call.channel, call.sender, call.args, pageUrl);
    return await runIpcRequest(await target, request);
  } catch (e) {
    const { status, payload } = toErrorBody(e, 'worker');
    if (status >= 500) logger.error({ err: e, channel: call.channel }, 'IPC call failed');
    else if (payload.error.code === 'GG_ERR_UNAUTHENTICATED') logger.warn({ channel: call.channel, sender: call.sender?.url }, payload.error.message);
    return payload;
  }
}

function senderOf(event: IpcMainInvokeEvent): IpcSender | null {
  const frame = event.senderFrame;
  return frame ? { url: frame.url, isMainFrame: frame.parent === null } : null;
}

/**
 * Installs the four handlers; returns what removes them. They go in before
 * the status window can open (the tray's Open works from the first moment),
 * so `target` may be the host still being made: a call waits for it.
 * `logger` is read at each call: the app's logger gains its log file later.
 */
export function registerIpc(
  ipc: Pick<IpcMain, 'handle' | 'removeHandler'>,
  opts: { target: ControlTarget | Promise<ControlTarget>; pageUrl: string; logger: () => Logger },
): () => void {
  for (const channel of Object.values(IPC_CHANNELS)) {
    ipc.handle(channel, (event, ...args: unknown[]) => answerIpc(opts.target, { channel, sender: senderOf(event), args }, opts.pageUrl, opts.logger()));
  }
  return () => {
    for (const channel of Object.values(IPC_CHANNELS)) ipc.removeHandler(channel);
  };
}
