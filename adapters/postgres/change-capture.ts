/**
 * Change capture of materialized tables' sources on Postgres: statement-level triggers with
 * transition tables (https://www.postgresql.org/docs/current/sql-createtrigger.html) copy
 * the keys of inserted, updated and deleted rows into the table's change table and
 * `pg_notify` its id (https://www.postgresql.org/docs/current/sql-notify.html), once per
 * statement; TRUNCATE records a row of NULL keys ("everything changed"). A view over the
 * source's keys makes `DROP TABLE source` fail while the materialized table exists
 * (https://www.postgresql.org/docs/current/ddl-depend.html). Refreshers of one table are
 * kept apart by a session-level advisory lock
 * (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS).
 */
import type { CaptureSpec, ChangeCaptureDialect } from '../../core/host.js';
import { doubleQuote } from '../../core/sql/format.js';

/** First key of modelsql's refresh locks ('msql'); the second is the materialized table's id. */
const LOCK_CLASS = 0x6d73716c;

/** Change capture and refresh locks on Postgres. */
export const POSTGRES_CHANGE_CAPTURE: ChangeCaptureDialect = {
  channel: 'modelsql_materialized',
  install(spec: CaptureSpec): readonly string[] {
    const keys = spec.keys.map(doubleQuote).join(', ');
    const fn = `${spec.prefix}_capture`;
    const body = (table: string) => `INSERT INTO ${spec.changes} (${keys}) SELECT ${keys} FROM ${table}`;
    const trigger = (suffix: string, event: string, referencing: string, arg: string) =>
      `CREATE TRIGGER ${doubleQuote(`modelsql_mt_${spec.id}_${suffix}`)} AFTER ${event} ON ${spec.source}${referencing} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}('${arg}')`;
    return [
      `CREATE TABLE ${spec.changes} AS SELECT ${keys} FROM ${spec.source} WITH NO DATA`,
      `ALTER TABLE ${spec.changes} ADD COLUMN seq bigserial, ADD COLUMN changed_at timestamptz NOT NULL DEFAULT clock_timestamp()`,
      `CREATE VIEW ${spec.prefix}_source AS SELECT ${keys} FROM ${spec.source}`,
      `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $modelsql$
BEGIN
  IF TG_ARGV[0] IN ('insert', 'update') THEN ${body('new_rows')}; END IF;
  IF TG_ARGV[0] IN ('delete', 'update') THEN ${body('old_rows')}; END IF;
  IF TG_ARGV[0] = 'truncate' THEN INSERT INTO ${spec.changes} (seq) VALUES (DEFAULT); END IF;
  PERFORM pg_notify('modelsql_materialized', '${spec.id}');
  RETURN NULL;
END $modelsql$`,
      trigger('insert', 'INSERT', ' REFERENCING NEW TABLE AS new_rows', 'insert'),
      trigger('update', 'UPDATE', ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows', 'update'),
      trigger('delete', 'DELETE', ' REFERENCING OLD TABLE AS old_rows', 'delete'),
      trigger('truncate', 'TRUNCATE', '', 'truncate'),
    ];
  },
  uninstall(spec: CaptureSpec): readonly string[] {
    return [
      ...['insert', 'update', 'delete', 'truncate'].map((suffix) => `DROP TRIGGER IF EXISTS ${doubleQuote(`modelsql_mt_${spec.id}_${suffix}`)} ON ${spec.source}`),
      `DROP FUNCTION IF EXISTS ${spec.prefix}_capture()`,
      `DROP VIEW IF EXISTS ${spec.prefix}_source`,
      `DROP TABLE IF EXISTS ${spec.changes}`,
    ];
  },
  // https://www.postgresql.org/docs/current/queries-with.html#QUERIES-WITH-MODIFYING
  take: (changes, into) => [`CREATE TEMPORARY TABLE ${into} AS SELECT * FROM ${changes} WITH NO DATA`, `WITH taken AS (DELETE FROM ${changes} RETURNING *) INSERT INTO ${into} SELECT * FROM taken`],
  tryLock: (id) => `SELECT pg_try_advisory_lock(${LOCK_CLASS}, ${Math.trunc(id)})`,
  lock: (id) => `SELECT pg_advisory_lock(${LOCK_CLASS}, ${Math.trunc(id)})`,
  unlock: (id) => `SELECT pg_advisory_unlock(${LOCK_CLASS}, ${Math.trunc(id)})`,
  // https://www.postgresql.org/docs/current/functions-info.html#FUNCTIONS-INFO-ACCESS-TABLE
  catalogReadable: "SELECT pg_catalog.has_table_privilege('ml_catalog.materialized_tables', 'SELECT')",
};
