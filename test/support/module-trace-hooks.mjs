/**
 * Module customization hooks (https://nodejs.org/docs/latest-v20.x/api/module.html#customization-hooks)
 * for module-trace.mjs: appends the URL of every module loaded through the ES module loader.
 */
import { appendFileSync } from 'node:fs';

let file;

/** Receives the trace file from `register`. */
export function initialize(data) {
  file = data.file;
}

/** Records `url`, then loads it as usual. */
export async function load(url, context, nextLoad) {
  appendFileSync(file, `${url}\n`);
  return nextLoad(url, context);
}
