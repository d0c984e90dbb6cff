/**
 * What the `modelsql catalog` commands share: opening a location for the length of a
 * command, printing a report as a table or as JSON, and printing errors.
 */
import { formatError } from '../../core/errors.js';
import type { Host } from '../../core/host.js';
import { ResultPrinter } from '../format.js';
import { openLocationHost, parseLocation, type CatalogLocation, type OpenLocationOptions } from './location.js';

/** Exit status of a command that failed. */
export const EXIT_FAILED = 1;

/** Writes to stdout. */
export const out = (text: string): void => {
  process.stdout.write(text);
};

/** Writes to stderr. */
export const err = (text: string): void => {
  process.stderr.write(text);
};

/** Opens `location`, runs `fn` on its host and closes it, however `fn` ends. */
export async function withHost<T>(location: CatalogLocation, options: OpenLocationOptions, fn: (host: Host) => Promise<T>): Promise<T> {
  const host = await openLocationHost(location, options);
  try {
    return await fn(host);
  } finally {
    await host.close().catch(() => undefined);
  }
}

/** `--models PATTERN`, the model filter of every command that reads a catalog (`readSnapshot`'s `models`). */
export const modelsOption = {
  type: 'string',
  requiresArg: true,
  describe: "only models whose name matches this LIKE pattern ('price%'; 'schema.name' when it holds a dot)",
} as const;

/** A yargs `check` that the named arguments are catalog locations. */
export function checkLocations(...names: string[]): (args: Record<string, unknown>) => true {
  return (args) => {
    for (const name of names) parseLocation(String(args[name]));
    return true;
  };
}

/** Prints rows as a box-drawn table on stdout. */
export function printTable(columns: readonly string[], rows: readonly (readonly unknown[])[]): void {
  new ResultPrinter(out, 'table').print({ command: 'CATALOG', columns: columns.map((name) => ({ name, type: 'VARCHAR' })), rows });
}

/** Prints a value as one line of JSON on stdout. */
export function printJson(value: unknown): void {
  out(`${JSON.stringify(value)}\n`);
}

/** Prints warnings on stderr. */
export function printWarnings(warnings: readonly string[]): void {
  for (const w of warnings) err(`WARNING:  ${w}\n`);
}

/** Prints an error the way psql does (SQLSTATE, message, caret) and returns `status`. */
export function failed(error: unknown, status = EXIT_FAILED): number {
  err(`${formatError(error)}\n`);
  return status;
}

/** `1.2 MB`, `340 kB`, `12 bytes`. */
export function formatBytes(n: number): string {
  if (n >= 1_000_000) return `${(n / 1_000_000).toFixed(1)} MB`;
  if (n >= 1_000) return `${(n / 1_000).toFixed(1)} kB`;
  return `${n} ${n === 1 ? 'byte' : 'bytes'}`;
}
