/**
 * The functions through which every role writes the model catalog on Postgres (catalog
 * layout 4). As Postgres's own catalogs are not writable by users, ordinary roles have no
 * INSERT, UPDATE or DELETE on the `ml_catalog` tables; these functions are
 * `SECURITY DEFINER` (https://www.postgresql.org/docs/current/sql-createfunction.html#SQL-CREATEFUNCTION-SECURITY),
 * owned by the catalog owner, with `search_path = pg_catalog, pg_temp` and every name
 * qualified, so a caller's objects never stand in for ours. Each checks the rights of the
 * role acting (see `acting_role`) and writes one whole change.
 *
 * The acting role: a `SECURITY DEFINER` function sees the definer as `current_user`, so
 * the caller passes its own `current_user` as the first argument, and `acting_role`
 * accepts it only when it is the session's login role (`session_user`) or a role that one
 * is a member of: a caller can act only as a role it could `SET ROLE` to anyway.
 *
 * Rights (the same as the read policies of catalog-security.ts): a role may change a model
 * when it is a member of the model's owner or of the catalog owner (superusers are members
 * of every role); a new model needs CREATE on its schema too, as a table would; a role may
 * use a model when it may change it or a grant names one of its roles or PUBLIC.
 */

/** The role owning the catalog (the owner of `ml_catalog.models`), as an oid. */
const CATALOG_OWNER_OID = `(SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = 'ml_catalog.models'::pg_catalog.regclass)`;

/** Options every function has. */
const DEFINER = 'SECURITY DEFINER SET search_path = pg_catalog, pg_temp';
const HELPER = 'SET search_path = pg_catalog, pg_temp';

/** Raises 42501 with a message (`%` placeholders filled by `args`). */
const deny = (message: string, ...args: string[]) => `RAISE EXCEPTION '${message}'${args.map((a) => `, ${a}`).join('')} USING ERRCODE = '42501'`;

/** The model's id and owner into `v_id` and `v_owner`, locked, or 42704 when there is none. */
const FIND_MODEL = `SELECT m.model_id, m.owner INTO v_id, v_owner FROM ml_catalog.models m WHERE m.schema_name = p_schema AND m.model_name = p_name FOR UPDATE;
  IF v_id IS NULL THEN RAISE EXCEPTION 'model %.% does not exist', pg_catalog.quote_ident(p_schema), pg_catalog.quote_ident(p_name) USING ERRCODE = '42704'; END IF;`;

/** 42501 unless `v_role` may change the model found by {@link FIND_MODEL}. */
const CHECK_ALTER = `IF NOT ml_catalog.may_alter(v_role, v_owner) THEN ${deny('must be owner of model %.%', 'pg_catalog.quote_ident(p_schema)', 'pg_catalog.quote_ident(p_name)')}; END IF;`;

/** 42501 unless `v_role` may create a model in `schema` (an expression). */
const checkCreate = (schema: string) =>
  `IF NOT (pg_catalog.has_schema_privilege(pg_catalog.to_regrole(pg_catalog.quote_ident(v_role)), ${schema}, 'CREATE') OR pg_catalog.pg_has_role(pg_catalog.to_regrole(pg_catalog.quote_ident(v_role)), ${CATALOG_OWNER_OID}, 'MEMBER')) THEN ${deny('permission denied for schema %: a model needs CREATE on its schema', `pg_catalog.quote_ident(${schema})`)}; END IF;`;

/** The `DECLARE` of a function acting for `p_role` on one model. */
const ACTING = `DECLARE v_role text := ml_catalog.acting_role(p_role); v_id bigint; v_owner text;`;

/** Tables keyed by (model id, version). */
const VERSION_TABLES = ['model_versions', 'artifacts', 'training_metrics', 'model_secrets'] as const;

/** `CREATE FUNCTION` statements, helpers first. */
export const CATALOG_FUNCTIONS: readonly string[] = [
  `CREATE FUNCTION ml_catalog.acting_role(p_role text) RETURNS text LANGUAGE plpgsql STABLE ${HELPER} AS $fn$
BEGIN
  IF p_role IS NULL OR pg_catalog.to_regrole(pg_catalog.quote_ident(p_role)) IS NULL
     OR NOT (p_role OPERATOR(pg_catalog.=) CAST(session_user AS text) OR pg_catalog.pg_has_role(session_user, pg_catalog.to_regrole(pg_catalog.quote_ident(p_role)), 'MEMBER')) THEN
    ${deny('role % is neither the session role nor one of its roles', 'pg_catalog.quote_ident(p_role)')};
  END IF;
  RETURN p_role;
END $fn$`,
  `CREATE FUNCTION ml_catalog.may_alter(p_role text, p_owner text) RETURNS boolean LANGUAGE sql STABLE ${HELPER} AS $fn$
  SELECT COALESCE(pg_catalog.pg_has_role(pg_catalog.to_regrole(pg_catalog.quote_ident(p_role)), pg_catalog.to_regrole(pg_catalog.quote_ident(p_owner)), 'MEMBER'), false)
      OR COALESCE(pg_catalog.pg_has_role(pg_catalog.to_regrole(pg_catalog.quote_ident(p_role)), ${CATALOG_OWNER_OID}, 'MEMBER'), false)
$fn$`,
  `CREATE FUNCTION ml_catalog.may_use(p_role text, p_model bigint, p_owner text) RETURNS boolean LANGUAGE sql STABLE ${HELPER} AS $fn$
  SELECT ml_catalog.may_alter(p_role, p_owner) OR EXISTS (SELECT 1 FROM ml_catalog.model_grants g WHERE g.model_id OPERATOR(pg_catalog.=) p_model
    AND (g.grantee OPERATOR(pg_catalog.=) 'public' OR COALESCE(pg_catalog.pg_has_role(pg_catalog.to_regrole(pg_catalog.quote_ident(p_role)), pg_catalog.to_regrole(pg_catalog.quote_ident(g.grantee)), 'MEMBER'), false)))
$fn$`,
  `CREATE FUNCTION ml_catalog.write_version(p_role text, p_schema text, p_name text, p_owner text, p_default_version integer, p_model_created_at timestamp, p_model_updated_at timestamp,
    p_version integer, p_provider text, p_task text, p_input text, p_output text, p_options text, p_comment text, p_as_query text, p_created_at timestamp,
    p_artifact_names text[], p_artifact_contents bytea[], p_artifact_sha256 text[], p_metric_names text[], p_metric_values double precision[], p_secret_keys text[], p_secret_values text[])
  RETURNS void LANGUAGE plpgsql ${DEFINER} AS $fn$
${ACTING}
BEGIN
  SELECT m.model_id, m.owner INTO v_id, v_owner FROM ml_catalog.models m WHERE m.schema_name = p_schema AND m.model_name = p_name FOR UPDATE;
  IF v_id IS NULL THEN
    v_owner := COALESCE(p_owner, v_role);
    IF NOT ml_catalog.may_alter(v_role, v_owner) THEN ${deny('permission denied to create a model owned by role %', 'pg_catalog.quote_ident(v_owner)')}; END IF;
    ${checkCreate('p_schema')}
    INSERT INTO ml_catalog.models (model_id, schema_name, model_name, default_version, owner, created_at, updated_at)
      VALUES (pg_catalog.nextval('ml_catalog.model_ids'), p_schema, p_name, COALESCE(p_default_version, p_version), v_owner,
              COALESCE(p_model_created_at, CAST(pg_catalog.now() AS timestamp)), COALESCE(p_model_updated_at, CAST(pg_catalog.now() AS timestamp)))
      RETURNING model_id INTO v_id;
  ELSE
    ${CHECK_ALTER}
    IF p_owner IS NOT NULL AND p_owner <> v_owner THEN
      RAISE EXCEPTION 'model %.% already exists, owned by another role', pg_catalog.quote_ident(p_schema), pg_catalog.quote_ident(p_name) USING ERRCODE = '42710';
    END IF;
    UPDATE ml_catalog.models SET default_version = COALESCE(p_default_version, p_version), updated_at = CAST(pg_catalog.now() AS timestamp) WHERE model_id = v_id;
  END IF;
  INSERT INTO ml_catalog.model_versions (model_id, schema_name, model_name, version, provider, task, input_schema, output_schema, options, comment, as_query, created_at, owner)
    VALUES (v_id, p_schema, p_name, p_version, p_provider, p_task, p_input, p_output, p_options, p_comment, p_as_query, COALESCE(p_created_at, CAST(pg_catalog.now() AS timestamp)), v_owner);
  INSERT INTO ml_catalog.artifacts (model_id, schema_name, model_name, version, artifact_name, content, sha256, owner)
    SELECT v_id, p_schema, p_name, p_version, a.n, a.c, a.s, v_owner FROM ROWS FROM (pg_catalog.unnest(p_artifact_names), pg_catalog.unnest(p_artifact_contents), pg_catalog.unnest(p_artifact_sha256)) AS a(n, c, s);
  INSERT INTO ml_catalog.training_metrics (model_id, schema_name, model_name, version, metric, value, owner)
    SELECT v_id, p_schema, p_name, p_version, t.n, t.v, v_owner FROM ROWS FROM (pg_catalog.unnest(p_metric_names), pg_catalog.unnest(p_metric_values)) AS t(n, v);
  INSERT INTO ml_catalog.model_secrets (model_id, schema_name, model_name, version, option_key, secret, owner)
    SELECT v_id, p_schema, p_name, p_version, s.k, s.v, v_owner FROM ROWS FROM (pg_catalog.unnest(p_secret_keys), pg_catalog.unnest(p_secret_values)) AS s(k, v);
END $fn$`,
  `CREATE FUNCTION ml_catalog.update_version(p_role text, p_schema text, p_name text, p_version integer, p_provider text, p_task text, p_options text,
    p_secret_keys text[], p_secret_values text[], p_drop_artifact text)
  RETURNS void LANGUAGE plpgsql ${DEFINER} AS $fn$
${ACTING}
BEGIN
  ${FIND_MODEL}
  ${CHECK_ALTER}
  UPDATE ml_catalog.model_versions SET options = p_options, provider = p_provider, task = p_task WHERE model_id = v_id AND version = p_version;
  DELETE FROM ml_catalog.model_secrets WHERE model_id = v_id AND version = p_version;
  INSERT INTO ml_catalog.model_secrets (model_id, schema_name, model_name, version, option_key, secret, owner)
    SELECT v_id, p_schema, p_name, p_version, s.k, s.v, v_owner FROM ROWS FROM (pg_catalog.unnest(p_secret_keys), pg_catalog.unnest(p_secret_values)) AS s(k, v);
  DELETE FROM ml_catalog.artifacts WHERE model_id = v_id AND version = p_version AND artifact_name = p_drop_artifact;
  UPDATE ml_catalog.models SET updated_at = CAST(pg_catalog.now() AS timestamp) WHERE model_id = v_id;
END $fn$`,
  `CREATE FUNCTION ml_catalog.set_default_version(p_role text, p_schema text, p_name text, p_version integer)
  RETURNS void LANGUAGE plpgsql ${DEFINER} AS $fn$
${ACTING}
BEGIN
  ${FIND_MODEL}
  ${CHECK_ALTER}
  IF NOT EXISTS (SELECT 1 FROM ml_catalog.model_versions v WHERE v.model_id = v_id AND v.version = p_version) THEN
    RAISE EXCEPTION 'model %.% has no version %', pg_catalog.quote_ident(p_schema), pg_catalog.quote_ident(p_name), p_version USING ERRCODE = '42704';
  END IF;
  UPDATE ml_catalog.models SET default_version = p_version, updated_at = CAST(pg_catalog.now() AS timestamp) WHERE model_id = v_id;
END $fn$`,
  `CREATE FUNCTION ml_catalog.rename_model(p_role text, p_schema text, p_name text, p_new_schema text, p_new_name text)
  RETURNS void LANGUAGE plpgsql ${DEFINER} AS $fn$
${ACTING}
BEGIN
  ${FIND_MODEL}
  ${CHECK_ALTER}
  ${checkCreate('p_new_schema')}
  UPDATE ml_catalog.models SET schema_name = p_new_schema, model_name = p_new_name, updated_at = CAST(pg_catalog.now() AS timestamp) WHERE model_id = v_id;
  ${[...VERSION_TABLES, 'model_grants'].map((t) => `UPDATE ml_catalog.${t} SET schema_name = p_new_schema, model_name = p_new_name WHERE model_id = v_id;`).join('\n  ')}
END $fn$`,
  `CREATE FUNCTION ml_catalog.drop_model(p_role text, p_schema text, p_name text, p_version integer)
  RETURNS void LANGUAGE plpgsql ${DEFINER} AS $fn$
${ACTING}
  v_highest integer;
BEGIN
  ${FIND_MODEL}
  ${CHECK_ALTER}
  -- The version's artifacts, metrics and secrets go with it (foreign keys ON DELETE CASCADE).
  DELETE FROM ml_catalog.model_versions WHERE model_id = v_id AND (p_version IS NULL OR version = p_version);
  SELECT max(v.version) INTO v_highest FROM ml_catalog.model_versions v WHERE v.model_id = v_id;
  IF v_highest IS NULL THEN
    -- Its grants go with the model (ON DELETE CASCADE).
    DELETE FROM ml_catalog.models WHERE model_id = v_id;
  ELSE
    UPDATE ml_catalog.models SET default_version = v_highest, updated_at = CAST(pg_catalog.now() AS timestamp)
      WHERE model_id = v_id AND NOT EXISTS (SELECT 1 FROM ml_catalog.model_versions v WHERE v.model_id = v_id AND v.version = default_version);
  END IF;
END $fn$`,
  `CREATE FUNCTION ml_catalog.set_grant(p_role text, p_schema text, p_name text, p_grantee text, p_grant boolean)
  RETURNS void LANGUAGE plpgsql ${DEFINER} AS $fn$
${ACTING}
BEGIN
  ${FIND_MODEL}
  ${CHECK_ALTER}
  DELETE FROM ml_catalog.model_grants WHERE model_id = v_id AND grantee = p_grantee;
  IF p_grant THEN
    INSERT INTO ml_catalog.model_grants (model_id, schema_name, model_name, grantee, owner, granted_by, granted_at)
      VALUES (v_id, p_schema, p_name, p_grantee, v_owner, v_role, CAST(pg_catalog.now() AS timestamp));
  END IF;
END $fn$`,
  // The lineage log: runs of models the acting role may use, recorded under the session's
  // login role; a TEMPORARY model's run names no catalog model (only its runner sees it).
  `CREATE FUNCTION ml_catalog.record_run(p_role text, p_temporary boolean, p_run_id text, p_schema text, p_name text, p_version integer, p_input_relation text,
    p_row_count bigint, p_error_count bigint, p_duration_ms double precision, p_tokens bigint, p_started_at timestamp, p_cache_hits bigint)
  RETURNS void LANGUAGE plpgsql ${DEFINER} AS $fn$
${ACTING}
BEGIN
  IF NOT p_temporary THEN
    SELECT m.model_id, m.owner INTO v_id, v_owner FROM ml_catalog.models m WHERE m.schema_name = p_schema AND m.model_name = p_name;
    IF v_id IS NULL OR NOT ml_catalog.may_use(v_role, v_id, v_owner) THEN
      RAISE EXCEPTION 'model %.% does not exist', pg_catalog.quote_ident(p_schema), pg_catalog.quote_ident(p_name) USING ERRCODE = '42704';
    END IF;
  END IF;
  INSERT INTO ml_catalog.prediction_runs (run_id, schema_name, model_name, version, input_relation, row_count, error_count, duration_ms, tokens, started_at, cache_hits, run_by, model_id)
    VALUES (p_run_id, p_schema, p_name, p_version, p_input_relation, p_row_count, p_error_count, p_duration_ms, p_tokens, p_started_at, p_cache_hits, CAST(session_user AS text), v_id);
END $fn$`,
];

/** Signatures of the functions (for ownership and EXECUTE rights). */
export const CATALOG_FUNCTION_SIGNATURES = {
  helpers: ['ml_catalog.acting_role(text)', 'ml_catalog.may_alter(text, text)', 'ml_catalog.may_use(text, bigint, text)'],
  writers: [
    'ml_catalog.write_version(text, text, text, text, integer, timestamp, timestamp, integer, text, text, text, text, text, text, text, timestamp, text[], bytea[], text[], text[], double precision[], text[], text[])',
    'ml_catalog.update_version(text, text, text, integer, text, text, text, text[], text[], text)',
    'ml_catalog.set_default_version(text, text, text, integer)',
    'ml_catalog.rename_model(text, text, text, text, text)',
    'ml_catalog.drop_model(text, text, text, integer)',
    'ml_catalog.set_grant(text, text, text, text, boolean)',
    'ml_catalog.record_run(text, boolean, text, text, text, integer, text, bigint, bigint, double precision, bigint, timestamp, bigint)',
  ],
} as const;
