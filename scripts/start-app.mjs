// `npm start`: the desktop app in local test mode (an embedded coordinator
// and the app's own worker), built first when src/ is newer than dist/.
// Where the Electron runtime is not installed it says so in one line, points
// to the headless equivalent, and exits 1.
//
//   npm start                                # = node scripts/start-app.mjs
//   GOGRID_LOG_LEVEL=debug npm start         # the app's log level
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * The runtime's path, found the way electron's own index.js finds it, but
 * without requiring that file: it starts a download when the binary is
 * missing, and these machines cannot reach the download server.
 */
function electronBinary() {
  let pkg;
  try {
    pkg = dirname(createRequire(import.meta.url).resolve('electron/package.json'));
  } catch {
    return null;
  }
  const pathFile = join(pkg, 'path.txt');
  const relative = existsSync(pathFile) ? readFileSync(pathFile, 'utf8').trim() : '';
  const override = process.env.ELECTRON_OVERRIDE_DIST_PATH;
  const binary = override ? join(override, relative || 'electron') : relative ? join(pkg, 'dist', relative) : null;
  return binary && existsSync(binary) ? binary : null;
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

function needsBuild() {
  const outputs = ['dist/main/main.js', 'dist/preload/preload.cjs', 'dist/renderer/index.html'].map((f) => join(root, f));
  if (!outputs.every((f) => existsSync(f))) return true;
  const oldest = Math.min(...outputs.map((f) => statSync(f).mtimeMs));
  return newestMtime(join(root, 'src')) > oldest;
}

const electron = electronBinary();
if (!electron) {
  process.stderr.write('npm start: the Electron runtime is not installed here (node_modules/electron has no binary); run `npx gogrid local` (or `npm run local`) for the same coordinator and worker without the desktop app.\n');
  process.exit(1);
}
if (needsBuild()) {
  const build = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
const app = spawn(electron, [root, '--local', ...process.argv.slice(2)], { stdio: 'inherit' });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => app.kill(signal));
app.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
