/**
 * `modelsql catalog import --to LOC FILE [--on-conflict error|skip|replace|new-version]
 * [--dry-run] [--json]`: a bundle, a script from `catalog export --format sql`, or a Flink
 * SQL script (docs/catalog-migration.md).
 */
import type { Argv } from 'yargs';
import { CONFLICT_POLICIES, importSnapshot, type ConflictPolicy, type ImportReport } from '../../core/catalog/catalog-import.js';
import { importScript, type ScriptImportReport } from '../../core/catalog/script-import.js';
import { ModelSession } from '../../core/session/model-session.js';
import { ModelSqlError } from '../../core/errors.js';
import { DEFAULT_MAX_SCRIPT_BYTES, readBoundedInput } from '../bounded-input.js';
import { decodeBundle, isBundle, MAX_BUNDLE_BYTES } from './bundle.js';
import { CatalogProgress } from './catalog-progress.js';
import { checkLocations, err, failed, printJson, printTable, printWarnings, withHost } from './command-support.js';
import { describeLocation, openLocationHost, parseLocation, LOCATION_HELP, type CatalogLocation } from './location.js';

/** Arguments of {@link runImport}. */
export interface ImportArgs {
  readonly to: string;
  readonly file: string;
  readonly onConflict: ConflictPolicy;
  readonly dryRun: boolean;
  readonly json: boolean;
  /** The largest bundle read, in bytes (default and most: {@link MAX_BUNDLE_BYTES}). */
  readonly maxBundleBytes?: number;
  /** The largest SQL script read, in bytes (default {@link DEFAULT_MAX_SCRIPT_BYTES}). */
  readonly maxScriptBytes?: number;
  /** A script's models read files only under these directories (`--model-dir`; unset: anywhere). */
  readonly modelDir?: readonly string[];
  /** A script's models reach only URLs under these prefixes (`--allow-endpoint`; unset: any). */
  readonly allowEndpoint?: readonly string[];
}

export { DEFAULT_MAX_SCRIPT_BYTES };

/** The `--on-conflict` option, shared with `migrate`. */
export const onConflictOption = {
  choices: CONFLICT_POLICIES,
  default: 'error' as ConflictPolicy,
  describe: 'a model that exists in the target: error (refuse the import), skip it, replace it, or add the imported versions as new versions',
} as const;

/** Registers `import` under `modelsql catalog`; `onStatus` receives the exit status. */
export function importCommand<T>(y: Argv<T>, onStatus: (status: number) => void): Argv<T> {
  return y.command(
    'import <file>',
    'import a bundle, an exported SQL script or the CREATE MODEL statements of a Flink SQL script, in one transaction',
    (c) =>
      c
        .positional('file', { type: 'string', demandOption: true, describe: 'the bundle or SQL script ("-" for stdin)' })
        .option('to', { type: 'string', demandOption: true, requiresArg: true, describe: `the catalog: ${LOCATION_HELP}` })
        .option('on-conflict', onConflictOption)
        .option('dry-run', { type: 'boolean', default: false, describe: 'check and show what would be imported; write nothing' })
        .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
        .option('max-bundle-bytes', { type: 'number', requiresArg: true, describe: `the largest bundle read, in bytes; larger: 54000 (default and most: ${MAX_BUNDLE_BYTES})` })
        .option('max-script-bytes', { type: 'number', requiresArg: true, describe: `the largest SQL script read, in bytes; larger: 54000 (default: ${DEFAULT_MAX_SCRIPT_BYTES}, 256 MiB)` })
        .option('model-dir', {
          // Repeated rather than an array option, which would swallow the FILE after it.
          type: 'string',
          requiresArg: true,
          coerce: (v: string | string[]) => [v].flat(),
          describe: "a script's CREATE MODEL reads model files only from this directory (repeatable; symbolic links and .. cannot escape it)",
        })
        .option('allow-endpoint', {
          // Repeated rather than an array option, which would swallow the FILE after it.
          type: 'string',
          requiresArg: true,
          coerce: (v: string | string[]) => [v].flat(),
          describe: "a script's CREATE MODEL reaches only URLs under this prefix: model URLs, provider endpoints (repeatable; '*' for any)",
        })
        .check(checkLocations('to'))
        .check((a) => {
          const bundle = a['max-bundle-bytes'];
          const script = a['max-script-bytes'];
          if (bundle !== undefined && !(Number.isInteger(bundle) && bundle > 0 && bundle <= MAX_BUNDLE_BYTES)) throw new Error(`--max-bundle-bytes must be a positive integer of at most ${MAX_BUNDLE_BYTES}`);
          if (script !== undefined && !(Number.isInteger(script) && script > 0 && script <= MAX_BUNDLE_BYTES)) throw new Error(`--max-script-bytes must be a positive integer of at most ${MAX_BUNDLE_BYTES}`);
          return true;
        })
        .example('$0 catalog import --to postgres://localhost/shop shop.bundle', 'import a bundle')
        .example('$0 catalog import --to duckdb:dev.duckdb --on-conflict new-version job.sql', 'import the models of a Flink job'),
    async (args) => {
      // yargs hands a lone `-` positional over as ''.
      onStatus(
        await runImport({
          to: args.to,
          file: args.file === '' ? '-' : args.file,
          onConflict: args['on-conflict'],
          dryRun: args['dry-run'],
          json: args.json,
          maxBundleBytes: args['max-bundle-bytes'],
          maxScriptBytes: args['max-script-bytes'],
          modelDir: args['model-dir'],
          allowEndpoint: args['allow-endpoint'],
        }),
      );
    },
  );
}

/** Runs `catalog import`; resolves to the exit status. */
export async function runImport(args: ImportArgs): Promise<number> {
  const location = parseLocation(args.to);
  try {
    const bytes = await readInput(args.file, { bundle: args.maxBundleBytes ?? MAX_BUNDLE_BYTES, script: args.maxScriptBytes ?? DEFAULT_MAX_SCRIPT_BYTES });
    if (isBundle(bytes)) {
      const bundle = decodeBundle(bytes, args.file === '-' ? 'on stdin' : args.file);
      const progress = new CatalogProgress('models');
      try {
        const report = await withHost(location, { mode: args.dryRun ? 'dry-run' : 'write' }, (host) =>
          importSnapshot(host, bundle.snapshot, { onConflict: args.onConflict, dryRun: args.dryRun, onProgress: progress.update }),
        );
        progress.stop();
        printSnapshotImport(report, { command: 'import', to: location, file: args.file, json: args.json });
      } finally {
        progress.stop();
      }
      return 0;
    }
    const report = await importScriptAt(location, bytes.toString('utf8'), args);
    printScriptImport(report, { to: location, file: args.file, json: args.json });
    return 0;
  } catch (error) {
    return failed(error);
  }
}

/** Runs a script's model statements on the target through a session of its own. */
async function importScriptAt(location: CatalogLocation, text: string, args: ImportArgs): Promise<ScriptImportReport> {
  const host = await openLocationHost(location, { mode: args.dryRun ? 'dry-run' : 'write' });
  // A script's CREATE MODEL reads its path or URL as the statement would in a session: only where the flags allow.
  const session = new ModelSession(host, {
    ...(args.modelDir !== undefined ? { allowedDirectories: args.modelDir } : {}),
    ...(args.allowEndpoint !== undefined ? { allowedUrlPrefixes: args.allowEndpoint } : {}),
  });
  const progress = new CatalogProgress('statements');
  try {
    return await importScript(host, (statement, sqlText) => session.runStatement(statement, sqlText), text, {
      onConflict: args.onConflict,
      dryRun: args.dryRun,
      onProgress: progress.update,
    });
  } finally {
    progress.stop();
    await session.close().catch(() => undefined);
  }
}

/** Prints the report of a bundle import or a migration. */
export function printSnapshotImport(report: ImportReport, context: { readonly command: string; readonly to: CatalogLocation; readonly from?: string; readonly file?: string; readonly json: boolean }): void {
  const to = describeLocation(context.to);
  if (context.json) {
    printJson({ command: context.command, ...(context.from ? { from: context.from } : {}), ...(context.file ? { file: context.file } : {}), to, ...report });
    return;
  }
  printTable(
    ['model', 'action', 'versions', 'default_version', 'artifacts'],
    report.models.map((m) => [m.model, m.action, m.versions.map((v) => (v.from === v.to ? String(v.from) : `${v.from}→${v.to}`)).join(', '), m.defaultVersion, m.artifacts]),
  );
  printWarnings(report.warnings);
  const written = report.models.filter((m) => m.action !== 'skip').length;
  const cache = report.cacheRows > 0 ? `, ${report.cacheRows} cache rows` : '';
  err(report.dryRun ? `dry run: ${written} of ${report.models.length} models would be written to ${to}${cache}; nothing was written\n` : `${written} of ${report.models.length} models written to ${to}${cache}\n`);
}

function printScriptImport(report: ScriptImportReport, context: { readonly to: CatalogLocation; readonly file: string; readonly json: boolean }): void {
  const to = describeLocation(context.to);
  if (context.json) {
    printJson({ command: 'import', file: context.file, to, ...report });
    return;
  }
  printTable(['line', 'statement', 'action', 'note'], report.statements.map((s) => [s.line, s.statement, s.action, s.note ?? '']));
  const models = report.models.map((m) => `${m.model} (${m.action})`).join(', ');
  const skipped = report.statements.filter((s) => s.action === 'skipped').length;
  err(`${report.dryRun ? 'dry run: would import' : 'imported'} ${report.models.length} ${report.models.length === 1 ? 'model' : 'models'}${models ? `: ${models}` : ''}; ${skipped} ${skipped === 1 ? 'statement' : 'statements'} skipped${report.dryRun ? '; nothing was written' : ''}\n`);
}

/** Bytes of the bundle header an import looks at to tell a bundle from a script. */
const PEEK = 16;

/**
 * Reads the file (`-`: stdin) to import, refusing it with 54000 once it is over the limit
 * of its kind (a bundle or a script, told by its first bytes): a regular file by its size
 * before reading it; stdin, and a file whose size says nothing (a pipe, a device such as
 * `/dev/zero`), as soon as it has sent more, never holding more than the limit. A file that
 * cannot be read is 58P01 (missing), 42501 (no permission) or 58030.
 */
async function readInput(file: string, limits: { readonly bundle: number; readonly script: number }): Promise<Buffer> {
  const name = file === '-' ? 'on stdin' : file;
  return readBoundedInput(
    file,
    PEEK,
    (head) => {
      const kind = isBundle(head) ? 'bundle' : 'script';
      const [limit, flag] = kind === 'bundle' ? [limits.bundle, 'max-bundle-bytes'] : [limits.script, 'max-script-bytes'];
      const tooLarge = (size: number | undefined) =>
        new ModelSqlError('54000', `${kind} ${name} ${size === undefined ? `has more than ${limit} bytes` : `is ${size} bytes`}, over the limit of ${limit} bytes (--${flag}); nothing was imported`);
      return { limit, tooLarge };
    },
    '; nothing was imported',
  );
}
