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
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test/artifacts/**'] },
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
  layer(['src/protocol/**'], ['transport', 'coordinator', 'worker', 'cli', 'common', 'main', 'preload', 'renderer'], 'protocol/ imports nothing of ours'),
  layer(['src/common/**'], ['transport', 'coordinator', 'worker', 'cli', 'main', 'preload', 'renderer'], 'common/ holds leaf helpers: only protocol/ below it'),
  layer(['src/transport/**'], ['coordinator', 'worker', 'cli', 'main', 'preload', 'renderer'], 'transport/ knows bytes and streams, only protocol/ below it'),
  layer(['src/coordinator/**'], ['worker', 'cli', 'main', 'preload', 'renderer'], 'coordinator/ and worker/ never import each other'),
  layer(['src/worker/**'], ['coordinator', 'cli', 'main', 'preload', 'renderer', 'electron'], 'worker/ is the Electron-free core; coordinator/ and worker/ never import each other'),
);
