import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always'],
      'no-console': 'off',
    },
  },
  {
    // The core knows nothing of Node-RED: nodes/ wraps src/, never the other way round. Import
    // cycles are checked by test/architecture.test.ts, which sees the whole graph.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'node-red', message: 'src/ must not depend on Node-RED; put it in nodes/.' }],
          patterns: [
            { group: ['**/nodes/**', '@node-red/*'], message: 'src/ must not import nodes/ or Node-RED.' },
          ],
        },
      ],
    },
  },
);
