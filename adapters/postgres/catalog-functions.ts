/**
 * The functions through which every role writes the model catalog on Postgres (catalog
 * layout 6). As Postgres's own catalogs are not writable by users, ordinary roles have no
 * INSERT, UPDATE or DELETE on the `ml_catalog` tables; every change is one call of a
 * function of this file, which checks the rights of the role acting and writes one whole
 * change.
 *
 * **Who is acting.** A `SECURITY DEFINER` function sees its owner as `current_user`, so it
 * cannot ask Postgres who called it, and neither an argument nor `session_user` tells it
 * truthfully: code running as another role inside a session (a `SECURITY DEFINER` function
 * of another role, an index expression evaluated during a superuser's ANALYZE, a role set
 * with SET ROLE) could pass any name. So each change is two functions:
 *
 * - `ml_catalog.<writer>(...)`, the one callers use, `SECURITY INVOKER`: it runs as the
 *   caller's `current_user` and inserts a fresh random token into `ml_catalog.callers`,
 *   whose `caller` column ordinary roles cannot write: it takes its default,
 *   `current_user`, the role the insert runs as. Then it calls
 * - `ml_catalog.<writer>_as(token, ...)`, `SECURITY DEFINER`, owned by the catalog owner,
 *   which deletes the token's row and acts as the role it names (42501 without one).
 *
 * A token acts only in the transaction and backend that made it (columns `made_in`,
 * `made_by`, defaults no caller may write) and never outlives that transaction (a deferred
 * constraint trigger deletes it), no ordinary role may read `callers`, and a role can only
 * ever make a token naming itself: calling a `_as` function directly, with a token of its
 * own, acts as itself. (A transaction-local setting could not carry the role: any role may
 * set any `ml_catalog.*` setting.) Both functions have
 * `search_path = pg_catalog, pg_temp` and qualify every name
 * (https://www.postgresql.org/docs/current/sql-createfunction.html#SQL-CREATEFUNCTION-SECURITY),
 * so a caller's objects never stand in for ours.
 *
 * Rights (the same as the read policies of catalog-security.ts): a role may change a model
 * when it has the privileges of the model's owner or of the catalog owner
 * (`pg_has_role(..., 'USAGE')`, as Postgres's owner checks; superusers have every role's); a new model needs CREATE on its schema too, as a table would; a role may
 * use a model when it may change it or a grant names one of its roles or PUBLIC.
 */

/** The role owning the catalog (the owner of `ml_catalog.models`), as an oid; every name qualified (it is bound into policies too). */
export const CATALOG_OWNER_OID = `(SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) CAST('ml_catalog.models' AS pg_catalog.regclass))`;

/** Options every function has. */
export const FIXED_PATH = 'SET search_path = pg_catalog, pg_temp';

/** Raises 42501 with a message (`%` placeholders filled by `args`). */
export const deny = (message: string, ...args: string[]) => `RAISE EXCEPTION '${message}'${args.map((a) => `, ${a}`).join('')} USING ERRCODE = '42501'`;

/** The model's id and owner into `v_id` and `v_owner`, locked, or 42704 when there is none. */
const FIND_MODEL = `SELECT m.model_id, m.owner INTO v_id, v_owner FROM ml_catalog.models m WHERE m.schema_name OPERATOR(pg_catalog.=) p_schema AND m.model_name OPERATOR(pg_catalog.=) p_name FOR UPDATE;
  IF v_id IS NULL THEN RAISE EXCEPTION 'model %.% does not exist', pg_catalog.quote_ident(p_schema), pg_catalog.quote_ident(p_name) USING ERRCODE = '42704'; END IF;`;

/** 42501 unless `v_role` may change the model found by {@link FIND_MODEL}. */
const CHECK_ALTER = `IF NOT ml_catalog.may_alter(v_role, v_owner) THEN ${deny('must be owner of model %.%', 'pg_catalog.quote_ident(p_schema)', 'pg_catalog.quote_ident(p_name)')}; END IF;`;

/** 42501 unless `v_role` may create a model in `schema` (an expression). */
const checkCreate = (schema: string) =>
  `IF NOT (pg_catalog.has_schema_privilege(pg_catalog.to_regrole(pg_catalog.quote_ident(v_role)), ${schema}, 'CREATE') OR pg_catalog.pg_has_role(pg_catalog.to_regrole(pg_catalog.quote_ident(v_role)), ${CATALOG_OWNER_OID}, 'USAGE')) THEN ${deny('permission denied for schema %: a model needs CREATE on its schema', `pg_catalog.quote_ident(${schema})`)}; END IF;`;

/** Tables keyed by (model id, version). */
const VERSION_TABLES = ['model_versions', 'artifacts', 'training_metrics', 'model_secrets'] as const;

/** `now()` as the catalog's `timestamp`. */
const NOW = 'CAST(pg_catalog.now() AS timestamp)';

/** One change of the catalog: its parameters (`p_name type, ...`, without the acting role), extra locals, and its body acting as `v_role` (which `RETURN`s a value of type `returns`, when given). */
export interface Writer {
  readonly name: string;
  readonly params: string;
  readonly locals?: string;
  readonly body: string;
  /** The type the writer returns (default `void`). */
  readonly returns?: string;
}

const WRITERS: readonly Writer[] = [
  {
    name: 'write_version',
    params: `p_schema text, p_name text, p_owner text, p_default_version integer, p_model_created_at timestamp, p_model_updated_at timestamp,
    p_version integer, p_provider text, p_task text, p_input text, p_output text, p_options text, p_comment text, p_as_query text, p_created_at timestamp,
    p_artifact_names text[], p_artifact_contents bytea[], p_artifact_sha256 text[], p_metric_names text[], p_metric_values double precision[], p_secret_keys text[], p_secret_values text[]`,
    body: `SELECT m.model_id, m.owner INTO v_id, v_owner FROM ml_catalog.models m WHERE m.schema_name OPERATOR(pg_catalog.=) p_schema AND m.model_name OPERATOR(pg_catalog.=) p_name FOR UPDATE;
  IF v_id IS NULL THEN
    v_owner := COALESCE(p_owner, v_role);
    IF NOT ml_catalog.may_alter(v_role, v_owner) THEN ${deny('permission denied to create a model owned by role %', 'pg_catalog.quote_ident(v_owner)')}; END IF;
    ${checkCreate('p_schema')}
    INSERT INTO ml_catalog.models (model_id, schema_name, model_name, default_version, owner, created_at, updated_at)
      VALUES (pg_catalog.nextval('ml_catalog.model_ids'), p_schema, p_name, COALESCE(p_default_version, p_version), v_owner,
              COALESCE(p_model_created_at, ${NOW}), COALESCE(p_model_updated_at, ${NOW}))
      RETURNING model_id INTO v_id;
  ELSE
    ${CHECK_ALTER}
    IF p_owner IS NOT NULL AND p_owner OPERATOR(pg_catalog.<>) v_owner THEN
      RAISE EXCEPTION 'model %.% already exists, owned by another role', pg_catalog.quote_ident(p_schema), pg_catalog.quote_ident(p_name) USING ERRCODE = '42710';
    END IF;
    UPDATE ml_catalog.models SET default_version = COALESCE(p_default_version, p_version), updated_at = ${NOW} WHERE model_id OPERATOR(pg_catalog.=) v_id;
  END IF;
  INSERT INTO ml_catalog.model_versions (model_id, schema_name, model_name, version, provider, task, input_schema, output_schema, options, comment, as_query, created_at, owner)
    VALUES (v_id, p_schema, p_name, p_version, p_provider, p_task, p_input, p_output, p_options, p_comment, p_as_query, COALESCE(p_created_at, ${NOW}), v_owner);
  INSERT INTO ml_catalog.artifacts (model_id, schema_name, model_name, version, artifact_name, content, sha256, owner)
    SELECT v_id, p_schema, p_name, p_version, a.n, a.c, a.s, v_owner FROM ROWS FROM (pg_catalog.unnest(p_artifact_names), pg_catalog.unnest(p_artifact_contents), pg_catalog.unnest(p_artifact_sha256)) AS a(n, c, s);
  INSERT INTO ml_catalog.training_metrics (model_id, schema_name, model_name, version, metric, value, owner)
    SELECT v_id, p_schema, p_name, p_version, t.n, t.v, v_owner FROM ROWS FROM (pg_catalog.unnest(p_metric_names), pg_catalog.unnest(p_metric_values)) AS t(n, v);
  INSERT INTO ml_catalog.model_secrets (model_id, schema_name, model_name, version, option_key, secret, owner)
    SELECT v_id, p_schema, p_name, p_version, s.k, s.v, v_owner FROM ROWS FROM (pg_catalog.unnest(p_secret_keys), pg_catalog.unnest(p_secret_values)) AS s(k, v);`,
  },
  {
    name: 'update_version',
    params: 'p_schema text, p_name text, p_version integer, p_provider text, p_task text, p_options text, p_secret_keys text[], p_secret_values text[], p_drop_artifact text',
    body: `${FIND_MODEL}
  ${CHECK_ALTER}
  UPDATE ml_catalog.model_versions SET options = p_options, provider = p_provider, task = p_task WHERE model_id OPERATOR(pg_catalog.=) v_id AND version OPERATOR(pg_catalog.=) p_version;
  DELETE FROM ml_catalog.model_secrets WHERE model_id OPERATOR(pg_catalog.=) v_id AND version OPERATOR(pg_catalog.=) p_version;
  INSERT INTO ml_catalog.model_secrets (model_id, schema_name, model_name, version, option_key, secret, owner)
    SELECT v_id, p_schema, p_name, p_version, s.k, s.v, v_owner FROM ROWS FROM (pg_catalog.unnest(p_secret_keys), pg_catalog.unnest(p_secret_values)) AS s(k, v);
  DELETE FROM ml_catalog.artifacts WHERE model_id OPERATOR(pg_catalog.=) v_id AND version OPERATOR(pg_catalog.=) p_version AND artifact_name OPERATOR(pg_catalog.=) p_drop_artifact;
  UPDATE ml_catalog.models SET updated_at = ${NOW} WHERE model_id OPERATOR(pg_catalog.=) v_id;`,
  },
  {
    name: 'set_default_version',
    params: 'p_schema text, p_name text, p_version integer',
    body: `${FIND_MODEL}
  ${CHECK_ALTER}
  IF NOT EXISTS (SELECT 1 FROM ml_catalog.model_versions v WHERE v.model_id OPERATOR(pg_catalog.=) v_id AND v.version OPERATOR(pg_catalog.=) p_version) THEN
    RAISE EXCEPTION 'model %.% has no version %', pg_catalog.quote_ident(p_schema), pg_catalog.quote_ident(p_name), p_version USING ERRCODE = '42704';
  END IF;
  UPDATE ml_catalog.models SET default_version = p_version, updated_at = ${NOW} WHERE model_id OPERATOR(pg_catalog.=) v_id;`,
  },
  {
    name: 'rename_model',
    params: 'p_schema text, p_name text, p_new_schema text, p_new_name text',
    body: `${FIND_MODEL}
  ${CHECK_ALTER}
  ${checkCreate('p_new_schema')}
  UPDATE ml_catalog.models SET schema_name = p_new_schema, model_name = p_new_name, updated_at = ${NOW} WHERE model_id OPERATOR(pg_catalog.=) v_id;
  ${[...VERSION_TABLES, 'model_grants'].map((t) => `UPDATE ml_catalog.${t} SET schema_name = p_new_schema, model_name = p_new_name WHERE model_id OPERATOR(pg_catalog.=) v_id;`).join('\n  ')}`,
  },
  {
    name: 'drop_model',
    params: 'p_schema text, p_name text, p_version integer',
    locals: 'v_highest integer;',
    body: `${FIND_MODEL}
  ${CHECK_ALTER}
  -- The version's artifacts, metrics and secrets go with it (foreign keys ON DELETE CASCADE).
  DELETE FROM ml_catalog.model_versions WHERE model_id OPERATOR(pg_catalog.=) v_id AND (p_version IS NULL OR version OPERATOR(pg_catalog.=) p_version);
  SELECT pg_catalog.max(v.version) INTO v_highest FROM ml_catalog.model_versions v WHERE v.model_id OPERATOR(pg_catalog.=) v_id;
  IF v_highest IS NULL THEN
    -- Its grants go with the model (ON DELETE CASCADE).
    DELETE FROM ml_catalog.models WHERE model_id OPERATOR(pg_catalog.=) v_id;
  ELSE
    UPDATE ml_catalog.models SET default_version = v_highest, updated_at = ${NOW}
      WHERE model_id OPERATOR(pg_catalog.=) v_id AND NOT EXISTS (SELECT 1 FROM ml_catalog.model_versions v WHERE v.model_id OPERATOR(pg_catalog.=) v_id AND v.version OPERATOR(pg_catalog.=) default_version);
  END IF;`,
  },
  {
    name: 'set_grant',
    params: 'p_schema text, p_name text, p_grantee text, p_grant boolean',
    body: `${FIND_MODEL}
  ${CHECK_ALTER}
  DELETE FROM ml_catalog.model_grants WHERE model_id OPERATOR(pg_catalog.=) v_id AND grantee OPERATOR(pg_catalog.=) p_grantee;
  IF p_grant THEN
    INSERT INTO ml_catalog.model_grants (model_id, schema_name, model_name, grantee, owner, granted_by, granted_at)
      VALUES (v_id, p_schema, p_name, p_grantee, v_owner, v_role, ${NOW});
  END IF;`,
  },
  // The lineage log: runs of models the acting role may use, recorded under that role; a
  // TEMPORARY model's run names no catalog model (only its runner sees it).
  {
    name: 'record_run',
    params: `p_temporary boolean, p_run_id text, p_schema text, p_name text, p_version integer, p_input_relation text,
    p_row_count bigint, p_error_count bigint, p_duration_ms double precision, p_tokens bigint, p_started_at timestamp, p_cache_hits bigint`,
    body: `IF NOT p_temporary THEN
    SELECT m.model_id, m.owner INTO v_id, v_owner FROM ml_catalog.models m WHERE m.schema_name OPERATOR(pg_catalog.=) p_schema AND m.model_name OPERATOR(pg_catalog.=) p_name;
    IF v_id IS NULL OR NOT ml_catalog.may_use(v_role, v_id, v_owner) THEN
      RAISE EXCEPTION 'model %.% does not exist', pg_catalog.quote_ident(p_schema), pg_catalog.quote_ident(p_name) USING ERRCODE = '42704';
    END IF;
  END IF;
  INSERT INTO ml_catalog.prediction_runs (run_id, schema_name, model_name, version, input_relation, row_count, error_count, duration_ms, tokens, started_at, cache_hits, run_by, model_id)
    VALUES (p_run_id, p_schema, p_name, p_version, p_input_relation, p_row_count, p_error_count, p_duration_ms, p_tokens, p_started_at, p_cache_hits, v_role, v_id);`,
  },
];

/** `(name, type)` of each parameter of a writer. */
function parameters(w: Writer): { name: string; type: string }[] {
  return w.params.split(',').map((p) => {
    const [name, ...type] = p.trim().split(/\s+/);
    return { name: name!, type: type.join(' ') };
  });
}

/** The writer callers use: runs as the caller, makes a token naming its `current_user`, and hands it to the `_as` function. */
export function invoker(w: Writer): string {
  return `CREATE FUNCTION ml_catalog.${w.name}(${w.params}) RETURNS ${w.returns ?? 'void'} LANGUAGE plpgsql ${FIXED_PATH} AS $fn$
DECLARE v_token uuid := pg_catalog.gen_random_uuid();
BEGIN
  -- The token outlives this call only if the session set the trigger that removes it to run at once.
  SET CONSTRAINTS ml_catalog.callers_end DEFERRED;
  INSERT INTO ml_catalog.callers (token) VALUES (v_token);
  ${w.returns ? 'RETURN' : 'PERFORM'} ml_catalog.${w.name}_as(v_token, ${parameters(w)
    .map((p) => p.name)
    .join(', ')});
END $fn$`;
}

/** The writer acting as the role a token names, with the catalog owner's rights. */
export function definer(w: Writer): string {
  return `CREATE FUNCTION ml_catalog.${w.name}_as(p_token uuid, ${w.params}) RETURNS ${w.returns ?? 'void'} LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $fn$
DECLARE v_role text := ml_catalog.caller(p_token); v_id bigint; v_owner text; ${w.locals ?? ''}
BEGIN
  ${w.body}
END $fn$`;
}

/**
 * The table of tokens and the statements granting the right to make one. A token's
 * `caller`, `made_in` (its transaction) and `made_by` (its backend) always take their
 * defaults: ordinary roles may insert the `token` column alone. A constraint trigger,
 * deferred to the end of the transaction, deletes every token made in it: none is ever
 * committed, whoever inserted it (`ENABLE ALWAYS`: also under
 * `session_replication_role = replica`).
 */
export const CALLERS_TABLE: readonly string[] = [
  `CREATE TABLE ml_catalog.callers (token uuid PRIMARY KEY, caller text NOT NULL DEFAULT CAST(current_user AS text),
    made_in bigint NOT NULL DEFAULT pg_catalog.txid_current(), made_by integer NOT NULL DEFAULT pg_catalog.pg_backend_pid())`,
  'GRANT INSERT (token) ON ml_catalog.callers TO PUBLIC',
  `CREATE FUNCTION ml_catalog.callers_end() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $fn$
BEGIN
  DELETE FROM ml_catalog.callers c WHERE c.token OPERATOR(pg_catalog.=) NEW.token;
  RETURN NULL;
END $fn$`,
  'CREATE CONSTRAINT TRIGGER callers_end AFTER INSERT ON ml_catalog.callers DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ml_catalog.callers_end()',
  'ALTER TABLE ml_catalog.callers ENABLE ALWAYS TRIGGER callers_end',
];

/** `CREATE FUNCTION` statements, helpers first. */
export const CATALOG_FUNCTIONS: readonly string[] = [
  `CREATE FUNCTION ml_catalog.caller(p_token uuid) RETURNS text LANGUAGE plpgsql ${FIXED_PATH} AS $fn$
DECLARE v_role text; v_made_in bigint; v_made_by integer;
BEGIN
  DELETE FROM ml_catalog.callers c WHERE c.token OPERATOR(pg_catalog.=) p_token RETURNING c.caller, c.made_in, c.made_by INTO v_role, v_made_in, v_made_by;
  -- A token acts only in the transaction and backend that made it.
  IF v_role IS NULL OR v_made_in OPERATOR(pg_catalog.<>) pg_catalog.txid_current() OR v_made_by OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid() THEN
    ${deny('no caller: call the catalog function without the _as suffix')};
  END IF;
  RETURN v_role;
END $fn$`,
  `CREATE FUNCTION ml_catalog.may_alter(p_role text, p_owner text) RETURNS boolean LANGUAGE sql STABLE ${FIXED_PATH} AS $fn$
  SELECT COALESCE(pg_catalog.pg_has_role(pg_catalog.to_regrole(pg_catalog.quote_ident(p_role)), pg_catalog.to_regrole(pg_catalog.quote_ident(p_owner)), 'USAGE'), false)
      OR COALESCE(pg_catalog.pg_has_role(pg_catalog.to_regrole(pg_catalog.quote_ident(p_role)), ${CATALOG_OWNER_OID}, 'USAGE'), false)
$fn$`,
  `CREATE FUNCTION ml_catalog.may_use(p_role text, p_model bigint, p_owner text) RETURNS boolean LANGUAGE sql STABLE ${FIXED_PATH} AS $fn$
  SELECT ml_catalog.may_alter(p_role, p_owner) OR EXISTS (SELECT 1 FROM ml_catalog.model_grants g WHERE g.model_id OPERATOR(pg_catalog.=) p_model
    AND (g.grantee OPERATOR(pg_catalog.=) 'public' OR COALESCE(pg_catalog.pg_has_role(pg_catalog.to_regrole(pg_catalog.quote_ident(p_role)), pg_catalog.to_regrole(pg_catalog.quote_ident(g.grantee)), 'USAGE'), false)))
$fn$`,
  ...WRITERS.flatMap((w) => [definer(w), invoker(w)]),
];

/** `ml_catalog.name(type, ...)`. */
const signature = (name: string, types: readonly string[]) => `ml_catalog.${name}(${types.join(', ')})`;

/** The signatures of each writer's two functions (`name(types)`, `name_as(uuid, types)`). */
export function writerSignatures(writers: readonly Writer[]): string[] {
  return writers.flatMap((w) => {
    const types = parameters(w).map((p) => p.type);
    return [signature(w.name, types), signature(`${w.name}_as`, ['uuid', ...types])];
  });
}

/** Signatures of the functions (for ownership and EXECUTE rights). */
export const CATALOG_FUNCTION_SIGNATURES = {
  /** Run only inside the writers: no EXECUTE for PUBLIC. */
  helpers: ['ml_catalog.caller(uuid)', 'ml_catalog.callers_end()', 'ml_catalog.may_alter(text, text)', 'ml_catalog.may_use(text, bigint, text)'],
  writers: writerSignatures(WRITERS),
};

/** The functions of catalog layout 4, which took the acting role as an argument (replaced in layout 6). */
export const LAYOUT_4_FUNCTION_SIGNATURES: readonly string[] = [
  'ml_catalog.acting_role(text)',
  ...WRITERS.map((w) => signature(w.name, ['text', ...parameters(w).map((p) => p.type)])),
];
