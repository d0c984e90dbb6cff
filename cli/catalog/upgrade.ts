/**
 * `modelsql catalog upgrade LOC [--dry-run] [--json]`: brings the model catalog at a
 * location to the layout this modelsql writes, applying its pending migrations in one
 * transaction (core/catalog/catalog-layout.ts, docs/catalog-upgrade.md). `--dry-run`
 * prints the migration SQL as a script and changes nothing; a catalog of a newer layout
 * is refused (55000) and left as it is.
 */
import { applyCatalogUpgrade, planCatalogUpgrade } from '../../core/catalog/catalog-layout.js';
import { ModelSqlError, formatError } from '../../core/errors.js';
import type { Host } from '../../core/host.js';
import { describeLocation, openLocationHost, parseLocation } from './location.js';

/** The arguments of `catalog upgrade`. */
export interface UpgradeArgs {
  /** `duckdb:path` or `postgres://...`. */
  readonly location: string;
  readonly dryRun: boolean;
  readonly json: boolean;
}

/** Where the command writes: results to `write` (stdout), messages and errors to `writeError` (stderr). */
export interface CommandOutput {
  write(text: string): void;
  writeError(text: string): void;
}

/** What `--json` prints on success. */
interface UpgradeReport {
  readonly ok: true;
  readonly location: string;
  /** The layout found (0: no catalog). */
  readonly from: number;
  /** The layout the migrations bring the catalog to (`from` when none is pending). */
  readonly to: number;
  readonly dryRun: boolean;
  /** Whether migrations were applied (false with `--dry-run` or nothing pending). */
  readonly changed: boolean;
  /** The migrations applied, or with `--dry-run` those that would be. */
  readonly migrations: readonly { readonly version: number; readonly description: string; readonly statements: readonly string[] }[];
}

/**
 * Runs `catalog upgrade`; resolves to the exit status (0 done or nothing to do, 1 failed).
 *
 * @example
 * const status = await upgradeCommand({ location: 'duckdb:shop.duckdb', dryRun: true, json: false }, { write, writeError });
 */
export async function upgradeCommand(args: UpgradeArgs, out: CommandOutput): Promise<number> {
  let host: Host | undefined;
  try {
    const location = parseLocation(args.location);
    host = await openLocationHost(location);
    const report = await upgrade(host, describeLocation(location), args.dryRun);
    if (args.json) out.write(`${JSON.stringify(report)}\n`);
    else printReport(report, out);
    return 0;
  } catch (error) {
    if (args.json) {
      const failure = error instanceof ModelSqlError ? { sqlstate: error.sqlstate, message: error.message } : { sqlstate: 'XX000', message: String(error) };
      out.write(`${JSON.stringify({ ok: false, error: failure })}\n`);
    }
    out.writeError(`${formatError(error)}\n`);
    return 1;
  } finally {
    await host?.close().catch(() => undefined);
  }
}

/** Plans the upgrade and, unless `dryRun`, applies it; errors name the location. */
async function upgrade(host: Host, location: string, dryRun: boolean): Promise<UpgradeReport> {
  const named = (error: unknown, suffix = ''): unknown =>
    error instanceof ModelSqlError ? new ModelSqlError(error.sqlstate, `${location}: ${error.message}${suffix}`, { cause: error }) : error;
  let plan;
  try {
    plan = await planCatalogUpgrade(host);
  } catch (error) {
    throw named(error);
  }
  // A database with no catalog gets the current layout on first use; upgrade creates nothing.
  const pending = plan.from === 0 ? [] : plan.migrations;
  if (!dryRun && pending.length > 0) {
    try {
      await applyCatalogUpgrade(host, plan);
    } catch (error) {
      throw named(error, `\nthe upgrade was rolled back: the catalog is unchanged, at layout ${plan.from}`);
    }
  }
  return {
    ok: true,
    location,
    from: plan.from,
    to: pending.length === 0 ? plan.from : plan.to,
    dryRun,
    changed: !dryRun && pending.length > 0,
    migrations: pending.map((m) => ({ version: m.version, description: m.description, statements: m.statements })),
  };
}

/** Prints a report for people: a summary, and with `--dry-run` the SQL as a script. */
function printReport(report: UpgradeReport, out: CommandOutput): void {
  const { location, from, to, migrations } = report;
  if (from === 0) {
    out.write(`${location}: no model catalog (schema ml_catalog); nothing to upgrade\n`);
  } else if (migrations.length === 0) {
    out.write(`${location}: the model catalog is at layout ${from}, the current one; nothing to upgrade\n`);
  } else if (report.changed) {
    out.write(`${location}: upgraded the model catalog from layout ${from} to layout ${to}\n`);
    for (const m of migrations) out.write(`  layout ${m.version}: ${m.description}\n`);
  } else {
    out.write(`-- ${location}: the model catalog is at layout ${from}; these statements bring it to layout ${to}, in one transaction\n`);
    out.write('BEGIN;\n');
    for (const m of migrations) {
      out.write(`-- layout ${m.version}: ${m.description}\n`);
      for (const statement of m.statements) out.write(`${statement};\n`);
    }
    out.write('COMMIT;\n');
    out.writeError('dry run: nothing was changed\n');
  }
}
