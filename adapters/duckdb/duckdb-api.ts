/**
 * `@duckdb/node-api` and `@duckdb/node-bindings`, loaded through `require`.
 *
 * Both packages are CommonJS. An ESM `import` of a CommonJS module makes Node scan its
 * source, and every module it re-exports, for export names (cjs-module-lexer,
 * https://nodejs.org/docs/latest-v20.x/api/esm.html#commonjs-namespaces): for node-api's
 * index, which re-exports about fifty files, that scan costs more than loading them. `require`
 * skips it, so opening a DuckDB session starts faster. The types are the packages' own.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The `@duckdb/node-api` module. */
export const duckdbApi = require('@duckdb/node-api') as typeof import('@duckdb/node-api');

/** The `@duckdb/node-bindings` module (the C API, for vector memory access). */
export const duckdbBindings = require('@duckdb/node-bindings') as typeof import('@duckdb/node-bindings');
