/**
 * `modelsql catalog diff LOC LOC [--models PATTERN] [--json]`: the models, versions and
 * options that differ. Exit status 0 when the catalogs are equal, 1 when they differ, 2 on
 * an error (as diff(1)).
 */
import type { Argv } from 'yargs';
import { diffSnapshots } from '../../core/catalog/catalog-diff.js';
import { readSnapshot } from '../../core/catalog/catalog-snapshot.js';
import { checkLocations, failed, modelsOption, out, printJson, printTable, withHost } from './command-support.js';
import { describeLocation, parseLocation, LOCATION_HELP } from './location.js';

/** Exit status when the catalogs differ. */
export const EXIT_DIFFERENT = 1;
/** Exit status when the comparison could not be made. */
export const EXIT_DIFF_ERROR = 2;

/** Arguments of {@link runDiff}. */
export interface DiffArgs {
  readonly left: string;
  readonly right: string;
  readonly models?: string;
  readonly json: boolean;
}

/** Registers `diff` under `modelsql catalog`; `onStatus` receives the exit status. */
export function diffCommand<T>(y: Argv<T>, onStatus: (status: number) => void): Argv<T> {
  return y.command(
    'diff <left> <right>',
    'compare the models of two catalogs (exit status 0 equal, 1 different, 2 error)',
    (c) =>
      c
        .positional('left', { type: 'string', demandOption: true, describe: `a catalog: ${LOCATION_HELP}` })
        .positional('right', { type: 'string', demandOption: true, describe: 'the other catalog' })
        .option('models', modelsOption)
        .option('json', { type: 'boolean', default: false, describe: 'print the differences as JSON' })
        .check(checkLocations('left', 'right'))
        .example('$0 catalog diff duckdb:dev.duckdb postgres://localhost/shop', 'what a migration would change'),
    async (args) => {
      onStatus(await runDiff({ left: args.left, right: args.right, models: args.models, json: args.json }));
    },
  );
}

/** Runs `catalog diff`; resolves to the exit status. */
export async function runDiff(args: DiffArgs): Promise<number> {
  const left = parseLocation(args.left);
  const right = parseLocation(args.right);
  try {
    const read = (location: typeof left) => withHost(location, { mode: 'read' }, (host) => readSnapshot(host, { models: args.models }));
    const differences = diffSnapshots(await read(left), await read(right));
    if (args.json) {
      printJson({ command: 'diff', left: describeLocation(left), right: describeLocation(right), equal: differences.length === 0, differences });
    } else if (differences.length === 0) {
      out('no differences\n');
    } else {
      printTable(['model', 'version', 'field', 'left', 'right'], differences.map((d) => [d.model, d.version ?? '', d.field, d.left ?? '(absent)', d.right ?? '(absent)']));
    }
    return differences.length === 0 ? 0 : EXIT_DIFFERENT;
  } catch (error) {
    return failed(error, EXIT_DIFF_ERROR);
  }
}
