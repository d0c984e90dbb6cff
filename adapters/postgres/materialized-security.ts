/**
 * Materialized tables on Postgres held to the rules of models (catalog layout 7, SPEC §5,
 * docs/security.md "Materialized tables"):
 *
 * - No ordinary role writes `ml_catalog.materialized_tables` or a table's private objects
 *   (`mt_<id>_state`, `mt_<id>_changes`) with plain SQL: every change is a call of a
 *   function below, through the caller tokens of catalog-functions.ts (the invoker makes a
 *   token naming its `current_user`, the `SECURITY DEFINER` `_as` function, owned by the
 *   catalog owner, acts as that role), with `search_path = pg_catalog, pg_temp` and every
 *   name qualified.
 * - Rights: a role may change (alter, suspend, resume, refresh, drop) a materialized table
 *   when it has the privileges of the table's owner or of the catalog owner (as for a
 *   model); creating one needs CREATE on its schema, SELECT on its source and the use of
 *   its model. A table a role may not change is, to it, a table that does not exist (42P01).
 * - Reads: row-level security shows a role the rows of the tables it may change.
 * - The private objects belong to the catalog owner; the table's owner gets the rights its
 *   refreshes need (state: read and write; changes: read and delete), no other role any.
 * - Change capture: the trigger function belongs to the catalog owner (`SECURITY DEFINER`,
 *   so that every role writing the source records its changes), is executable by the
 *   table's owner alone (who creates the triggers, with its TRIGGER right on the source),
 *   and refuses to run for any table but the source (its oid is written into it): no role
 *   can attach it to a table of its own to plant change records.
 */
import { deny, definer, FIXED_PATH, invoker, writerSignatures, type Writer } from './catalog-functions.js';

/** The row of `p_id` into `v_owner` and the source into `v_source_schema`, `v_source_table`, locked; 42P01 when there is none or the acting role may not change it. */
const FIND_TABLE = `SELECT t.owner, t.source_schema, t.source_table INTO v_owner, v_source_schema, v_source_table FROM ml_catalog.materialized_tables t WHERE t.table_id OPERATOR(pg_catalog.=) p_id FOR UPDATE;
  IF v_owner IS NULL OR NOT ml_catalog.may_alter(v_role, v_owner) THEN
    RAISE EXCEPTION 'materialized table % does not exist', p_id USING ERRCODE = '42P01';
  END IF;`;

/** Locals of every writer here. */
const LOCALS = 'v_source_schema text; v_source_table text; v_oid oid; v_new bigint;';

/** `regrole` of the acting role. */
const ROLE = 'pg_catalog.to_regrole(pg_catalog.quote_ident(v_role))';

/** The oid of table `schema.name` into `v_oid` from the system catalogs (no schema USAGE needed to look). */
const findRelation = (schema: string, name: string) =>
  `SELECT c.oid INTO v_oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE n.nspname OPERATOR(pg_catalog.=) ${schema} AND c.relname OPERATOR(pg_catalog.=) ${name};`;

/** Ids are drawn at random below this (2^52: exact as a JavaScript number). */
const MAX_ID = 4503599627370496;

/**
 * Whether relation `oid` is a table (plain or partitioned) owned by the role `owner` (a
 * regrole expression): the only sources a materialized table reads, so that the only code
 * a refresh runs while reading (row-level security policies) is its owner's.
 */
const sourceOf = (oid: string, owner: string) =>
  `COALESCE((SELECT (c.relkind OPERATOR(pg_catalog.=) CAST('r' AS "char") OR c.relkind OPERATOR(pg_catalog.=) CAST('p' AS "char")) AND c.relowner OPERATOR(pg_catalog.=) ${owner}
     FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) ${oid}), false)`;

/** Drops the private objects of table `p_id` (the capture function with its triggers, CASCADE). */
const DROP_PRIVATE = `EXECUTE pg_catalog.format('DROP FUNCTION IF EXISTS ml_catalog.%I() CASCADE', 'mt_' || p_id || '_capture');
  EXECUTE pg_catalog.format('DROP VIEW IF EXISTS ml_catalog.%I', 'mt_' || p_id || '_source');
  EXECUTE pg_catalog.format('DROP TABLE IF EXISTS ml_catalog.%I, ml_catalog.%I', 'mt_' || p_id || '_changes', 'mt_' || p_id || '_state');`;

/** The owner's rights on the private objects of table `p_id` (and none for anyone else). */
const GRANTS_OF = (owner: string) => `EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION ml_catalog.%I() FROM PUBLIC', 'mt_' || p_id || '_capture');
  EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION ml_catalog.%I() TO %I', 'mt_' || p_id || '_capture', ${owner});
  EXECUTE pg_catalog.format('GRANT SELECT, INSERT, UPDATE, DELETE ON ml_catalog.%I TO %I', 'mt_' || p_id || '_state', ${owner});
  EXECUTE pg_catalog.format('GRANT SELECT, DELETE ON ml_catalog.%I TO %I', 'mt_' || p_id || '_changes', ${owner});`;
const GRANTS = GRANTS_OF('v_owner');

const WRITERS: readonly Writer[] = [
  {
    name: 'create_materialized',
    params: `p_schema text, p_name text, p_definition text, p_query text, p_mode text, p_freshness bigint, p_status text,
    p_source_schema text, p_source_table text, p_source_key text, p_model_schema text, p_model_name text, p_model_version integer, p_comment text`,
    returns: 'bigint',
    locals: LOCALS,
    body: `IF NOT pg_catalog.has_schema_privilege(${ROLE}, p_schema, 'CREATE') THEN ${deny('permission denied for schema %', 'pg_catalog.quote_ident(p_schema)')}; END IF;
  -- The result table exists (created before the row, in the caller's transaction) and is the acting role's own:
  -- one error whether there is no relation of that name or another role's.
  ${findRelation('p_schema', 'p_name')}
  IF v_oid IS NULL OR (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) v_oid) OPERATOR(pg_catalog.<>) ${ROLE} THEN
    ${deny('must be owner of table %.%', 'pg_catalog.quote_ident(p_schema)', 'pg_catalog.quote_ident(p_name)')};
  END IF;
  IF p_source_table IS NOT NULL THEN
    v_oid := NULL;
    ${findRelation('p_source_schema', 'p_source_table')}
    IF NOT ${sourceOf('v_oid', ROLE)} THEN
      ${deny('must be owner of table %.%: the source of a materialized table is a table its owner owns', 'pg_catalog.quote_ident(p_source_schema)', 'pg_catalog.quote_ident(p_source_table)')};
    END IF;
  END IF;
  IF p_model_name IS NOT NULL THEN
    SELECT m.model_id, m.owner INTO v_id, v_owner FROM ml_catalog.models m WHERE m.schema_name OPERATOR(pg_catalog.=) p_model_schema AND m.model_name OPERATOR(pg_catalog.=) p_model_name;
    IF v_id IS NULL OR NOT ml_catalog.may_use(v_role, v_id, v_owner) THEN
      RAISE EXCEPTION 'model %.% does not exist', pg_catalog.quote_ident(p_model_schema), pg_catalog.quote_ident(p_model_name) USING ERRCODE = '42704';
    END IF;
  END IF;
  -- A random id: it tells nothing of how many tables there are or were.
  LOOP
    v_new := CAST(pg_catalog.floor(pg_catalog.random() OPERATOR(pg_catalog.*) CAST(${MAX_ID} AS double precision)) AS bigint) OPERATOR(pg_catalog.+) CAST(1 AS bigint);
    EXIT WHEN NOT EXISTS (SELECT 1 FROM ml_catalog.materialized_tables t WHERE t.table_id OPERATOR(pg_catalog.=) v_new);
  END LOOP;
  INSERT INTO ml_catalog.materialized_tables (table_id, schema_name, table_name, definition, query, refresh_mode, freshness_seconds, status, source_schema, source_table, source_key,
      model_schema, model_name, model_version, comment, owner, created_at, updated_at, refresh_count, rows_refreshed, rows_predicted, rows_deleted, provider_rows, error_count)
    VALUES (v_new, p_schema, p_name, p_definition, p_query, p_mode, p_freshness, p_status, p_source_schema, p_source_table, p_source_key,
      p_model_schema, p_model_name, p_model_version, p_comment, v_role, CAST(pg_catalog.now() AS timestamp), CAST(pg_catalog.now() AS timestamp), 0, 0, 0, 0, 0, 0);
  RETURN v_new;`,
  },
  {
    name: 'alter_materialized',
    params: 'p_id bigint, p_status text, p_freshness bigint, p_mode text',
    locals: LOCALS,
    body: `${FIND_TABLE}
  UPDATE ml_catalog.materialized_tables SET status = COALESCE(p_status, status), freshness_seconds = COALESCE(p_freshness, freshness_seconds),
      refresh_mode = COALESCE(p_mode, refresh_mode), updated_at = CAST(pg_catalog.now() AS timestamp)
    WHERE table_id OPERATOR(pg_catalog.=) p_id;`,
  },
  {
    name: 'record_refresh',
    params: 'p_id bigint, p_at timestamp, p_ms double precision, p_lag double precision, p_refreshed bigint, p_predicted bigint, p_deleted bigint, p_provider bigint, p_version integer',
    locals: LOCALS,
    body: `${FIND_TABLE}
  UPDATE ml_catalog.materialized_tables SET last_refresh_at = p_at, last_refresh_ms = p_ms, last_lag_ms = p_lag, refresh_count = refresh_count OPERATOR(pg_catalog.+) CAST(1 AS bigint),
      rows_refreshed = rows_refreshed OPERATOR(pg_catalog.+) p_refreshed, rows_predicted = rows_predicted OPERATOR(pg_catalog.+) p_predicted,
      rows_deleted = rows_deleted OPERATOR(pg_catalog.+) p_deleted, provider_rows = provider_rows OPERATOR(pg_catalog.+) p_provider,
      model_version = COALESCE(p_version, model_version), last_error = NULL
    WHERE table_id OPERATOR(pg_catalog.=) p_id;`,
  },
  {
    name: 'record_refresh_error',
    params: 'p_id bigint, p_message text',
    locals: LOCALS,
    body: `${FIND_TABLE}
  UPDATE ml_catalog.materialized_tables SET error_count = error_count OPERATOR(pg_catalog.+) CAST(1 AS bigint), last_error = pg_catalog.left(p_message, 2000)
    WHERE table_id OPERATOR(pg_catalog.=) p_id;`,
  },
  {
    name: 'drop_materialized',
    params: 'p_id bigint',
    locals: LOCALS,
    body: `${FIND_TABLE}
  ${DROP_PRIVATE}
  DELETE FROM ml_catalog.materialized_tables WHERE table_id OPERATOR(pg_catalog.=) p_id;`,
  },
  // The refresh claim (catalog layout 8): a refresh spans several transactions (a remote
  // model's answers are committed as they come), so a row lock alone cannot keep two
  // refreshers apart for its length. The claim is taken under the row's lock (SKIP LOCKED:
  // a refresher never waits on another's transaction) and names the claiming backend (its
  // pid and login role, both in pg_stat_activity for every role); it ends with
  // release_refresh or with that backend. Only these functions write it, for a role that
  // may change the table: no other role can hold or block it.
  {
    name: 'claim_refresh',
    params: 'p_id bigint',
    returns: 'boolean',
    locals: `${LOCALS} v_pid integer; v_holder oid; v_locked boolean;`,
    body: `SELECT t.owner, t.source_schema, t.source_table, t.refresh_pid, t.refresh_role INTO v_owner, v_source_schema, v_source_table, v_pid, v_holder
    FROM ml_catalog.materialized_tables t WHERE t.table_id OPERATOR(pg_catalog.=) p_id FOR UPDATE SKIP LOCKED;
  v_locked := NOT FOUND;
  IF v_locked THEN
    SELECT t.owner INTO v_owner FROM ml_catalog.materialized_tables t WHERE t.table_id OPERATOR(pg_catalog.=) p_id;
  END IF;
  IF v_owner IS NULL OR NOT ml_catalog.may_alter(v_role, v_owner) THEN
    RAISE EXCEPTION 'materialized table % does not exist', p_id USING ERRCODE = '42P01';
  END IF;
  -- Another transaction is changing the row (a claim in a transaction block, an ALTER), or a live backend holds the claim: not now.
  IF v_locked OR (v_pid IS NOT NULL AND v_pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid()
     AND EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a WHERE a.pid OPERATOR(pg_catalog.=) v_pid AND a.usesysid OPERATOR(pg_catalog.=) v_holder)) THEN
    RETURN false;
  END IF;
  -- The source is still a table of the owner's.
  IF v_source_table IS NOT NULL THEN
    ${findRelation('v_source_schema', 'v_source_table')}
    IF NOT ${sourceOf('v_oid', 'pg_catalog.to_regrole(pg_catalog.quote_ident(v_owner))')} THEN
      RAISE EXCEPTION 'materialized table % is not refreshed: its source %.% is not a table owned by %', p_id, pg_catalog.quote_ident(v_source_schema), pg_catalog.quote_ident(v_source_table),
        pg_catalog.quote_ident(v_owner) USING ERRCODE = '42501';
    END IF;
  END IF;
  UPDATE ml_catalog.materialized_tables SET refresh_pid = pg_catalog.pg_backend_pid(), refresh_role = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) session_user)
    WHERE table_id OPERATOR(pg_catalog.=) p_id;
  RETURN true;`,
  },
  {
    name: 'release_refresh',
    params: 'p_id bigint',
    locals: LOCALS,
    body: `${FIND_TABLE}
  UPDATE ml_catalog.materialized_tables SET refresh_pid = NULL, refresh_role = NULL
    WHERE table_id OPERATOR(pg_catalog.=) p_id AND refresh_pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid();`,
  },
  // The state table (key columns typed as the source's, the two digests, the outputs) and
  // change capture of a CONTINUOUS table. Types are read from the system catalogs or parsed
  // as type names (regtype): nothing of the caller's text reaches the DDL unquoted.
  {
    name: 'install_capture',
    params: 'p_id bigint, p_keys text[], p_output_names text[], p_output_types text[], p_input_digest text, p_row_digest text',
    locals: `${LOCALS} v_keys text; v_columns text; v_outputs text;`,
    body: `${FIND_TABLE}
  ${findRelation('v_source_schema', 'v_source_table')}
  IF v_oid IS NULL OR NOT pg_catalog.has_table_privilege(${ROLE}, v_oid, 'SELECT') THEN
    ${deny('permission denied for table %.%', 'pg_catalog.quote_ident(v_source_schema)', 'pg_catalog.quote_ident(v_source_table)')};
  END IF;
  SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY k.n),
         pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.n), pg_catalog.count(*)
    INTO v_columns, v_keys, v_new
    FROM ROWS FROM (pg_catalog.unnest(p_keys)) WITH ORDINALITY AS k(name, n)
    JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) v_oid AND a.attname OPERATOR(pg_catalog.=) k.name AND NOT a.attisdropped;
  IF v_keys IS NULL OR v_new OPERATOR(pg_catalog.<>) pg_catalog.cardinality(p_keys) THEN
    RAISE EXCEPTION 'materialized table %: its source has no such key columns', p_id USING ERRCODE = '42703';
  END IF;
  SELECT pg_catalog.string_agg(pg_catalog.format('%I %s', o.name, pg_catalog.format_type(CAST(o.type AS pg_catalog.regtype), NULL)), ', ' ORDER BY o.n)
    INTO v_outputs FROM ROWS FROM (pg_catalog.unnest(p_output_names), pg_catalog.unnest(p_output_types)) WITH ORDINALITY AS o(name, type, n);
  EXECUTE pg_catalog.format('CREATE TABLE ml_catalog.%I (%s, %I text, %I text%s)', 'mt_' || p_id || '_state', v_columns, p_input_digest, p_row_digest,
    COALESCE(', ' || v_outputs, ''));
  EXECUTE pg_catalog.format('CREATE INDEX %I ON ml_catalog.%I (%s)', 'mt_' || p_id || '_state_key', 'mt_' || p_id || '_state', v_keys);
  EXECUTE pg_catalog.format('CREATE TABLE ml_catalog.%I (%s, seq bigserial, changed_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp())', 'mt_' || p_id || '_changes', v_columns);
  EXECUTE pg_catalog.format($body$CREATE FUNCTION ml_catalog.%I() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER ${FIXED_PATH} AS $capture$
BEGIN
  IF TG_RELID OPERATOR(pg_catalog.<>) CAST(%s AS pg_catalog.oid) THEN
    RAISE EXCEPTION 'this trigger function records the changes of one table only' USING ERRCODE = '42501';
  END IF;
  IF TG_ARGV[0] IN ('insert', 'update') THEN INSERT INTO ml_catalog.%I (%s) SELECT %s FROM new_rows; END IF;
  IF TG_ARGV[0] IN ('delete', 'update') THEN INSERT INTO ml_catalog.%I (%s) SELECT %s FROM old_rows; END IF;
  IF TG_ARGV[0] OPERATOR(pg_catalog.=) 'truncate' THEN INSERT INTO ml_catalog.%I (seq) VALUES (DEFAULT); END IF;
  PERFORM pg_catalog.pg_notify('modelsql_materialized', %L);
  RETURN NULL;
END $capture$$body$, 'mt_' || p_id || '_capture', v_oid, 'mt_' || p_id || '_changes', v_keys, v_keys, 'mt_' || p_id || '_changes', v_keys, v_keys,
    'mt_' || p_id || '_changes', CAST(p_id AS text));
  ${GRANTS}`,
  },
  {
    name: 'uninstall_capture',
    params: 'p_id bigint',
    locals: LOCALS,
    body: `${FIND_TABLE}
  ${DROP_PRIVATE}`,
  },
];

/** Signatures of the functions above (EXECUTE for PUBLIC; owned by the catalog owner). */
export const MATERIALIZED_FUNCTION_SIGNATURES: readonly string[] = writerSignatures(WRITERS);

/**
 * Layout 7 on Postgres. `mayAlter(owner)` is the read condition of catalog-security.ts (the
 * calling role has the privileges of `owner` or of the catalog owner); `catalogOwner` the
 * catalog owner's name as an expression.
 */
export function materializedLayout(mayAlter: (owner: string) => string, catalogOwner: string): string[] {
  return [
    // Ids from a sequence: a role sees only its own rows, so max(id) + 1 would collide.
    'CREATE SEQUENCE ml_catalog.materialized_ids',
    `SELECT pg_catalog.setval('ml_catalog.materialized_ids', COALESCE(pg_catalog.max(table_id), 0) OPERATOR(pg_catalog.+) 1, false) FROM ml_catalog.materialized_tables`,
    'ALTER TABLE ml_catalog.materialized_tables ADD CONSTRAINT materialized_tables_id PRIMARY KEY (table_id)',
    'CREATE UNIQUE INDEX materialized_tables_name ON ml_catalog.materialized_tables (schema_name, table_name)',
    // Every operator qualified and typed: a constraint keeps the operators it was created with.
    `ALTER TABLE ml_catalog.materialized_tables ADD CONSTRAINT materialized_tables_values CHECK (${[
      `(status OPERATOR(pg_catalog.=) CAST('ACTIVE' AS pg_catalog.text) OR status OPERATOR(pg_catalog.=) CAST('SUSPENDED' AS pg_catalog.text))`,
      `(refresh_mode OPERATOR(pg_catalog.=) CAST('CONTINUOUS' AS pg_catalog.text) OR refresh_mode OPERATOR(pg_catalog.=) CAST('FULL' AS pg_catalog.text))`,
      'freshness_seconds OPERATOR(pg_catalog.>=) CAST(1 AS pg_catalog.int8)',
      'freshness_seconds OPERATOR(pg_catalog.<=) CAST(31622400 AS pg_catalog.int8)',
      ...['rows_refreshed', 'rows_predicted', 'rows_deleted', 'provider_rows'].map((c) => `${c} OPERATOR(pg_catalog.>=) CAST(0 AS pg_catalog.int8)`),
    ].join(' AND ')})`,
    'ALTER TABLE ml_catalog.materialized_tables ENABLE ROW LEVEL SECURITY',
    `CREATE POLICY materialized_tables_use ON ml_catalog.materialized_tables FOR SELECT USING (${mayAlter('materialized_tables.owner')})`,
    'REVOKE ALL ON ml_catalog.materialized_tables FROM PUBLIC',
    'GRANT SELECT ON ml_catalog.materialized_tables TO PUBLIC',
    ...WRITERS.flatMap((w) => [definer(w), invoker(w)]),
    ...MATERIALIZED_FUNCTION_SIGNATURES.map((f) => `GRANT EXECUTE ON FUNCTION ${f} TO PUBLIC`),
    // Tables of layouts 5 and 6: their private objects go to the catalog owner, their rights to each table's owner alone.
    // The block runs with the migrating session's search_path: it fixes its own for its run (and puts it back).
    `DO $$ DECLARE o name := ${catalogOwner}; r record; path text := pg_catalog.current_setting('search_path'); BEGIN
       PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
       FOR r IN SELECT c.relname, c.relkind FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) CAST('ml_catalog' AS pg_catalog.regnamespace)
                  AND c.relname ~ '^mt_[0-9]+_(state|changes|source)$' AND c.relowner OPERATOR(pg_catalog.<>) CAST(o AS pg_catalog.regrole) LOOP
         EXECUTE pg_catalog.format(CASE WHEN r.relkind OPERATOR(pg_catalog.=) 'v' THEN 'ALTER VIEW ml_catalog.%I OWNER TO %I' ELSE 'ALTER TABLE ml_catalog.%I OWNER TO %I' END, r.relname, o);
       END LOOP;
       FOR r IN SELECT p.proname FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) CAST('ml_catalog' AS pg_catalog.regnamespace) AND p.proname ~ '^mt_[0-9]+_capture$' LOOP
         IF (SELECT p.proowner FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) CAST(pg_catalog.format('ml_catalog.%I()', r.proname) AS pg_catalog.regprocedure)) OPERATOR(pg_catalog.<>) CAST(o AS pg_catalog.regrole) THEN
           EXECUTE pg_catalog.format('ALTER FUNCTION ml_catalog.%I() OWNER TO %I', r.proname, o);
         END IF;
         EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION ml_catalog.%I() FROM PUBLIC', r.proname);
       END LOOP;
       FOR r IN SELECT t.table_id AS p_id, t.owner AS v_owner FROM ml_catalog.materialized_tables t
                 WHERE pg_catalog.to_regclass(pg_catalog.format('ml_catalog.%I', 'mt_' || t.table_id || '_state')) IS NOT NULL LOOP
         ${GRANTS_OF('r.v_owner').replace(/p_id/g, 'r.p_id')}
       END LOOP;
       IF o OPERATOR(pg_catalog.<>) current_user THEN
         EXECUTE pg_catalog.format('ALTER SEQUENCE ml_catalog.materialized_ids OWNER TO %I', o);
         ${MATERIALIZED_FUNCTION_SIGNATURES.map((f) => `EXECUTE pg_catalog.format('ALTER FUNCTION ${f} OWNER TO %I', o);`).join('\n         ')}
       END IF;
       PERFORM pg_catalog.set_config('search_path', path, true);
     END $$`,
  ];
}

/**
 * Layout 8 on Postgres: the refresh claim (columns `refresh_pid`, `refresh_role`, written by
 * `claim_refresh` and `release_refresh` alone) in place of advisory locks any role could
 * hold; `create_materialized` takes only a result table of the acting role's own and a
 * source table of its own, and draws random ids (the sequence, which told how many ids were
 * used, goes); the functions of layout 7 are replaced by this file's.
 */
export function materializedLayout8(catalogOwner: string): string[] {
  return [
    'ALTER TABLE ml_catalog.materialized_tables ADD COLUMN refresh_pid integer, ADD COLUMN refresh_role oid',
    ...WRITERS.flatMap((w) => [definer(w), invoker(w)]).map((sql) => sql.replace(/^CREATE FUNCTION /, 'CREATE OR REPLACE FUNCTION ')),
    ...MATERIALIZED_FUNCTION_SIGNATURES.map((f) => `GRANT EXECUTE ON FUNCTION ${f} TO PUBLIC`),
    'DROP SEQUENCE IF EXISTS ml_catalog.materialized_ids',
    `DO $$ DECLARE o name := ${catalogOwner}; BEGIN IF o OPERATOR(pg_catalog.<>) current_user THEN
       ${MATERIALIZED_FUNCTION_SIGNATURES.map((f) => `EXECUTE pg_catalog.format('ALTER FUNCTION ${f} OWNER TO %I', o);`).join('\n       ')}
     END IF; END $$`,
  ];
}
