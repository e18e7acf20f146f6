/**
 * A stand-in for Electron's main-process API, so that the app's main.js runs
 * under plain Node where the Electron runtime cannot be downloaded (#14).
 *
 * Honest by construction: it implements only what src/main and
 * electron-updater call, each the way the Electron 45 documentation says it
 * behaves (the page is named beside each), and nothing it cannot know: no
 * pixels, no renderer, no OS integration. What the app does with it is
 * reported to the test over the IPC channel (`{ standIn: event }`), and the
 * test drives it the same way (`{ standInCommand: … }`): clicks in the tray
 * menu, calls from the status page, power events, a second launch.
 *
 * CommonJS because electron-updater `require`s it; register.mjs makes the
 * name `electron` resolve here for `import` and `require` alike, as it is a
 * built-in name inside Electron.
 */
'use strict';
const { EventEmitter } = require('node:events');
const fs = require('node:fs');
const path = require('node:path');

const report = (event) => process.send?.({ standIn: event });

/** The app's root: the nearest folder above the entry script with a package.json (what `electron <dir>` loads). */
function findAppRoot(start) {
  for (let dir = path.dirname(start); ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`electron stand-in: no package.json above ${start}`);
  }
}
const appRoot = findAppRoot(fs.realpathSync(process.argv[1]));
const pkg = JSON.parse(fs.readFileSync(path.join(appRoot, 'package.json'), 'utf8'));
const packaged = process.env.ELECTRON_STAND_IN_PACKAGED === '1';

// process.md: `process.type` is 'browser' in the main process; `process.resourcesPath` is the
// resources folder (the one holding app.asar, or here the extracted app/); versions.electron.
process.type = 'browser';
process.resourcesPath = path.dirname(appRoot);
Object.defineProperty(process.versions, 'electron', { value: '45.5.0', enumerable: true });

/** An event object whose default action a listener can cancel (event.preventDefault(), as Electron's events have). */
function cancellable() {
  const event = { defaultPrevented: false, preventDefault: () => (event.defaultPrevented = true) };
  return event;
}

// ---- app (app.md) ----------------------------------------------------------------------------
const app = new EventEmitter();
let ready = false;
let quitting = false;
/** A second instance's message to the first, sent before it exits. */
let pendingNotice = Promise.resolve();
const readyPromise = new Promise((resolve) => {
  // app.md 'ready': "Emitted once, when Electron has finished initializing"; after the main script's first tick.
  setImmediate(() => {
    ready = true;
    app.emit('ready', cancellable(), {});
    report({ type: 'ready' });
    resolve();
  });
});
// The main process lives until app.quit() or app.exit(), whatever else it has scheduled.
const keepAlive = setInterval(() => undefined, 1 << 30);

Object.assign(app, {
  whenReady: () => readyPromise,
  isReady: () => ready,
  isPackaged: packaged,
  getVersion: () => pkg.version,
  // app.md getName: "the name in the application's package.json… productName… will be preferred over name".
  getName: () => pkg.productName ?? pkg.name,
  getAppPath: () => appRoot,
  getPath(name) {
    // app.md getPath: appData is $XDG_CONFIG_HOME or ~/.config on Linux; userData is appData/<app name>.
    const home = require('node:os').homedir();
    const appData = process.env.XDG_CONFIG_HOME || path.join(home, '.config');
    const paths = { home, appData, userData: path.join(appData, app.getName()), temp: require('node:os').tmpdir(), exe: process.execPath };
    if (!(name in paths)) throw new Error(`electron stand-in: app.getPath(${JSON.stringify(name)}) is not emulated`);
    return paths[name];
  },
  /**
   * app.md requestSingleInstanceLock: false when another instance holds the lock, and then that
   * instance gets 'second-instance' with this one's argv. Chromium keeps the lock as a
   * SingletonLock link in userData naming host and pid (stale once that pid is gone) and tells
   * the first instance through a SingletonSocket beside it; both are emulated here.
   */
  requestSingleInstanceLock() {
    const dir = app.getPath('userData');
    fs.mkdirSync(dir, { recursive: true });
    const lock = path.join(dir, 'SingletonLock');
    const socket = path.join(dir, 'SingletonSocket');
    const target = `${require('node:os').hostname()}-${process.pid}`;
    try {
      fs.symlinkSync(target, lock);
    } catch {
      const pid = Number(fs.readlinkSync(lock).split('-').pop());
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch {
        alive = false;
      }
      if (alive && pid !== process.pid) {
        pendingNotice = new Promise((resolve) => {
          const s = require('node:net').connect(socket, () => s.end(JSON.stringify({ argv: process.argv, cwd: process.cwd() }), resolve));
          s.on('error', resolve);
        });
        return false;
      }
      fs.rmSync(lock, { force: true });
      fs.symlinkSync(target, lock);
    }
    fs.rmSync(socket, { force: true });
    const server = require('node:net').createServer((conn) => {
      let text = '';
      conn.on('data', (d) => (text += d));
      conn.on('end', () => {
        const { argv, cwd } = JSON.parse(text);
        app.emit('second-instance', cancellable(), argv, cwd, {});
      });
    });
    server.listen(socket);
    server.unref();
    process.on('exit', () => {
      fs.rmSync(lock, { force: true });
      fs.rmSync(socket, { force: true });
    });
    return true;
  },
  /**
   * app.md quit: "Try to close all windows. The before-quit event will be emitted first. If all
   * windows are successfully closed, the will-quit event will be emitted and by default the
   * application will terminate." Each event's preventDefault() stops the quit; so does a window
   * whose 'close' is prevented.
   */
  quit() {
    if (quitting) return;
    quitting = true;
    setImmediate(() => {
      const before = cancellable();
      app.emit('before-quit', before);
      report({ type: 'before-quit', prevented: before.defaultPrevented });
      if (before.defaultPrevented) return void (quitting = false);
      for (const win of BrowserWindow.getAllWindows()) win.close();
      if (BrowserWindow.getAllWindows().length > 0) {
        report({ type: 'quit-cancelled-by-window' });
        return void (quitting = false);
      }
      const will = cancellable();
      app.emit('will-quit', will);
      report({ type: 'will-quit', prevented: will.defaultPrevented });
      if (will.defaultPrevented) return void (quitting = false);
      app.emit('quit', cancellable(), 0);
      terminate(0);
    });
  },
  /** app.md exit: "Exits immediately… the before-quit and will-quit events will not be emitted." */
  exit(code = 0) {
    terminate(code);
  },
  // app.md: dock is macOS only (undefined elsewhere); the login item settings are macOS and Windows only.
  dock: process.platform === 'darwin' ? { hide: () => report({ type: 'dock-hide' }) } : undefined,
});
if (process.platform === 'darwin' || process.platform === 'win32') {
  let loginItem = { openAtLogin: false, args: [] };
  app.getLoginItemSettings = () => ({ ...loginItem });
  app.setLoginItemSettings = (settings) => {
    loginItem = { ...loginItem, ...settings };
    report({ type: 'login-item', settings: loginItem });
  };
}

function terminate(code) {
  for (const win of BrowserWindow.getAllWindows()) win.destroy();
  clearInterval(keepAlive);
  report({ type: 'exit', code });
  // The report and a second instance's message go out before the process does.
  void pendingNotice.then(() => {
    if (process.send) process.send({ standIn: { type: 'bye' } }, () => process.exit(code));
    else process.exit(code);
  });
}

// ---- BrowserWindow and webContents (browser-window.md, web-contents.md) ---------------------
const windows = new Set();
let nextWindowId = 1;

class WebContents extends EventEmitter {
  constructor(win) {
    super();
    this.win = win;
    this.loading = false;
    this.url = '';
  }
  isLoading() {
    return this.loading;
  }
  getURL() {
    return this.url;
  }
  /** web-contents.md setWindowOpenHandler: decides each window.open; recorded only (no page runs here). */
  setWindowOpenHandler(handler) {
    this.windowOpenHandler = handler;
  }
  send(channel, ...args) {
    report({ type: 'webcontents-send', window: this.win.id, channel, args });
  }
}

class BrowserWindow extends EventEmitter {
  static getAllWindows() {
    return [...windows];
  }
  constructor(options = {}) {
    super();
    this.id = nextWindowId++;
    this.options = options;
    this.visible = false;
    this.destroyed = false;
    this.webContents = new WebContents(this);
    windows.add(this);
    report({ type: 'window-created', id: this.id, webPreferences: options.webPreferences ?? {} });
  }
  /**
   * browser-window.md loadFile → web-contents.md loadFile: resolves when the page has loaded
   * ('did-finish-load'), rejects for a file that is not there (ERR_FILE_NOT_FOUND, -6). What the
   * page would do when it loads is reported as the IPC handlers the main process has by then:
   * the status page asks for the worker's state at once (src/renderer/main.ts).
   */
  loadFile(file) {
    this.webContents.loading = true;
    this.webContents.url = require('node:url').pathToFileURL(file).href;
    return new Promise((resolve, reject) => {
      setImmediate(() => {
        this.webContents.loading = false;
        const found = fs.existsSync(file);
        report({ type: 'window-load', id: this.id, file, found, handlers: [...ipcHandlers.keys()] });
        if (!found) return reject(new Error(`ERR_FILE_NOT_FOUND (-6) loading '${this.webContents.url}'`));
        this.webContents.emit('did-finish-load');
        // browser-window.md 'ready-to-show': emitted when the page has rendered while the window is not shown.
        if (!this.visible) this.emit('ready-to-show');
        resolve();
      });
    });
  }
  show() {
    this.visible = true;
    report({ type: 'window-show', id: this.id });
  }
  hide() {
    this.visible = false;
    report({ type: 'window-hide', id: this.id });
  }
  isVisible() {
    return this.visible;
  }
  focus() {}
  isMinimized() {
    return false;
  }
  restore() {}
  removeMenu() {}
  isDestroyed() {
    return this.destroyed;
  }
  /** browser-window.md close: as the user's close button; the 'close' event may prevent it. */
  close() {
    if (this.destroyed) return;
    const event = cancellable();
    this.emit('close', event);
    if (event.defaultPrevented) return;
    this.destroy();
  }
  /** browser-window.md destroy: no 'close' event, but 'closed' is guaranteed. */
  destroy() {
    if (this.destroyed) return;
    this.destroyed = true;
    this.visible = false;
    windows.delete(this);
    report({ type: 'window-destroyed', id: this.id });
    this.emit('closed');
  }
}

// ---- session (session.md), nativeTheme (native-theme.md) ---------------------------------------
const sessions = new Map();
const session = {
  fromPartition(partition) {
    if (!sessions.has(partition)) {
      const s = new EventEmitter();
      const handlers = {};
      Object.assign(s, {
        setPermissionRequestHandler: (h) => (handlers.permissionRequest = h),
        setPermissionCheckHandler: (h) => (handlers.permissionCheck = h),
        webRequest: { onBeforeRequest: (filter, h) => (handlers.beforeRequest = { filter, h }) },
      });
      sessions.set(partition, s);
      report({ type: 'session', partition });
    }
    return sessions.get(partition);
  },
};
const nativeTheme = Object.assign(new EventEmitter(), { shouldUseDarkColors: false });

// ---- nativeImage (native-image.md), Menu (menu.md), Tray (tray.md) ------------------------------
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const nativeImage = {
  /** native-image.md createFromPath: "returns an empty image if the path does not exist, cannot be read, or is not a valid image". */
  createFromPath(file) {
    let empty = true;
    try {
      empty = !fs.readFileSync(file).subarray(0, 8).equals(PNG);
    } catch {
      empty = true;
    }
    return { path: file, isEmpty: () => empty };
  },
};

const Menu = {
  /** menu.md buildFromTemplate: the items as given; a checkbox's `checked` flips on click (menu-item.md). */
  buildFromTemplate(template) {
    return { items: template.map((item) => ({ type: 'normal', enabled: true, ...item })) };
  },
};

/** The app's tray icons; the test clicks the newest one still there. */
const trays = new Set();
class Tray extends EventEmitter {
  constructor(image) {
    super();
    this.image = image;
    this.tooltip = '';
    this.menu = null;
    this.destroyed = false;
    trays.add(this);
    this.report();
  }
  setImage(image) {
    this.image = image;
    this.report();
  }
  setToolTip(tooltip) {
    this.tooltip = tooltip;
    this.report();
  }
  setContextMenu(menu) {
    this.menu = menu;
    this.report();
  }
  destroy() {
    this.destroyed = true;
    trays.delete(this);
    report({ type: 'tray-destroyed' });
  }
  isDestroyed() {
    return this.destroyed;
  }
  report() {
    report({
      type: 'tray',
      icon: path.basename(this.image.path),
      iconEmpty: this.image.isEmpty(),
      tooltip: this.tooltip,
      menu: (this.menu?.items ?? []).map((i) => ({ label: i.label ?? null, type: i.type, enabled: i.enabled, checked: i.checked })),
    });
  }
}

// ---- ipcMain (ipc-main.md) --------------------------------------------------------------------
const ipcHandlers = new Map();
const ipcMain = Object.assign(new EventEmitter(), {
  /** ipc-main.md handle: a second handler for a channel is an error. */
  handle(channel, listener) {
    if (ipcHandlers.has(channel)) throw new Error(`Attempted to register a second handler for '${channel}'`);
    ipcHandlers.set(channel, listener);
    report({ type: 'ipc-handle', channel });
  },
  removeHandler(channel) {
    ipcHandlers.delete(channel);
  },
});

// ---- dialog, shell, powerMonitor, powerSaveBlocker ---------------------------------------------
const dialog = {
  /** dialog.md showErrorBox: a modal error box; here, a report. */
  showErrorBox: (title, content) => report({ type: 'error-box', title, content }),
};
const shell = {
  /** shell.md openPath: resolves with "" on success. */
  openPath: async (file) => (report({ type: 'open-path', path: file }), ''),
};

const power = { idleSeconds: 0, onBattery: false, locked: false };
const powerMonitor = Object.assign(new EventEmitter(), {
  getSystemIdleTime: () => power.idleSeconds,
  /** power-monitor.md getSystemIdleState: 'active' | 'idle' | 'locked' | 'unknown'. */
  getSystemIdleState: (threshold) => (power.locked ? 'locked' : power.idleSeconds >= threshold ? 'idle' : 'active'),
  isOnBatteryPower: () => power.onBattery,
});

const blockers = new Map();
let nextBlocker = 0;
const powerSaveBlocker = {
  /** power-save-blocker.md start: type 'prevent-app-suspension' or 'prevent-display-sleep'; returns an id. */
  start(type) {
    if (type !== 'prevent-app-suspension' && type !== 'prevent-display-sleep') throw new TypeError(`invalid powerSaveBlocker type ${type}`);
    const id = nextBlocker++;
    blockers.set(id, type);
    report({ type: 'power-save-blocker', started: true, id, kind: type });
    return id;
  },
  stop(id) {
    const was = blockers.delete(id);
    report({ type: 'power-save-blocker', started: false, id });
    return was;
  },
  isStarted: (id) => blockers.has(id),
};

// ---- what the test does: the person at the machine, the renderer, the OS ---------------------
process.on('message', (message) => {
  const command = message && message.standInCommand;
  if (!command) return;
  const done = (result) => process.send?.({ standInReply: { id: command.id, ...result } });
  try {
    switch (command.type) {
      case 'tray-click': {
        // tray.md: 'click' on the icon; a menu item by its label runs its click(menuItem, window, event).
        const lastTray = [...trays].pop();
        if (!lastTray) return done({ error: 'no tray' });
        if (command.label === undefined) {
          lastTray.emit('click', cancellable(), {});
          return done({});
        }
        const item = (lastTray.menu?.items ?? []).find((i) => i.label === command.label);
        if (!item) return done({ error: `no tray menu item ${JSON.stringify(command.label)}` });
        if (!item.enabled) return done({ error: `tray menu item ${JSON.stringify(command.label)} is disabled` });
        if (item.type === 'checkbox') item.checked = !item.checked;
        item.click?.(item, undefined, {});
        return done({});
      }
      case 'invoke': {
        // ipc-renderer.md invoke: an error when no handler is registered; otherwise the handler's answer.
        const handler = ipcHandlers.get(command.channel);
        if (!handler) return done({ error: `Error invoking remote method '${command.channel}': Error: No handler registered for '${command.channel}'` });
        const event = { senderFrame: { url: command.url, parent: command.isMainFrame === false ? {} : null } };
        return void Promise.resolve(handler(event, ...(command.args ?? []))).then(
          (value) => done({ value }),
          (e) => done({ error: String(e && e.message) }),
        );
      }
      case 'power': {
        Object.assign(power, command.set ?? {});
        if (command.event) powerMonitor.emit(command.event, cancellable());
        return done({});
      }
      case 'quit':
        app.quit();
        return done({});
      default:
        return done({ error: `unknown stand-in command ${command.type}` });
    }
  } catch (e) {
    done({ error: String(e && e.message) });
  }
});

// ---- autoUpdater (auto-updater.md): Squirrel's updater; electron-updater only emits
// 'before-quit-for-update' on it before quitting to install. No built-in updater runs here.
const autoUpdater = new EventEmitter();

module.exports = { app, autoUpdater, BrowserWindow, dialog, ipcMain, Menu, nativeImage, nativeTheme, powerMonitor, powerSaveBlocker, session, shell, Tray };
