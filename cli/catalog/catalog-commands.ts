/**
 * The subcommands of `modelsql catalog`, registered on yargs. Loaded by cli/main.ts only
 * when the command line asks for `catalog`: the modules behind them (both adapters, the
 * catalog tools) are not paid for by `run` and `shell`.
 */
import type { Argv } from 'yargs';
import { checkLocations } from './command-support.js';
import { diffCommand } from './diff-command.js';
import { exportCommand } from './export-command.js';
import { importCommand } from './import-command.js';
import { LOCATION_HELP } from './location.js';
import { migrateCommand } from './migrate-command.js';
import { upgradeCommand } from './upgrade.js';

/** What the `catalog` subcommands need from the CLI around them. */
export interface CatalogCommandContext {
  /** Receives the exit status of the command that ran. */
  readonly onStatus: (status: number) => void;
  readonly write: (text: string) => void;
  readonly writeError: (text: string) => void;
  /** Registers the `--db` / `--postgres` options of a command that opens a session. */
  readonly sessionOptions: <U>(y: Argv<U>) => Argv<U & { db?: string; postgres?: string }>;
  /** `catalog export-onnx`: resolves to the exit status. */
  readonly exportOnnx: (args: { model: string; db?: string; postgres?: string; out: string }) => Promise<number>;
}

/** Registers `export-onnx`, `upgrade`, `export`, `import`, `migrate` and `diff` under `catalog`. */
export function catalogCommands<T>(y: Argv<T>, ctx: CatalogCommandContext): Argv<T> {
  const { onStatus } = ctx;
  const catalog = y
    .command(
      'export-onnx <model>',
      "write a trained model's ONNX graph to a file that onnxruntime loads (docs/training.md)",
      (c) =>
        ctx
          .sessionOptions(c.positional('model', { type: 'string', demandOption: true, describe: 'the model: name, schema.name, name$version' }))
          .option('out', { type: 'string', demandOption: true, requiresArg: true, describe: 'the .onnx file to write' })
          .example('$0 catalog export-onnx price_model --db shop.duckdb --out price_model.onnx', 'export the default version'),
      async (args) => {
        onStatus(await ctx.exportOnnx({ model: args.model, db: args.db, postgres: args.postgres, out: args.out }));
      },
    )
    .command(
      'upgrade <location>',
      "apply the catalog's pending layout migrations in one transaction (docs/catalog-upgrade.md)",
      (c) =>
        c
          .positional('location', { type: 'string', demandOption: true, describe: `the catalog: ${LOCATION_HELP}` })
          .option('dry-run', { type: 'boolean', default: false, describe: 'print the migration SQL and change nothing' })
          .option('json', { type: 'boolean', default: false, describe: 'print the result as one JSON object' })
          .check(checkLocations('location'))
          .example('$0 catalog upgrade duckdb:shop.duckdb --dry-run', 'show the SQL an upgrade would run')
          .example('$0 catalog upgrade postgres://admin@db:5432/shop', 'upgrade a Postgres catalog'),
      async (args) => {
        onStatus(await upgradeCommand({ location: args.location, dryRun: args['dry-run'], json: args.json }, { write: ctx.write, writeError: ctx.writeError }));
      },
    );
  return diffCommand(migrateCommand(importCommand(exportCommand(catalog, onStatus), onStatus), onStatus), onStatus).demandCommand(1, 'give a catalog command');
}
