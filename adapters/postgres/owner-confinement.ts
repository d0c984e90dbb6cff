/**
 * Confinement of a refresh that a refresher runs for a table's owner (docs/security.md,
 * "Who refreshes"). Postgres's own `REFRESH MATERIALIZED VIEW` runs the view's query as
 * the view's owner inside a security-restricted operation, where no code can change the
 * session's role (`SET ROLE`, `RESET ROLE`, `SET SESSION AUTHORIZATION` fail) and settings
 * changed by the query are put back. SQL cannot enter that context; the closest it offers
 * is a `SECURITY DEFINER` function: inside one, and in everything it calls, Postgres refuses
 * every change of role ("cannot set parameter "role" within security-definer function",
 * https://www.postgresql.org/docs/current/sql-set-role.html). So:
 *
 * - the refresher's session is reset with `DISCARD ALL` (role, settings, temporary objects,
 *   prepared statements, cursors: https://www.postgresql.org/docs/current/sql-discard.html)
 *   and checked (its `current_user` is its login role, it holds no temporary object)
 *   before and after each refresh;
 * - for the refresh it sets the owner's role and creates, as the owner, a `SECURITY
 *   DEFINER` function in its own `pg_temp` schema (which no other session can reach), the
 *   runner: every statement of the refresh that may run code of a role other than
 *   modelsql's catalog owner (every statement without parameters: reads and writes of the
 *   source and the result, the owner's query) runs inside it, queries by way of a
 *   temporary table the runner fills. Statements with parameters are modelsql's catalog
 *   calls and run as they are;
 * - the runner is checked in the statement that calls it (owner, `SECURITY DEFINER`, its
 *   body): code that replaced it stops the refresh;
 * - the statements that run outside the runner (cursors and `COPY` over the session's
 *   temporary tables, transaction control) run no code of the owner's only while those
 *   tables carry none: after each statement the runner refuses temporary tables with
 *   triggers, rules, row security, constraints, defaults or generated columns, expression
 *   or partial indexes, or columns of a domain type or of a type an ordinary role made
 *   (its casts and functions are that role's code), and a database with deferrable
 *   triggers outside `ml_catalog` (a deferred trigger runs at COMMIT, outside the runner).
 */
import { isWord, tokenize } from '../../core/sql/lexer.js';

/**
 * The body of the runner `(p_sql text, p_into text)`: runs `p_sql`, or with `p_into` stores
 * the rows of query `p_sql` in a new temporary table of that name (columns of one name,
 * as in `SELECT a.oid, b.oid`, are named `c1`, `c2`, ... instead: their number found by
 * naming more and fewer columns, 42P10 telling too many; a query of a pseudo-type column,
 * `SELECT f()` of a function returning void, runs for its effect and stores none), then
 * checks what the statement left. Returns the row count.
 */
export const RUNNER_BODY = `
DECLARE v_rows bigint; v_n integer := 1; v_high integer; v_mid integer;
BEGIN
  IF p_into IS NULL THEN
    EXECUTE p_sql;
  ELSE
    BEGIN
      EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE %I AS %s', p_into, p_sql);
    EXCEPTION WHEN duplicate_column THEN
      LOOP
        BEGIN
          EXECUTE pg_catalog.format('SELECT * FROM (%s) AS q(%s) LIMIT 0', p_sql, (SELECT pg_catalog.string_agg(pg_catalog.format('c%s', i), ', ') FROM pg_catalog.generate_series(1, v_n OPERATOR(pg_catalog.*) 2) AS i));
          v_n := v_n OPERATOR(pg_catalog.*) 2;
        EXCEPTION WHEN invalid_column_reference THEN EXIT;
        END;
      END LOOP;
      v_high := v_n OPERATOR(pg_catalog.*) 2;
      WHILE v_high OPERATOR(pg_catalog.-) v_n OPERATOR(pg_catalog.>) 1 LOOP
        v_mid := (v_n OPERATOR(pg_catalog.+) v_high) OPERATOR(pg_catalog./) 2;
        BEGIN
          EXECUTE pg_catalog.format('SELECT * FROM (%s) AS q(%s) LIMIT 0', p_sql, (SELECT pg_catalog.string_agg(pg_catalog.format('c%s', i), ', ') FROM pg_catalog.generate_series(1, v_mid) AS i));
          v_n := v_mid;
        EXCEPTION WHEN invalid_column_reference THEN v_high := v_mid;
        END;
      END LOOP;
      EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE %I AS SELECT * FROM (%s) AS q(%s)', p_into, p_sql, (SELECT pg_catalog.string_agg(pg_catalog.format('c%s', i), ', ') FROM pg_catalog.generate_series(1, v_n) AS i));
    WHEN invalid_table_definition THEN
      EXECUTE p_sql;
      EXECUTE pg_catalog.format('CREATE TEMPORARY TABLE %I ()', p_into);
    END;
  END IF;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  -- (modelsql's own deferred trigger, on ml_catalog.callers, runs the catalog owner's code)
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.tgrelid
             WHERE g.tgdeferrable AND NOT g.tgisinternal AND c.relnamespace OPERATOR(pg_catalog.<>) CAST('ml_catalog' AS pg_catalog.regnamespace)) THEN
    RAISE EXCEPTION 'a refresher does not refresh in a database with deferrable triggers: they run at COMMIT, outside the refresh''s confinement' USING ERRCODE = '42501';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema() AND (c.relhastriggers OR c.relhasrules OR c.relrowsecurity
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conrelid OPERATOR(pg_catalog.=) c.oid)
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_attrdef d WHERE d.adrelid OPERATOR(pg_catalog.=) c.oid)
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid OPERATOR(pg_catalog.=) c.oid AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL))
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) a.atttypid
                   LEFT JOIN pg_catalog.pg_type e ON e.oid OPERATOR(pg_catalog.=) t.typelem
                   WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND NOT a.attisdropped
                     AND (t.typtype OPERATOR(pg_catalog.=) CAST('d' AS "char") OR e.typtype OPERATOR(pg_catalog.=) CAST('d' AS "char")
                          OR NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) t.typowner)
                          OR NOT COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) e.typowner), true))))) THEN
    RAISE EXCEPTION 'a refresh left code on its temporary tables (a trigger, rule, policy, constraint, default, expression index, or a column of a domain or of a type an ordinary role made, whose casts and functions are that role''s), which would run outside its confinement' USING ERRCODE = '42501';
  END IF;
  RETURN v_rows;
END`;

/** `CREATE FUNCTION` of runner `name` (an unquoted identifier of letters, digits and `_`) in the session's `pg_temp`. */
export function runnerDefinition(name: string): string {
  return `CREATE FUNCTION pg_temp.${name}(p_sql text, p_into text) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER AS $modelsql_runner$${RUNNER_BODY}$modelsql_runner$`;
}

/**
 * The call of runner `name` on `$1` (and `$2`, the table to store rows in, or NULL), which
 * returns no row unless the runner is still the one made (`$3` its oid, `$4` the owner's
 * oid, `$5` its body) and is the function the call runs: the arguments are of the runner's
 * exact types, and the name, resolved in the same statement, must still be that oid (code
 * that renamed the runner and gave its name to a plain function, which could `RESET ROLE`,
 * finds no row).
 */
export function runnerCall(name: string): string {
  const signature = `pg_temp.${name}(pg_catalog.text, pg_catalog.text)`;
  return (
    `SELECT pg_temp.${name}(CAST($1 AS pg_catalog.text), CAST($2 AS pg_catalog.text)) FROM pg_catalog.pg_proc p WHERE p.oid OPERATOR(pg_catalog.=) $3 ` +
    `AND p.oid OPERATOR(pg_catalog.=) CAST(CAST('${signature}' AS pg_catalog.regprocedure) AS pg_catalog.oid) AND p.proowner OPERATOR(pg_catalog.=) $4 AND p.prosecdef AND p.proconfig IS NULL AND p.prosrc OPERATOR(pg_catalog.=) $5`
  );
}

/** The oid of runner `name` and of the current role (its owner). */
export function runnerIdentity(name: string): string {
  return `SELECT CAST(CAST('pg_temp.${name}(pg_catalog.text, pg_catalog.text)' AS pg_catalog.regprocedure) AS pg_catalog.oid), (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user)`;
}

/** Resets the session (outside a transaction block). */
export const RESET_SESSION = 'DISCARD ALL';

/** One row, one boolean: the session acts as its login role and holds no temporary object. */
export const SESSION_IS_CLEAN = `SELECT current_user OPERATOR(pg_catalog.=) session_user
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema())
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema())`;

/** How a statement without parameters runs while confined. */
export type ConfinedKind = 'as-is' | 'command' | 'rows';

/** Statements that run no code of a table owner's (transaction and cursor control, settings, drops of the session's temporary tables; ANALYZE runs as each table's owner in a security-restricted operation of Postgres's own). */
const AS_IS = ['begin', 'start', 'commit', 'end', 'rollback', 'abort', 'savepoint', 'release', 'fetch', 'close', 'set', 'reset', 'show', 'drop', 'analyze', 'discard', 'deallocate', 'listen', 'unlisten'];

/** Whether `sql` runs as it is, as a command inside the runner, or as a query whose rows the runner stores first. */
export function confinedKind(sql: string): ConfinedKind {
  const tokens = tokenize(sql);
  const first = tokens[0];
  if (AS_IS.some((w) => isWord(first, w))) return 'as-is';
  if (['select', 'values', 'table', 'explain'].some((w) => isWord(first, w))) return 'rows';
  if (isWord(first, 'with')) return tokens.some((t) => isWord(t, 'insert') || isWord(t, 'update') || isWord(t, 'delete') || isWord(t, 'merge')) ? 'command' : 'rows';
  return 'command';
}
