/**
 * The status window: one BrowserWindow, made when first asked for, hidden
 * (not destroyed) when closed, since the app lives in the tray. Locked down:
 * context isolation, the sandbox, no Node; the preload is the page's only
 * way out; it cannot navigate, open windows, or ask for permissions. Its CSP
 * is the meta tag in index.html: pages loaded from file:// have no response
 * headers for session.webRequest.onHeadersReceived to add one to.
 *
 *   const window = statusWindow({ page: RENDERER_PAGE, preload: PRELOAD, icon: APP_ICON });
 *   window.show();
 *   window.destroy();   // when quitting
 */
import { app, BrowserWindow, nativeTheme, session, type Session } from 'electron';

/** In memory only (no `persist:`): the window keeps nothing on disk. */
const PARTITION = 'gogrid-status';

export interface StatusWindow {
  /** Creates, shows and focuses it (a second app launch lands here too). */
  show(): void;
  /** Closes it for good; after this a close no longer just hides. */
  destroy(): void;
}

export function statusWindow(opts: { page: string; preload: string; icon: string }): StatusWindow {
  let win: BrowserWindow | null = null;
  let destroying = false;
  lockDown(session.fromPartition(PARTITION));
  // Quitting closes every window; a close turned into a hide would cancel the quit.
  app.on('before-quit', () => {
    destroying = true;
  });

  const create = (): BrowserWindow => {
    const w = new BrowserWindow({
      width: 460,
      height: 640,
      minWidth: 380,
      minHeight: 420,
      show: false,
      title: 'GoGrid Worker',
      icon: opts.icon,
      autoHideMenuBar: true,
      // The page's own background, so opening it does not flash white in dark mode.
      backgroundColor: nativeTheme.shouldUseDarkColors ? '#1e1e20' : '#f6f6f7',
      webPreferences: {
        preload: opts.preload,
        contextIsolation: true,
        sandbox: true,
        nodeIntegration: false,
        webSecurity: true,
        spellcheck: false,
        partition: PARTITION,
      },
    });
    w.removeMenu();
    w.webContents.on('will-navigate', (event) => event.preventDefault());
    w.webContents.setWindowOpenHandler(() => ({ action: 'deny' }));
    w.on('close', (event) => {
      if (destroying) return;
      event.preventDefault();
      w.hide();
    });
    w.on('closed', () => {
      win = null;
    });
    void w.loadFile(opts.page);
    return w;
  };

  return {
    show() {
      win ??= create();
      const w = win;
      if (w.webContents.isLoading()) w.once('ready-to-show', () => w.show());
      else w.show();
      if (w.isMinimized()) w.restore();
      w.focus();
    },
    destroy() {
      destroying = true;
      win?.destroy();
      win = null;
    },
  };
}

/** The status window needs no network, no permission and no download. */
function lockDown(s: Session): void {
  s.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  s.setPermissionCheckHandler(() => false);
  s.webRequest.onBeforeRequest({ urls: ['http://*/*', 'https://*/*', 'ws://*/*', 'wss://*/*'] }, (_details, callback) => callback({ cancel: true }));
  s.on('will-download', (event) => event.preventDefault());
}
