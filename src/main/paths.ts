/**
 * Where the app's built files are, from src/main (tsx, type-checking) and
 * dist/main (Electron) alike: both sit two levels below the app root, inside
 * the asar archive once packaged (Electron reads files there transparently).
 *
 *   win.loadFile(RENDERER_PAGE);
 */
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const APP_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RENDERER_PAGE = join(APP_ROOT, 'dist', 'renderer', 'index.html');
/** The URL the page has once loaded: the only sender IPC accepts. */
export const RENDERER_URL = pathToFileURL(RENDERER_PAGE).href;
export const PRELOAD = join(APP_ROOT, 'dist', 'preload', 'preload.cjs');
export const TRAY_ICONS = join(APP_ROOT, 'assets', 'tray');
export const APP_ICON = join(APP_ROOT, 'assets', 'app', 'icon-512.png');
