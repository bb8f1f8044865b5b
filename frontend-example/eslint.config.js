// The lint gate (`npm run lint`, run by ci.sh): ESLint's and typescript-eslint's
// recommended rules everywhere, and eslint-plugin-react-hooks' recommended rules
// (rules-of-hooks, exhaustive-deps and the React Compiler checks) for the app.
// `npm run lint` passes --max-warnings 0, so a warning fails it too.
import js from '@eslint/js';
import reactHooks from 'eslint-plugin-react-hooks';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig([
  globalIgnores(['dist/', 'src/api/schema.d.ts']), // schema.d.ts is generated (`npm run generate`)
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    // the app, in the browser
    files: ['src/**/*.{ts,tsx}'],
    extends: [reactHooks.configs.flat.recommended],
    languageOptions: { globals: globals.browser },
  },
  {
    // tooling and the end-to-end tests, in Node
    files: ['*.{js,ts}', 'scripts/**/*.mjs', 'e2e/**/*.mjs'],
    languageOptions: { globals: globals.node },
  },
  {
    // the end-to-end tests pass functions to page.evaluate(), which run in the browser
    files: ['e2e/**/*.mjs'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
]);
