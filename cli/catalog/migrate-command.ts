/**
 * `modelsql catalog migrate --from LOC --to LOC [--models PATTERN] [--on-conflict ...]
 * [--dry-run] [--with-cache] [--include-secrets] [--json]`: export and import in one step,
 * with every model, version, artifact and default version (docs/catalog-migration.md).
 */
import type { Argv } from 'yargs';
import { importSnapshot, type ConflictPolicy } from '../../core/catalog/catalog-import.js';
import { readSnapshot } from '../../core/catalog/catalog-snapshot.js';
import { withOnnxBytes } from '../../core/catalog/snapshot-onnx.js';
import { defaultCacheDir } from '../../core/runtime/runtime-loader.js';
import { CatalogProgress } from './catalog-progress.js';
import { checkLocations, failed, modelsOption, withHost } from './command-support.js';
import { onConflictOption, printSnapshotImport } from './import-command.js';
import { describeLocation, parseLocation, LOCATION_HELP } from './location.js';

/** Arguments of {@link runMigrate}. */
export interface MigrateArgs {
  readonly from: string;
  readonly to: string;
  readonly models?: string;
  readonly onConflict: ConflictPolicy;
  readonly dryRun: boolean;
  readonly withCache: boolean;
  readonly includeSecrets: boolean;
  readonly json: boolean;
}

/** Registers `migrate` under `modelsql catalog`; `onStatus` receives the exit status. */
export function migrateCommand<T>(y: Argv<T>, onStatus: (status: number) => void): Argv<T> {
  return y.command(
    'migrate',
    'copy the models of one catalog into another (DuckDB file or Postgres), in one transaction',
    (c) =>
      c
        .option('from', { type: 'string', demandOption: true, requiresArg: true, describe: `the source catalog: ${LOCATION_HELP}` })
        .option('to', { type: 'string', demandOption: true, requiresArg: true, describe: 'the target catalog' })
        .option('models', modelsOption)
        .option('on-conflict', onConflictOption)
        .option('dry-run', { type: 'boolean', default: false, describe: 'check and show what would be copied; write nothing' })
        .option('with-cache', { type: 'boolean', default: false, describe: 'copy the prediction cache too' })
        .option('include-secrets', { type: 'boolean', default: false, describe: "copy literal secrets ('api-key' values); by default they stay behind" })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
        .check(checkLocations('from', 'to'))
        .check((args) => {
          if (args.from === args.to) throw new Error('--from and --to name the same catalog');
          return true;
        })
        .example('$0 catalog migrate --from duckdb:dev.duckdb --to postgres://localhost/shop', 'every model to Postgres'),
    async (args) => {
      onStatus(
        await runMigrate({
          from: args.from,
          to: args.to,
          models: args.models,
          onConflict: args['on-conflict'],
          dryRun: args['dry-run'],
          withCache: args['with-cache'],
          includeSecrets: args['include-secrets'],
          json: args.json,
        }),
      );
    },
  );
}

/** Runs `catalog migrate`; resolves to the exit status. */
export async function runMigrate(args: MigrateArgs): Promise<number> {
  const from = parseLocation(args.from);
  const to = parseLocation(args.to);
  const progress = new CatalogProgress('models');
  try {
    const read = await withHost(from, { mode: 'read' }, (host) =>
      readSnapshot(host, { models: args.models, includeSecrets: args.includeSecrets, artifactContent: true, withCache: args.withCache }),
    );
    const snapshot = await withOnnxBytes(read, { cacheDir: defaultCacheDir() });
    const report = await withHost(to, { mode: args.dryRun ? 'dry-run' : 'write' }, (host) =>
      importSnapshot(host, snapshot, { onConflict: args.onConflict, dryRun: args.dryRun, onProgress: progress.update }),
    );
    progress.stop();
    printSnapshotImport(report, { command: 'migrate', from: describeLocation(from), to, json: args.json });
    return 0;
  } catch (error) {
    progress.stop();
    return failed(error);
  }
}
