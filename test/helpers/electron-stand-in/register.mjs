/**
 * `node --import ./register.mjs main.js`: inside Electron, `electron` is a
 * built-in module name that wins over any node_modules/electron (the npm
 * package is only the runtime's downloader and types). This makes the same
 * name mean electron.cjs for `import` (a module resolve hook) and for
 * `require` (electron-updater's), and nothing else.
 */
import Module, { register } from 'node:module';

const STAND_IN = new URL('./electron.cjs', import.meta.url);

register(new URL('./hooks.mjs', import.meta.url), { data: { standIn: STAND_IN.href } });

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === 'electron' ? resolve.call(this, STAND_IN.pathname, ...rest) : resolve.call(this, request, ...rest);
};
