/**
 * Draws tray-model.ts's model: icon, tooltip and menu, redrawn only when the
 * model changed (the worker host reports a new view often; rebuilding the
 * menu each time makes Linux status notifier menus flicker and close).
 *
 *   const tray = appTray({ icons: TRAY_ICONS, platform: process.platform, onCommand: run });
 *   host.on('view', (v) => tray.update(v));
 */
import { Menu, Tray, nativeImage, type MenuItemConstructorOptions } from 'electron';
import { join } from 'node:path';
import type { WorkerView } from '../protocol/control.js';
import { trayModel, type TrayCommand, type TrayMenuItem } from './tray-model.js';

export interface AppTray {
  update(view: WorkerView | null): void;
  destroy(): void;
}

export function appTray(opts: { icons: string; platform: NodeJS.Platform; onCommand: (command: TrayCommand) => void }): AppTray {
  const first = trayModel(null, opts.platform);
  const tray = new Tray(nativeImage.createFromPath(join(opts.icons, first.icon)));
  let shown = { icon: '', tooltip: '', menu: '' };

  const toTemplate = (item: TrayMenuItem): MenuItemConstructorOptions => {
    switch (item.kind) {
      case 'status':
        return { label: item.label, enabled: false };
      case 'separator':
        return { type: 'separator' };
      case 'command':
        return { label: item.label, enabled: item.enabled, click: () => opts.onCommand(item.command) };
      case 'checkbox':
        return { label: item.label, type: 'checkbox', checked: item.checked, click: () => opts.onCommand(item.command) };
    }
  };

  // The menu is the one way in on macOS; elsewhere a click on the icon opens the window.
  if (opts.platform !== 'darwin') tray.on('click', () => opts.onCommand('open'));

  const update = (view: WorkerView | null) => {
    const model = trayModel(view, opts.platform);
    const menu = JSON.stringify(model.menu);
    if (model.icon !== shown.icon) tray.setImage(nativeImage.createFromPath(join(opts.icons, model.icon)));
    if (model.tooltip !== shown.tooltip) tray.setToolTip(model.tooltip);
    if (menu !== shown.menu) tray.setContextMenu(Menu.buildFromTemplate(model.menu.map(toTemplate)));
    shown = { icon: model.icon, tooltip: model.tooltip, menu };
  };
  update(null);

  return { update, destroy: () => tray.destroy() };
}
