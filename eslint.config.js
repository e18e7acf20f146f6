// Lint, including the layering rules of ../shared/STYLE.md: a folder is a
// contract, and a wrong import fails CI instead of slowly eroding it.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const layer = (files, forbidden, why) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: forbidden.map((name) => ({ group: [`**/${name}`, `**/${name}/**`, name], message: why })) },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test/artifacts/**', '.scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
    },
  },
  {
    // CommonJS where something require()s it: the Electron stand-in (electron-updater loads it).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', setImmediate: 'readonly', setInterval: 'readonly', clearInterval: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  layer(['src/protocol/**'], ['transport', 'coordinator', 'worker', 'cli', 'common', 'main', 'preload', 'renderer'], 'protocol/ imports nothing of ours'),
  layer(['src/common/**'], ['transport', 'coordinator', 'worker', 'cli', 'main', 'preload', 'renderer'], 'common/ holds leaf helpers: only protocol/ below it'),
  layer(['src/transport/**'], ['coordinator', 'worker', 'cli', 'main', 'preload', 'renderer'], 'transport/ knows bytes and streams, only protocol/ below it'),
  layer(['src/coordinator/**'], ['worker', 'cli', 'main', 'preload', 'renderer'], 'coordinator/ and worker/ never import each other'),
  layer(['src/worker/**'], ['coordinator', 'cli', 'main', 'preload', 'renderer', 'electron'], 'worker/ is the Electron-free core; coordinator/ and worker/ never import each other'),
  // The desktop app. main/ is glue over the worker core; only local test mode's one file may start a coordinator.
  { ...layer(['src/main/**'], ['coordinator', 'cli', 'preload', 'renderer'], 'main/ drives the worker core (worker/) and Electron; the coordinator only through main/local-coordinator.ts'), ignores: ['src/main/local-coordinator.ts'] },
  layer(['src/main/local-coordinator.ts'], ['cli', 'preload', 'renderer'], 'main/local-coordinator.ts starts a coordinator for local test mode, nothing else'),
  // preload/ and renderer/ run in the sandboxed page: no Node, nothing of ours but the protocol.
  layer(['src/preload/**'], ['transport', 'coordinator', 'worker', 'cli', 'common', 'main', 'renderer', 'node:*'], 'preload/ is the bridge: electron and protocol/ only'),
  layer(['src/renderer/**'], ['transport', 'coordinator', 'worker', 'cli', 'common', 'main', 'preload', 'electron', 'node:*'], 'renderer/ runs in a browser page: protocol/ and its own files only'),
  layer(['src/dashboard/**'], ['transport', 'coordinator', 'worker', 'cli', 'common', 'main', 'preload', 'electron', 'node:*'], 'dashboard/ runs in a browser page: protocol/, renderer/dom.ts and its own files only'),
  // The renderer bundles protocol/, so it may use only what a browser page has.
  {
    files: ['src/protocol/**'],
    rules: { 'no-restricted-globals': ['error', ...['process', 'Buffer', 'require', '__dirname', '__filename'].map((name) => ({ name, message: 'protocol/ runs in the renderer too: use Uint8Array, TextEncoder/TextDecoder, atob/btoa' }))] },
  },
  {
    files: ['src/preload/**', 'src/renderer/**'],
    rules: { 'no-restricted-globals': ['error', ...['process', 'Buffer', 'require', '__dirname', '__filename'].map((name) => ({ name, message: 'no Node in the sandboxed page' }))] },
  },
);
