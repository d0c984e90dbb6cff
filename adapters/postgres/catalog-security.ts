/**
 * Model permissions on Postgres (SPEC §5): the Postgres part of catalog layout 3.
 *
 * - Every per-model row (`models`, `model_versions`, `artifacts`, `training_metrics`,
 *   `model_secrets`, `model_grants`) carries the model's `owner` role.
 * - Row-level security (https://www.postgresql.org/docs/current/ddl-rowsecurity.html) on
 *   those tables: a role sees the rows of the models it may use (owner, a role with the
 *   owner's privileges, grantee, a role with a grantee's privileges, or `PUBLIC` granted) and changes only the rows of the
 *   models it owns. A row inserted for an existing model must name that model's owner, so
 *   no one can slip a version, an artifact or a grant into another role's model.
 * - The role owning the catalog tables administers it: table owners bypass row-level
 *   security, and the checks below treat its members as owners of every model.
 * - Literal secrets: `model_secrets.secret` is readable by the catalog owner alone (the
 *   other columns are granted for the row filters of UPDATE and DELETE); a model's users
 *   read its secrets through the view `usable_secrets`, which reads the table with its
 *   owner's (the catalog owner's) rights and keeps the rows whose model the *calling* role
 *   may use (functions inside a view run as the caller). `security_barrier` keeps a caller's own
 *   functions from seeing rows before that filter
 *   (https://www.postgresql.org/docs/current/rules-privileges.html).
 * - The checks are SQL expressions written into the policies and the view, of the calling
 *   role (`current_user`): a role learns nothing about another role's access. Postgres
 *   stores policy and view expressions parsed, so a caller's `search_path` cannot put its
 *   own `pg_has_role` or `=` in their place; being plain expressions (no function calls),
 *   the planner folds them into each catalog query. `model_grants`' own policy reads no
 *   table, so the policies that read it do not recurse. Two functions have a fixed
 *   `search_path` (https://www.postgresql.org/docs/current/sql-createfunction.html#SQL-CREATEFUNCTION-SECURITY):
 *   `model_owner`, of the calling role, for the write checks, and `model_taken`,
 *   `SECURITY DEFINER`, which tells whether a model name is taken (the unique index on
 *   names tells that anyway).
 * - Every role may use the catalog (USAGE on the schema, table rights to PUBLIC): what it
 *   sees and changes is decided row by row.
 */
import type { HostFunction, RoleDialect } from '../../core/host.js';
import { doubleQuote } from '../../core/sql/format.js';
import { CALLERS_TABLE, CATALOG_FUNCTION_SIGNATURES, CATALOG_OWNER_OID, CATALOG_FUNCTIONS, LAYOUT_4_FUNCTION_SIGNATURES } from './catalog-functions.js';
import { PostgresCatalogWriter } from './postgres-catalog-writer.js';
import { materializedLayout, materializedLayout8 } from './materialized-security.js';

/** The role owning the catalog: the owner of its `models` table. */
const CATALOG_OWNER = `pg_catalog.pg_get_userbyid(${CATALOG_OWNER_OID})`;

/** Tables holding one model's rows, each with an `owner` column (all but `models` keyed by version or grantee too). */
const MODEL_TABLES = ['models', 'model_versions', 'artifacts', 'training_metrics', 'model_secrets', 'model_grants'] as const;

/**
 * The current role has the privileges of the role named by the text expression `role`
 * (false for a name that is no role: `to_regrole` gives NULL where `pg_has_role` would
 * raise). 'USAGE', as Postgres's own owner checks (has_privs_of_role): a membership granted
 * WITH INHERIT FALSE (or the ADMIN-only one Postgres 16+ gives a CREATEROLE role) does not
 * count. Every name is qualified: Postgres binds a policy's names when it is created.
 */
const member = (role: string): string => memberBy('current_user', role);

/** The role named by the text expression `who` has the privileges of the role named by `role` (false for names that are no roles). */
const memberBy = (who: string, role: string): string =>
  `COALESCE(pg_catalog.pg_has_role(${who === 'current_user' ? who : `pg_catalog.to_regrole(pg_catalog.quote_ident(${who}))`}, pg_catalog.to_regrole(pg_catalog.quote_ident(${role})), 'USAGE'), false)`;

/** The role named by `who` may change a model of `owner` (as {@link mayAlter}). */
const mayAlterBy = (who: string, owner: string): string =>
  `(${memberBy(who, owner)} OR COALESCE(pg_catalog.pg_has_role(pg_catalog.to_regrole(pg_catalog.quote_ident(${who})), ${CATALOG_OWNER_OID}, 'USAGE'), false))`;

/** The current role may change a model of `owner`: it has the privileges of the owner or of the catalog owner (superusers have every role's). */
const mayAlter = (owner: string): string => `(${member(owner)} OR pg_catalog.pg_has_role(current_user, ${CATALOG_OWNER_OID}, 'USAGE'))`;

/** `a = b` with Postgres's operator whatever the search path. */
const eq = (a: string, b: string): string => `${a} OPERATOR(pg_catalog.=) ${b}`;

/** The current role may see and use the model: `mayAlter`, or a grant to one of its roles or to PUBLIC. */
const mayUse = (schema: string, model: string, owner: string): string =>
  `(${mayAlter(owner)} OR EXISTS (SELECT 1 FROM ml_catalog.model_grants g WHERE ${eq('g.schema_name', schema)} AND ${eq('g.model_name', model)} AND (${eq('g.grantee', "'public'")} OR ${member('g.grantee')})))`;

/** The owner of the model, as the current role sees the models (NULL for one it may not see). */
const modelOwner = (schema: string, model: string): string => `(SELECT m.owner FROM ml_catalog.models m WHERE m.schema_name = ${schema} AND m.model_name = ${model})`;

/**
 * The same as a function of the calling role, for the write checks: Postgres refuses a
 * policy that reaches its own table again through other policies (model_grants → models →
 * model_grants) when it sees the tables in the expression; a function body is planned on
 * its own, and at run time the chain ends at model_grants' table-free read policy.
 */
const MODEL_OWNER_FUNCTION = `CREATE FUNCTION ml_catalog.model_owner(schema text, model text) RETURNS text LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT m.owner FROM ml_catalog.models m WHERE m.schema_name = schema AND m.model_name = model $$`;

function modelTablePolicies(table: (typeof MODEL_TABLES)[number]): string[] {
  const c = (column: string) => `${table}.${column}`;
  // A new model names its own owner; a row of an existing model names that model's owner.
  const check = table === 'models' ? mayAlter(c('owner')) : `${mayAlter(c('owner'))} AND ${c('owner')} = ml_catalog.model_owner(${c('schema_name')}, ${c('model_name')})`;
  // model_grants: its owner's rows and the rows naming the caller (no table read here: the policies reading model_grants do not recurse).
  const use = table === 'model_grants' ? `${mayAlter(c('owner'))} OR ${c('grantee')} = 'public' OR ${member(c('grantee'))}` : mayUse(c('schema_name'), c('model_name'), c('owner'));
  return [
    `ALTER TABLE ml_catalog.${table} ENABLE ROW LEVEL SECURITY`,
    `CREATE POLICY ${table}_use ON ml_catalog.${table} FOR SELECT USING (${use})`,
    `CREATE POLICY ${table}_insert ON ml_catalog.${table} FOR INSERT WITH CHECK (${check})`,
    `CREATE POLICY ${table}_update ON ml_catalog.${table} FOR UPDATE USING (${mayAlter(c('owner'))}) WITH CHECK (${check})`,
    `CREATE POLICY ${table}_delete ON ml_catalog.${table} FOR DELETE USING (${mayAlter(c('owner'))})`,
  ];
}

/** Layout 3 on Postgres (after the shared statements, which add the `owner` columns and `model_grants`). */
const LAYOUT_3: readonly string[] = [
  // Models of older layouts recorded an operating-system user: they now belong to the catalog owner.
  ...MODEL_TABLES.filter((t) => t !== 'model_grants').map((t) => `UPDATE ml_catalog.${t} SET owner = ${CATALOG_OWNER}`),
  // One model per name, also across roles that cannot see each other's models.
  'CREATE UNIQUE INDEX models_name ON ml_catalog.models (schema_name, model_name)',
  'ALTER TABLE ml_catalog.prediction_runs ADD COLUMN run_by text',
  'ALTER TABLE ml_catalog.prediction_runs ALTER COLUMN run_by SET DEFAULT current_user',
  'ALTER TABLE ml_catalog.prediction_cache ADD COLUMN owner text',
  'ALTER TABLE ml_catalog.prediction_cache ALTER COLUMN owner SET DEFAULT current_user',
  MODEL_OWNER_FUNCTION,
  `CREATE FUNCTION ml_catalog.model_taken(schema text, model text) RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ SELECT EXISTS (SELECT 1 FROM ml_catalog.models WHERE schema_name = schema AND model_name = model) $$`,
  ...MODEL_TABLES.flatMap(modelTablePolicies),
  // The run log: a role sees its own runs and the runs of models it may use.
  'ALTER TABLE ml_catalog.prediction_runs ENABLE ROW LEVEL SECURITY',
  `CREATE POLICY prediction_runs_use ON ml_catalog.prediction_runs FOR SELECT USING (run_by = current_user OR ${mayUse('prediction_runs.schema_name', 'prediction_runs.model_name', modelOwner('prediction_runs.schema_name', 'prediction_runs.model_name'))})`,
  'CREATE POLICY prediction_runs_insert ON ml_catalog.prediction_runs FOR INSERT WITH CHECK (run_by = current_user)',
  // The prediction cache holds answers to other roles' inputs: each role has its own.
  'ALTER TABLE ml_catalog.prediction_cache ENABLE ROW LEVEL SECURITY',
  'CREATE POLICY prediction_cache_own ON ml_catalog.prediction_cache USING (owner = current_user) WITH CHECK (owner = current_user)',
  'DROP VIEW ml_catalog.usable_secrets',
  `CREATE VIEW ml_catalog.usable_secrets WITH (security_barrier) AS SELECT schema_name, model_name, version, option_key, secret FROM ml_catalog.model_secrets s WHERE ${mayUse('s.schema_name', 's.model_name', 's.owner')}`,
  'GRANT USAGE ON SCHEMA ml_catalog TO PUBLIC',
  'GRANT SELECT, INSERT, UPDATE, DELETE ON ml_catalog.models, ml_catalog.model_versions, ml_catalog.artifacts, ml_catalog.training_metrics, ml_catalog.model_grants TO PUBLIC',
  'GRANT SELECT (schema_name, model_name, version, option_key, owner), INSERT, UPDATE, DELETE ON ml_catalog.model_secrets TO PUBLIC',
  'GRANT SELECT, INSERT ON ml_catalog.prediction_runs TO PUBLIC',
  'GRANT SELECT, INSERT, DELETE ON ml_catalog.prediction_cache TO PUBLIC',
  'GRANT SELECT ON ml_catalog.schema_version, ml_catalog.usable_secrets TO PUBLIC',
  // A superuser upgrading another role's catalog: the new objects belong to the catalog owner too.
  `DO $$ DECLARE o name := ${CATALOG_OWNER}; BEGIN IF o OPERATOR(pg_catalog.<>) current_user THEN
     EXECUTE pg_catalog.format('ALTER TABLE ml_catalog.model_grants OWNER TO %I', o);
     EXECUTE pg_catalog.format('ALTER VIEW ml_catalog.usable_secrets OWNER TO %I', o);
     EXECUTE pg_catalog.format('ALTER FUNCTION ml_catalog.model_owner(text, text) OWNER TO %I', o);
     EXECUTE pg_catalog.format('ALTER FUNCTION ml_catalog.model_taken(text, text) OWNER TO %I', o);
   END IF; END $$`,
];

/** The current role may see and use the model of id `id`: `mayAlter`, or a grant (by model id) to one of its roles or to PUBLIC. */
const mayUseId = (id: string, owner: string): string =>
  `(${mayAlter(owner)} OR EXISTS (SELECT 1 FROM ml_catalog.model_grants g WHERE ${eq('g.model_id', id)} AND (${eq('g.grantee', "'public'")} OR ${member('g.grantee')})))`;

/** The read policy of each model table (grants matched by model id), and the view of usable secrets: `CREATE` (or, with `replace`, `CREATE OR REPLACE`) statements. */
function readPolicies(replace: boolean): string[] {
  return [
    ...MODEL_TABLES.flatMap((t) => {
      const use = t === 'model_grants' ? `${mayAlter(`${t}.owner`)} OR ${eq(`${t}.grantee`, "'public'")} OR ${member(`${t}.grantee`)}` : mayUseId(`${t}.model_id`, `${t}.owner`);
      return [...(replace ? [`DROP POLICY ${t}_use ON ml_catalog.${t}`] : []), `CREATE POLICY ${t}_use ON ml_catalog.${t} FOR SELECT USING (${use})`];
    }),
    `CREATE ${replace ? 'OR REPLACE ' : ''}VIEW ml_catalog.usable_secrets WITH (security_barrier) AS SELECT schema_name, model_name, version, option_key, secret FROM ml_catalog.model_secrets s WHERE ${mayUseId('s.model_id', 's.owner')}`,
  ];
}

/** Tables keyed by (model id, version) below `model_versions`. */
const VERSION_ROW_TABLES = ['artifacts', 'training_metrics', 'model_secrets'] as const;

/**
 * Layout 4 on Postgres (after the shared statements, which add the `model_id` columns):
 * ordinary roles lose INSERT, UPDATE and DELETE on the catalog tables (they write through
 * the functions of catalog-functions.ts, created by layout 6); every row is tied to its model (and version) by
 * foreign keys that cascade; the read policies match grants by model id.
 */
const LAYOUT_4: readonly string[] = [
  // Every row to its model by id, and only to a model of the same owner: a row left or planted under a name is dropped.
  ...MODEL_TABLES.filter((t) => t !== 'models').flatMap((t) => [
    `ALTER TABLE ml_catalog.${t} ADD COLUMN model_id bigint`,
    `UPDATE ml_catalog.${t} SET model_id = m.model_id FROM ml_catalog.models AS m WHERE m.schema_name = ${t}.schema_name AND m.model_name = ${t}.model_name AND m.owner = ${t}.owner`,
    `DELETE FROM ml_catalog.${t} WHERE model_id IS NULL`,
  ]),
  'ALTER TABLE ml_catalog.prediction_runs ADD COLUMN model_id bigint',
  // A run is tied to the model of its name only when it is verifiable: recorded before layout 3
  // (no run_by: the catalog had no roles), or by a role that may use that model now, after the
  // model was created. Layout 3 let any role record a run under any name (run_by is its own
  // role, checked by policy): the other runs naming a model are dropped, not given to it.
  `UPDATE ml_catalog.prediction_runs SET model_id = m.model_id FROM ml_catalog.models AS m WHERE m.schema_name = prediction_runs.schema_name AND m.model_name = prediction_runs.model_name
     AND (prediction_runs.run_by IS NULL OR (prediction_runs.started_at >= m.created_at AND (${mayAlterBy('prediction_runs.run_by', 'm.owner')}
       OR EXISTS (SELECT 1 FROM ml_catalog.model_grants g WHERE g.model_id = m.model_id AND (g.grantee = 'public' OR ${memberBy('prediction_runs.run_by', 'g.grantee')})))))`,
  'DELETE FROM ml_catalog.prediction_runs r WHERE r.model_id IS NULL AND EXISTS (SELECT 1 FROM ml_catalog.models m WHERE m.schema_name = r.schema_name AND m.model_name = r.model_name)',
  // Layout 3's write policies and their helper: writes no longer reach the tables.
  ...MODEL_TABLES.flatMap((t) => ['use', 'insert', 'update', 'delete'].map((p) => `DROP POLICY ${t}_${p} ON ml_catalog.${t}`)),
  'DROP POLICY prediction_runs_use ON ml_catalog.prediction_runs',
  'DROP POLICY prediction_runs_insert ON ml_catalog.prediction_runs',
  'DROP FUNCTION ml_catalog.model_owner(text, text)',
  'DROP VIEW ml_catalog.usable_secrets',
  // One row per version (layout 3 kept that by the writer only).
  'DELETE FROM ml_catalog.model_versions a USING ml_catalog.model_versions b WHERE a.model_id = b.model_id AND a.version = b.version AND a.ctid < b.ctid',
  'ALTER TABLE ml_catalog.models ALTER COLUMN model_id SET NOT NULL, ADD CONSTRAINT models_id PRIMARY KEY (model_id)',
  'ALTER TABLE ml_catalog.model_versions ALTER COLUMN model_id SET NOT NULL, ADD CONSTRAINT model_versions_id PRIMARY KEY (model_id, version), ADD CONSTRAINT model_versions_model FOREIGN KEY (model_id) REFERENCES ml_catalog.models (model_id) ON DELETE CASCADE',
  ...VERSION_ROW_TABLES.flatMap((t) => [
    `ALTER TABLE ml_catalog.${t} ALTER COLUMN model_id SET NOT NULL, ADD CONSTRAINT ${t}_version FOREIGN KEY (model_id, version) REFERENCES ml_catalog.model_versions (model_id, version) ON DELETE CASCADE`,
    `CREATE INDEX ${t}_model ON ml_catalog.${t} (model_id, version)`,
  ]),
  'ALTER TABLE ml_catalog.model_grants ALTER COLUMN model_id SET NOT NULL, ADD CONSTRAINT model_grants_model FOREIGN KEY (model_id) REFERENCES ml_catalog.models (model_id) ON DELETE CASCADE',
  'CREATE INDEX model_grants_model ON ml_catalog.model_grants (model_id)',
  // Reads: as in layout 3, with grants matched by model id.
  ...readPolicies(false),
  // The run log: a role sees its own runs and the runs of the models it may use (models' own policy decides).
  `CREATE POLICY prediction_runs_use ON ml_catalog.prediction_runs FOR SELECT USING (run_by = CAST(current_user AS text) OR run_by = CAST(session_user AS text) OR EXISTS (SELECT 1 FROM ml_catalog.models m WHERE m.model_id = prediction_runs.model_id))`,
  'REVOKE INSERT, UPDATE, DELETE ON ml_catalog.models, ml_catalog.model_versions, ml_catalog.artifacts, ml_catalog.training_metrics, ml_catalog.model_grants, ml_catalog.model_secrets FROM PUBLIC',
  'REVOKE INSERT ON ml_catalog.prediction_runs FROM PUBLIC',
  'GRANT SELECT ON ml_catalog.usable_secrets TO PUBLIC',
  // A superuser upgrading another role's catalog: objects it creates belong to the catalog owner.
  `DO $$ DECLARE o name := ${CATALOG_OWNER}; BEGIN IF o OPERATOR(pg_catalog.<>) current_user THEN
     EXECUTE pg_catalog.format('ALTER VIEW ml_catalog.usable_secrets OWNER TO %I', o);
     EXECUTE pg_catalog.format('ALTER SEQUENCE ml_catalog.model_ids OWNER TO %I', o);
   END IF; END $$`,
];

/**
 * Layout 6 on Postgres: the writers learn the acting role from the caller itself
 * (catalog-functions.ts: a token made by the caller's own `current_user`) instead of an
 * argument checked against `session_user`; runs are recorded under the acting role, and a
 * role sees the runs recorded under its own name (not those of its session's login role).
 */
const LAYOUT_6: readonly string[] = [
  ...LAYOUT_4_FUNCTION_SIGNATURES.map((f) => `DROP FUNCTION IF EXISTS ${f}`),
  ...CALLERS_TABLE,
  ...CATALOG_FUNCTIONS,
  ...CATALOG_FUNCTION_SIGNATURES.helpers.map((f) => `REVOKE ALL ON FUNCTION ${f} FROM PUBLIC`),
  ...CATALOG_FUNCTION_SIGNATURES.writers.map((f) => `GRANT EXECUTE ON FUNCTION ${f} TO PUBLIC`),
  'DROP POLICY IF EXISTS prediction_runs_use ON ml_catalog.prediction_runs',
  `CREATE POLICY prediction_runs_use ON ml_catalog.prediction_runs FOR SELECT USING (${eq('run_by', 'CAST(current_user AS pg_catalog.text)')} OR EXISTS (SELECT 1 FROM ml_catalog.models m WHERE ${eq('m.model_id', 'prediction_runs.model_id')}))`,
  // The read policies again, for a catalog of layout 4 or 5: a role's privileges ('USAGE'), not any membership, and every name qualified.
  ...readPolicies(true),
  // A superuser upgrading another role's catalog: the functions must run with the catalog owner's rights, not the superuser's.
  `DO $$ DECLARE o name := ${CATALOG_OWNER}; BEGIN IF o OPERATOR(pg_catalog.<>) current_user THEN
     EXECUTE pg_catalog.format('ALTER TABLE ml_catalog.callers OWNER TO %I', o);
     ${[...CATALOG_FUNCTION_SIGNATURES.helpers, ...CATALOG_FUNCTION_SIGNATURES.writers].map((f) => `EXECUTE pg_catalog.format('ALTER FUNCTION ${f} OWNER TO %I', o);`).join('\n     ')}
   END IF; END $$`,
];

/** The Postgres statements of each layout that has some. */
const LAYOUTS: Readonly<Record<number, readonly string[]>> = { 3: LAYOUT_3, 4: LAYOUT_4, 6: LAYOUT_6, 7: materializedLayout(mayAlter, CATALOG_OWNER), 8: materializedLayout8(CATALOG_OWNER) };

/**
 * Postgres roles for the core (`SqlDialect.roles`).
 *
 * @example
 * await host.execute(POSTGRES_ROLES.mayAlter, ['analyst']); // [[true]] for a member of analyst
 */
export const POSTGRES_ROLES: RoleDialect = {
  catalogMigration: (version) => LAYOUTS[version] ?? [],
  catalogWriter: (host) => new PostgresCatalogWriter(host),
  currentRole: 'SELECT CAST(current_user AS text)',
  mayAlter: `SELECT ${mayAlter('CAST($1 AS text)')}`,
  modelTaken: 'SELECT 1 WHERE ml_catalog.model_taken($1, $2)',
  roleExists: `SELECT 1 WHERE $1 = 'public' OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`,
  functionAccess(fn: Omit<HostFunction, 'body' | 'returnType'>, role: string, grant: boolean): string {
    const name = `${doubleQuote(fn.schema)}.${doubleQuote(fn.name)}(${fn.params.map((p) => p.type).join(', ')})`;
    const who = role === 'public' ? 'PUBLIC' : doubleQuote(role);
    // https://www.postgresql.org/docs/current/sql-grant.html: functions are executable by PUBLIC unless revoked.
    return grant ? `GRANT EXECUTE ON FUNCTION ${name} TO ${who}` : `REVOKE ALL ON FUNCTION ${name} FROM ${who}`;
  },
  // Catalog layout 7 (materialized-security.ts).
  materialized: {
    create: 'SELECT ml_catalog.create_materialized($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)',
    alter: 'SELECT ml_catalog.alter_materialized($1, $2, $3, $4)',
    recordRefresh: 'SELECT ml_catalog.record_refresh($1, $2, $3, $4, $5, $6, $7, $8, $9)',
    recordError: 'SELECT ml_catalog.record_refresh_error($1, $2)',
    drop: 'SELECT ml_catalog.drop_materialized($1)',
    mayRefresh: `SELECT ${member('CAST($1 AS pg_catalog.text)')}`,
  },
};
