/**
 * The status window's whole view of the app: four calls, each one
 * `ipcRenderer.invoke` on a fixed channel, answered by main with a
 * WorkerView or an ApiErrorBody (never a thrown error, so the renderer sees
 * the same shapes as over HTTP). Main parses every payload; nothing else of
 * Electron or Node reaches the page.
 *
 *   const view = await window.gogrid.act({ action: 'pause' });
 *
 * Built by scripts/build-renderer.mjs into dist/preload/preload.cjs:
 * sandboxed preloads cannot be ES modules.
 */
import { contextBridge, ipcRenderer } from 'electron';
import type { CONTROL_ROUTES, ControlAction, EnrollForm, SettingsUpdate } from '../protocol/control.js';

type Routes = typeof CONTROL_ROUTES;

/**
 * One IPC channel per control route, named `gogrid:<route>` (main/ipc.ts
 * derives the same names at run time). Spelled out rather than imported, so
 * the bundle does not carry zod along with the routes; the type keeps the
 * spelling honest.
 */
const CHANNELS = {
  status: 'gogrid:/v1/status',
  control: 'gogrid:/v1/control',
  enroll: 'gogrid:/v1/enroll',
  settings: 'gogrid:/v1/settings',
} as const satisfies { [K in keyof Routes]: `gogrid:${Routes[K]}` };

contextBridge.exposeInMainWorld('gogrid', {
  status: (): Promise<unknown> => ipcRenderer.invoke(CHANNELS.status),
  act: (action: ControlAction): Promise<unknown> => ipcRenderer.invoke(CHANNELS.control, action),
  enroll: (form: EnrollForm): Promise<unknown> => ipcRenderer.invoke(CHANNELS.enroll, form),
  updateSettings: (update: SettingsUpdate): Promise<unknown> => ipcRenderer.invoke(CHANNELS.settings, update),
});
