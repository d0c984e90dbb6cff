/**
 * A preload (`node --import ./test/support/module-trace.mjs ...`) that writes every module
 * the process loads to the file named by MODELSQL_MODULE_TRACE, one per line: ES modules and
 * built-ins as the loader sees them (module-trace-hooks.mjs), CommonJS files from
 * `require.cache` when the process exits. test/cli/start-up-modules.test.ts reads it.
 */
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';

const file = process.env.MODELSQL_MODULE_TRACE;
if (file) {
  register(new URL('./module-trace-hooks.mjs', import.meta.url), { data: { file } });
  const require = createRequire(import.meta.url);
  process.on('exit', () => appendFileSync(file, Object.keys(require.cache).map((path) => `${path}\n`).join('')));
}
