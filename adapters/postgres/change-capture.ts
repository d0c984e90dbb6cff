/**
 * Change capture of materialized tables' sources on Postgres: statement-level triggers with
 * transition tables (https://www.postgresql.org/docs/current/sql-createtrigger.html) copy
 * the keys of inserted, updated and deleted rows into the table's change table and
 * `pg_notify` its id (https://www.postgresql.org/docs/current/sql-notify.html), once per
 * statement; TRUNCATE records a row of NULL keys ("everything changed"). The state table,
 * the change table and the trigger function are made by `ml_catalog.install_capture`
 * (materialized-security.ts: owned by the catalog owner, rights for the table's owner
 * alone); the triggers by the creating role, which needs TRIGGER on the source. A check
 * constraint of the result table naming the source's row type makes `DROP TABLE source`
 * fail while the materialized table exists
 * (https://www.postgresql.org/docs/current/ddl-depend.html). Refreshers of one table are
 * kept apart by the refresh claim of its catalog row, taken and released through
 * `ml_catalog.claim_refresh` and `ml_catalog.release_refresh` (materialized-security.ts):
 * no other role can hold it.
 */
import type { CaptureSpec, ChangeCaptureDialect } from '../../core/host.js';
import { doubleQuote, quoteString } from '../../core/sql/format.js';

/** The result table's constraint that keeps the source of materialized table `id` from being dropped. */
const pinName = (id: number) => doubleQuote(`modelsql_mt_${Math.trunc(id)}_source`);

/** Change capture and refresh claims on Postgres. */
export const POSTGRES_CHANGE_CAPTURE: ChangeCaptureDialect = {
  channel: 'modelsql_materialized',
  install(spec: CaptureSpec): readonly string[] {
    const fn = `${spec.prefix}_capture`;
    const array = (values: readonly string[]) => `CAST(ARRAY[${values.map(quoteString).join(', ')}] AS pg_catalog.text[])`;
    const trigger = (suffix: string, event: string, referencing: string) =>
      `CREATE TRIGGER ${doubleQuote(`modelsql_mt_${spec.id}_${suffix}`)} AFTER ${event} ON ${spec.source}${referencing} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}('${suffix}')`;
    return [
      `SELECT ml_catalog.install_capture(${Math.trunc(spec.id)}, ${array(spec.keys)}, ${array(spec.outputs.map((o) => o.name))}, ${array(spec.outputs.map((o) => o.type))}, ${quoteString(spec.digests[0])}, ${quoteString(spec.digests[1])})`,
      trigger('insert', 'INSERT', ' REFERENCING NEW TABLE AS new_rows'),
      trigger('update', 'UPDATE', ' REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'),
      trigger('delete', 'DELETE', ' REFERENCING OLD TABLE AS old_rows'),
      trigger('truncate', 'TRUNCATE', ''),
    ];
  },
  pin: (spec) => [`ALTER TABLE ${spec.result} ADD CONSTRAINT ${pinName(spec.id)} CHECK (CAST(NULL AS ${spec.source}) IS NULL)`],
  uninstall: (spec) => [
    `ALTER TABLE IF EXISTS ${spec.result} DROP CONSTRAINT IF EXISTS ${pinName(spec.id)}`,
    // The function goes with its triggers (CASCADE), the state and change tables with it.
    `SELECT ml_catalog.uninstall_capture(${Math.trunc(spec.id)})`,
  ],
  // https://www.postgresql.org/docs/current/queries-with.html#QUERIES-WITH-MODIFYING
  // One pass: the deleted records' keys grouped as they come back (a TRUNCATE's record of NULL keys is one group of its own).
  take: (changes, into, keys) =>
    `CREATE TEMPORARY TABLE ${into} AS WITH taken AS (DELETE FROM ${changes} RETURNING ${keys.join(', ')}, changed_at) ` +
    `SELECT ${keys.join(', ')}, pg_catalog.min(changed_at) AS changed_at FROM taken GROUP BY ${keys.join(', ')}`,
  claim: 'SELECT ml_catalog.claim_refresh($1)',
  release: 'SELECT ml_catalog.release_refresh($1)',
  // https://www.postgresql.org/docs/current/functions-info.html#FUNCTIONS-INFO-ACCESS-TABLE
  catalogReadable: "SELECT pg_catalog.has_table_privilege('ml_catalog.materialized_tables', 'SELECT')",
};
