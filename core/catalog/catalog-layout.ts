/**
 * The layout of the catalog tables in schema `ml_catalog` (SPEC §4) and its versioned
 * migrations. The table `ml_catalog.schema_version` holds one row per applied migration;
 * the highest `version` is the catalog's layout. A plan (`planCatalogUpgrade`) lists the
 * statements that bring a catalog to `CATALOG_VERSION`; `applyCatalogUpgrade` runs them
 * in one transaction. A catalog of a newer layout is refused (55000), never touched.
 *
 * Adding a layout: append a migration to `MIGRATIONS` (its statements may only add to the
 * layout before it), and a fixture of the new layout under `test/fixtures/catalog-layouts/`.
 */
import { ModelSqlError, UnsafeSearchPathError } from '../errors.js';
import type { Host } from '../host.js';
import { quoteIdentifier, quoteString } from '../sql/format.js';
import { isSealed, SECRET_KEY_SETTING, SecretCipher } from './secret-cipher.js';

/** Column types of the catalog tables, from the host's dialect. */
type CatalogTypes = Host['dialect']['catalogTypes'];

/** One step of the layout: what it changes and the statements that do it. */
interface Migration {
  /** One line for `catalog upgrade` and docs/catalog-upgrade.md. */
  readonly description: string;
  /** `c`: the catalog schema, qualified by its database when it is not the current one ({@link catalogSchema}). */
  readonly statements: (t: CatalogTypes, c?: string) => readonly string[];
  /** A step on the rows, run by modelsql after the statements in the same transaction. */
  readonly after?: (host: Host, cipher: SecretCipher, c: string) => Promise<void>;
}


/** The catalog's schema. */
const CATALOG_SCHEMA = 'ml_catalog';

/**
 * The catalog schema as SQL: `ml_catalog` in the current database, or `"db".ml_catalog` in
 * the attached database `database` (DuckDB: each attached database holds its own catalog).
 */
export function catalogSchema(database?: string): string {
  return database === undefined ? CATALOG_SCHEMA : `${quoteIdentifier(database)}.${CATALOG_SCHEMA}`;
}

/** Each migration brings the catalog from layout `i` to `i + 1` (index `i`); hosts with roles add their own statements (`RoleDialect.catalogMigration`). */
export const MIGRATIONS: readonly Migration[] = [
  {
    description: 'models, versions, artifacts, training metrics and the prediction_runs log',
    statements: (t, c = CATALOG_SCHEMA) => [
      `CREATE TABLE IF NOT EXISTS ${c}.models (schema_name ${t.text} NOT NULL, model_name ${t.text} NOT NULL, default_version ${t.integer} NOT NULL, owner ${t.text}, created_at ${t.timestamp} NOT NULL, updated_at ${t.timestamp} NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${c}.model_versions (schema_name ${t.text} NOT NULL, model_name ${t.text} NOT NULL, version ${t.integer} NOT NULL, provider ${t.text} NOT NULL, task ${t.text}, input_schema ${t.text} NOT NULL, output_schema ${t.text} NOT NULL, options ${t.text} NOT NULL, comment ${t.text}, as_query ${t.text}, created_at ${t.timestamp} NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${c}.artifacts (schema_name ${t.text} NOT NULL, model_name ${t.text} NOT NULL, version ${t.integer} NOT NULL, artifact_name ${t.text} NOT NULL, content ${t.blob} NOT NULL, sha256 ${t.text} NOT NULL)`,
      `CREATE TABLE IF NOT EXISTS ${c}.training_metrics (schema_name ${t.text} NOT NULL, model_name ${t.text} NOT NULL, version ${t.integer} NOT NULL, metric ${t.text} NOT NULL, value ${t.double})`,
      `CREATE TABLE IF NOT EXISTS ${c}.prediction_runs (run_id ${t.text} NOT NULL, schema_name ${t.text} NOT NULL, model_name ${t.text} NOT NULL, version ${t.integer} NOT NULL, input_relation ${t.text}, row_count ${t.bigint} NOT NULL, error_count ${t.bigint} NOT NULL, duration_ms ${t.double} NOT NULL, tokens ${t.bigint}, started_at ${t.timestamp} NOT NULL)`,
    ],
  },
  // Remote models: the prediction cache (core/runtime/prediction-cache.ts), literal secrets
  // kept apart from the readable options (core/secrets.ts), cache hits per run.
  {
    description: 'remote models: the prediction_cache table, the model_secrets table, prediction_runs.cache_hits',
    statements: (t, c = CATALOG_SCHEMA) => [
      `CREATE TABLE IF NOT EXISTS ${c}.prediction_cache (cache_key ${t.text} NOT NULL, provider ${t.text} NOT NULL, model ${t.text} NOT NULL, answer ${t.text} NOT NULL, created_at ${t.timestamp} NOT NULL)`,
      `CREATE INDEX IF NOT EXISTS prediction_cache_key ON ${c}.prediction_cache (cache_key)`,
      `CREATE TABLE IF NOT EXISTS ${c}.model_secrets (schema_name ${t.text} NOT NULL, model_name ${t.text} NOT NULL, version ${t.integer} NOT NULL, option_key ${t.text} NOT NULL, secret ${t.text} NOT NULL)`,
      `ALTER TABLE ${c}.prediction_runs ADD COLUMN cache_hits ${t.bigint}`,
    ],
  },
  // Model permissions (SPEC §5): every per-version row names the model's owner; grants;
  // secrets read through a view (on Postgres filtered by the caller's rights). Hosts with
  // roles add row-level security (`RoleDialect.catalogMigration`).
  {
    description: 'model permissions: owner on every per-version table, the model_grants table, the usable_secrets view (Postgres: row-level security)',
    statements: (t, c = CATALOG_SCHEMA) => [
      ...['model_versions', 'artifacts', 'training_metrics', 'model_secrets'].flatMap((table) => [
        `ALTER TABLE ${c}.${table} ADD COLUMN owner ${t.text}`,
        `UPDATE ${c}.${table} SET owner = m.owner FROM ${c}.models AS m WHERE m.schema_name = ${c}.${table}.schema_name AND m.model_name = ${c}.${table}.model_name`,
      ]),
      `CREATE TABLE ${c}.model_grants (schema_name ${t.text} NOT NULL, model_name ${t.text} NOT NULL, grantee ${t.text} NOT NULL, owner ${t.text} NOT NULL, granted_by ${t.text} NOT NULL, granted_at ${t.timestamp} NOT NULL)`,
      `CREATE VIEW ${c}.usable_secrets AS SELECT schema_name, model_name, version, option_key, secret FROM ${c}.model_secrets`,
    ],
  },
  // Models get ids; literal secrets are sealed with the process's key (secret-cipher.ts).
  // Postgres ties every row to its model id with foreign keys that cascade, drops rows of
  // no model, and takes writes away from ordinary roles (RoleDialect.catalogMigration).
  // DuckDB keeps its other tables as they are: an ALTER TABLE after layout 3's on the same
  // table in one transaction fails its commit, and a host without roles has nothing to guard.
  {
    description: 'model ids, literal secrets encrypted (needs MODELSQL_SECRET_KEY when the catalog holds any); Postgres: every row tied to its model id by foreign keys that cascade (rows of no model dropped), the catalog written only through modelsql functions',
    statements: (t, c = CATALOG_SCHEMA) => [`CREATE SEQUENCE ${c}.model_ids`, `ALTER TABLE ${c}.models ADD COLUMN model_id ${t.bigint}`, `UPDATE ${c}.models SET model_id = nextval(${quoteString(`${c}.model_ids`)})`],
    after: sealStoredSecrets,
  },
  // Layout 5. Materialized tables (core/materialized): definition, state and refresh statistics.
  {
    description: 'materialized tables: the materialized_tables table (definition, state, lag and refresh statistics)',
    statements: (t, c = CATALOG_SCHEMA) => [
      `CREATE TABLE ${c}.materialized_tables (table_id ${t.bigint} NOT NULL, schema_name ${t.text} NOT NULL, table_name ${t.text} NOT NULL, definition ${t.text} NOT NULL, query ${t.text} NOT NULL, refresh_mode ${t.text} NOT NULL, freshness_seconds ${t.bigint} NOT NULL, status ${t.text} NOT NULL, source_schema ${t.text}, source_table ${t.text}, source_key ${t.text}, model_schema ${t.text}, model_name ${t.text}, model_version ${t.integer}, comment ${t.text}, owner ${t.text} NOT NULL, created_at ${t.timestamp} NOT NULL, updated_at ${t.timestamp} NOT NULL, last_refresh_at ${t.timestamp}, last_refresh_ms ${t.double}, last_lag_ms ${t.double}, refresh_count ${t.bigint} NOT NULL, rows_refreshed ${t.bigint} NOT NULL, rows_predicted ${t.bigint} NOT NULL, rows_deleted ${t.bigint} NOT NULL, provider_rows ${t.bigint} NOT NULL, error_count ${t.bigint} NOT NULL, last_error ${t.text})`,
    ],
  },
  // Layout 6. Postgres only: the catalog functions take the acting role from the caller itself.
  {
    description: 'Postgres: the catalog functions take the acting role from the caller itself (its current_user), not from an argument checked against session_user; runs are recorded under that role',
    statements: () => [],
  },
  // Layout 7. Postgres only: materialized tables held to the rules of models (adapters/postgres/materialized-security.ts).
  {
    description: "Postgres: materialized tables written only through modelsql's functions (owner, superuser or catalog owner), read under row-level security; their state and change tables the catalog owner's, readable by the table's owner alone",
    statements: () => [],
  },
  // Layout 8. Postgres only: refresh claims and checked names (adapters/postgres/materialized-security.ts).
  {
    description:
      "Postgres: materialized tables' refreshes claimed through modelsql's functions (no advisory lock any role could hold); a new table needs its result table and its source to be its owner's own; random ids",
    statements: () => [],
  },
];

/**
 * Seals the plaintext literal secrets a catalog of layout 3 holds (run by the role
 * upgrading it: the catalog owner or a superuser, who may read them).
 *
 * @throws ModelSqlError 55000 naming MODELSQL_SECRET_KEY when there are some and no key.
 */
async function sealStoredSecrets(host: Host, cipher: SecretCipher, c: string): Promise<void> {
  const r = await host.execute(`SELECT schema_name, model_name, version, option_key, secret, owner FROM ${c}.model_secrets`);
  const plain = r.rows.filter((row) => !isSealed(String(row[4])));
  if (plain.length === 0) return;
  if (!cipher.hasKey) {
    throw new ModelSqlError(
      '55000',
      `the catalog holds ${plain.length} literal model secret(s) in plaintext, which layout 4 stores encrypted, and this process has no key: set ${SECRET_KEY_SETTING} (32 bytes as 64 hex digits or base64) and upgrade again (nothing was changed)`,
    );
  }
  for (const [schema, name, version, option, secret, owner] of plain) {
    await host.execute(`UPDATE ${c}.model_secrets SET secret = $1 WHERE schema_name = $2 AND model_name = $3 AND version = $4 AND option_key = $5`, [
      cipher.seal(String(secret), { owner: String(owner ?? ''), option: String(option) }),
      schema,
      name,
      version,
      option,
    ]);
  }
}

/** The catalog layout this modelsql writes: the number of migrations. */
export const CATALOG_VERSION = MIGRATIONS.length;

/** One migration of a plan: the layout it brings the catalog to, and its statements in order. */
export interface CatalogMigration {
  /** The layout after this migration. */
  readonly version: number;
  readonly description: string;
  /** Plain SQL, no parameters: printable as they are (`catalog upgrade --dry-run`). */
  readonly statements: readonly string[];
}

/** What an upgrade of one catalog would do. */
export interface CatalogUpgradePlan {
  /** The layout found: 0 when the database holds no catalog. */
  readonly from: number;
  /** The layout after the plan: `CATALOG_VERSION` (equal to `from` when nothing is pending). */
  readonly to: number;
  /** Statements that create the schema and the version table, when there is no catalog yet. */
  readonly setup: readonly string[];
  /** Pending migrations, oldest first; empty when the catalog is current. */
  readonly migrations: readonly CatalogMigration[];
  /** The attached database whose catalog the plan upgrades (absent: the current database's). */
  readonly database?: string;
}

/**
 * The layout of the catalog on `host`: the highest `ml_catalog.schema_version` row, 0
 * when the database has none. Reads only. `database`: an attached database's catalog
 * (default: the current database's).
 */
export async function readCatalogVersion(host: Host, database?: string): Promise<number> {
  // The host's own operators (information_schema's columns are of domains no built-in operator takes exactly: an
  // unqualified `=` would run one of any schema on the path, https://www.postgresql.org/docs/current/typeconv-oper.html).
  const eq = (left: string, right: string) => host.dialect.operator(left, '=', right);
  const found = await host.execute(
    `SELECT count(*) FROM information_schema.tables WHERE ${eq('table_catalog', database === undefined ? 'current_database()' : '$1')} AND ${eq('table_schema', "'ml_catalog'")} AND ${eq('table_name', "'schema_version'")}`,
    database === undefined ? [] : [database],
  );
  if (Number(found.rows[0]![0]) === 0) return 0;
  const v = await host.execute(`SELECT max(version) FROM ${catalogSchema(database)}.schema_version`);
  return Number(v.rows[0]![0] ?? 0);
}

/**
 * The statements that would bring the catalog on `host` to `CATALOG_VERSION`, without
 * running any. A catalog of a newer layout is refused with 55000.
 *
 * @example
 * const plan = await planCatalogUpgrade(host);
 * for (const m of plan.migrations) console.log(m.version, m.statements.join(';\n'));
 */
export async function planCatalogUpgrade(host: Host, database?: string): Promise<CatalogUpgradePlan> {
  // The migrations' policies and views keep the operators they were created with: none of a hostile schema.
  const path = await host.unsafeSearchPath?.();
  if (path !== undefined) throw new UnsafeSearchPathError(path);
  const from = await readCatalogVersion(host, database);
  refuseNewer(from);
  const t = host.dialect.catalogTypes;
  const c = catalogSchema(database);
  const setup =
    from === 0
      ? [`CREATE SCHEMA IF NOT EXISTS ${c}`, `CREATE TABLE IF NOT EXISTS ${c}.schema_version (version ${t.integer} NOT NULL, applied_at ${t.timestamp} NOT NULL)`]
      : [];
  const migrations = MIGRATIONS.slice(from).map((m, i) => migrationAt(from + i, host.dialect, c));
  return { from, to: CATALOG_VERSION, setup, migrations, ...(database === undefined ? {} : { database }) };
}

/**
 * Runs a plan in one transaction (or inside the caller's open transaction): the setup,
 * then each migration's statements and its `schema_version` row. Fails with 40001, running
 * nothing, when the catalog's layout is no longer `plan.from` (another process upgraded
 * it); any failure rolls the whole plan back, and its error names the migration.
 *
 * @example
 * const plan = await planCatalogUpgrade(host);
 * if (plan.migrations.length > 0) await applyCatalogUpgrade(host, plan);
 */
export async function applyCatalogUpgrade(host: Host, plan: CatalogUpgradePlan, options: { readonly secretKey?: string } = {}): Promise<void> {
  if (plan.setup.length === 0 && plan.migrations.length === 0) return;
  await host.transaction(async () => {
    // Serialises upgrades: a concurrent one waits on this row until the first commits, then
    // reads the layout that one wrote (Postgres re-reads it per statement, READ COMMITTED).
    const c = catalogSchema(plan.database);
    if (plan.from > 0) await host.execute(`UPDATE ${c}.schema_version SET version = version WHERE version = $1`, [plan.from]);
    const current = await readCatalogVersion(host, plan.database);
    if (current !== plan.from) {
      refuseNewer(current);
      throw new ModelSqlError('40001', `the model catalog changed while planning its upgrade (layout ${plan.from}, now ${current}); run the upgrade again`);
    }
    for (const statement of plan.setup) await host.execute(statement);
    for (const migration of plan.migrations) {
      try {
        for (const statement of migration.statements) await host.execute(statement);
        await MIGRATIONS[migration.version - 1]!.after?.(host, SecretCipher.fromSetting(options.secretKey), c);
      } catch (error) {
        const cause = error instanceof ModelSqlError ? error : new ModelSqlError('XX000', String(error));
        throw new ModelSqlError(cause.sqlstate, `catalog migration to layout ${migration.version} failed: ${cause.message}`, { cause: error });
      }
    }
  });
}

/** 55000 when `version` is newer than this modelsql understands. */
function refuseNewer(version: number): void {
  if (version > CATALOG_VERSION) {
    throw new ModelSqlError(
      '55000',
      `the model catalog in schema ml_catalog has layout version ${version}, newer than this modelsql understands (${CATALOG_VERSION}); upgrade modelsql`,
    );
  }
}

/** Migration `index` as a plan step: its statements, then the row that records it. */
function migrationAt(index: number, dialect: Host['dialect'], c: string): CatalogMigration {
  const m = MIGRATIONS[index]!;
  const version = index + 1;
  return {
    version,
    description: m.description,
    statements: [
      ...m.statements(dialect.catalogTypes, c),
      ...(dialect.roles?.catalogMigration(version) ?? []),
      `INSERT INTO ${c}.schema_version VALUES (${version}, CAST(now() AS TIMESTAMP))`,
    ],
  };
}
