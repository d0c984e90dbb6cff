/**
 * `modelsql catalog export --from LOC [--models PATTERN] [--format sql|bundle] [--out FILE]
 * [--include-secrets] [--with-cache] [--json]` (docs/catalog-migration.md).
 */
import { writeFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { withOnnxBytes } from '../../core/catalog/snapshot-onnx.js';
import { defaultCacheDir } from '../../core/runtime/runtime-loader.js';
import { missingSecrets, modelLabel, readSnapshot, type CatalogSnapshot } from '../../core/catalog/catalog-snapshot.js';
import { snapshotToScript } from '../../core/catalog/catalog-script.js';
import { encodeBundle } from './bundle.js';
import { checkLocations, err, failed, formatBytes, modelsOption, printJson, printWarnings, withHost } from './command-support.js';
import { describeLocation, parseLocation, LOCATION_HELP } from './location.js';

/** The formats of `--format`. */
export const EXPORT_FORMATS = ['sql', 'bundle'] as const;

/** Arguments of {@link runExport}. */
export interface ExportArgs {
  readonly from: string;
  readonly models?: string;
  readonly format: (typeof EXPORT_FORMATS)[number];
  readonly out?: string;
  readonly includeSecrets: boolean;
  readonly withCache: boolean;
  readonly json: boolean;
}

/** Registers `export` under `modelsql catalog`; `onStatus` receives the exit status. */
export function exportCommand<T>(y: Argv<T>, onStatus: (status: number) => void): Argv<T> {
  return y.command(
    'export',
    'write the models of a catalog as a SQL script or a bundle with their artifacts (docs/catalog-migration.md)',
    (c) =>
      c
        .option('from', { type: 'string', demandOption: true, requiresArg: true, describe: `the catalog: ${LOCATION_HELP}` })
        .option('models', modelsOption)
        .option('format', { choices: EXPORT_FORMATS, default: 'sql' as const, describe: 'sql: CREATE MODEL statements; bundle: one file with the catalog rows and artifacts' })
        .option('out', { type: 'string', requiresArg: true, describe: 'the file to write (default: stdout)' })
        .option('include-secrets', { type: 'boolean', default: false, describe: "write literal secrets ('api-key' values); by default they are written as '******'" })
        .option('with-cache', { type: 'boolean', default: false, describe: 'bundle only: include the prediction cache' })
        .option('json', { type: 'boolean', default: false, describe: 'print a JSON summary on stdout (needs --out)' })
        .check(checkLocations('from'))
        .check((args) => {
          if (args.json && args.out === undefined) throw new Error('--json prints a summary on stdout: give --out for the export itself');
          if (args['with-cache'] && args.format !== 'bundle') throw new Error('--with-cache needs --format bundle');
          return true;
        })
        .example('$0 catalog export --from duckdb:shop.duckdb --out models.sql', 'a SQL script of every model')
        .example('$0 catalog export --from postgres://localhost/shop --format bundle --out shop.bundle', 'a bundle with the trained artifacts'),
    async (args) => {
      onStatus(
        await runExport({
          from: args.from,
          models: args.models,
          format: args.format,
          out: args.out,
          includeSecrets: args['include-secrets'],
          withCache: args['with-cache'],
          json: args.json,
        }),
      );
    },
  );
}

/** Runs `catalog export`; resolves to the exit status. */
export async function runExport(args: ExportArgs): Promise<number> {
  const location = parseLocation(args.from);
  const label = describeLocation(location);
  try {
    if (args.format === 'bundle' && args.out === undefined && process.stdout.isTTY) {
      throw new Error('a bundle is binary: give --out FILE or redirect stdout');
    }
    const read = await withHost(location, { mode: 'read' }, (host) =>
      readSnapshot(host, { models: args.models, includeSecrets: args.includeSecrets, artifactContent: args.format === 'bundle', withCache: args.withCache }),
    );
    // A bundle carries the bytes of path-based ONNX models too; a script keeps their paths.
    const snapshot = args.format === 'bundle' ? await withOnnxBytes(read, { cacheDir: defaultCacheDir() }) : read;
    const createdAt = new Date().toISOString();
    const bytes =
      args.format === 'bundle'
        ? encodeBundle(snapshot, { source: label, createdAt })
        : Buffer.from(snapshotToScript(snapshot, { header: [`modelsql catalog export of ${label}, ${createdAt}`, secretsNote(args.includeSecrets)] }), 'utf8');
    if (args.out === undefined) await new Promise<void>((done, fail) => process.stdout.write(bytes, (e) => (e ? fail(e) : done())));
    else await writeFile(args.out, bytes);
    const warnings = missingSecrets(snapshot).map((m) => `model ${m.model}$${m.version}: literal '${m.key}' written as '******' (--include-secrets exports it)`);
    const summary = summarize(snapshot);
    if (args.json) {
      printJson({ command: 'export', from: label, format: args.format, out: args.out, ...summary, bytes: bytes.byteLength, warnings });
    } else {
      printWarnings(warnings);
      if (args.out !== undefined) {
        err(`exported ${summary.models.length} ${summary.models.length === 1 ? 'model' : 'models'} (${summary.versions} versions, ${summary.artifacts} artifacts) from ${label} to ${args.out} (${formatBytes(bytes.byteLength)})\n`);
      }
    }
    return 0;
  } catch (error) {
    return failed(error);
  }
}

function secretsNote(included: boolean): string {
  return included ? 'literal secrets are included: keep this file private' : "literal secrets are written as '******'; ${env:NAME} references as they are";
}

/** Counts for the summary. */
function summarize(snapshot: CatalogSnapshot): { models: { model: string; versions: number[]; defaultVersion: number }[]; versions: number; artifacts: number; cacheRows?: number } {
  const versions = snapshot.models.flatMap((m) => m.versions);
  return {
    models: snapshot.models.map((m) => ({ model: modelLabel(m), versions: m.versions.map((v) => v.version), defaultVersion: m.defaultVersion })),
    versions: versions.length,
    artifacts: versions.reduce((n, v) => n + v.artifacts.length, 0),
    ...(snapshot.cache ? { cacheRows: snapshot.cache.length } : {}),
  };
}
