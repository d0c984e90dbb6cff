/**
 * A role with CREATE on a schema of other roles' search path (`public` here, in the default
 * `"$user", public`, with pg_catalog searched first as always) plants operators on the
 * domains of `information_schema` (`sql_identifier`, `character_data`). pg_catalog has no
 * operator of exactly those types, so Postgres takes the planted one for an unqualified
 * `table_schema = 'x'` or `table_schema = $1` whatever the order of the path
 * (https://www.postgresql.org/docs/current/typeconv-oper.html: an exact match is looked for
 * first, an unknown argument taken as the other's type). modelsql's own reads of
 * information_schema (the catalog's layout on each session's first model statement, a
 * materialized table's source key, a schema's existence, a host `DROP TABLE`) must never
 * run them: a session whose path modelsql accepts runs none of another role's code.
 */
import { connectPostgres } from '../../adapters/postgres/index.js';
import { SHELL_COMMANDS, TABLES_SQL } from '../../cli/shell.js';
import { ShellCompleter } from '../../cli/shell-completer.js';
import { ROLE, aliceModel, as, roleUrl, rows } from './attack-fixture.js';

/** bob's stand-ins for `=` on information_schema's domains: each logs its caller, then answers as the built-in would. */
const PLANT = `CREATE TABLE public.op_spy (who pg_catalog.text, what pg_catalog.text);
GRANT INSERT ON public.op_spy TO PUBLIC;
CREATE FUNCTION public.op_spy_eq(a information_schema.sql_identifier, b information_schema.sql_identifier) RETURNS boolean LANGUAGE plpgsql AS $$
  BEGIN INSERT INTO public.op_spy VALUES (current_user, 'id = id'); RETURN CAST(a AS pg_catalog.name) OPERATOR(pg_catalog.=) CAST(b AS pg_catalog.name); END $$;
CREATE FUNCTION public.op_spy_eq_name(a information_schema.sql_identifier, b pg_catalog.name) RETURNS boolean LANGUAGE plpgsql AS $$
  BEGIN INSERT INTO public.op_spy VALUES (current_user, 'id = name'); RETURN CAST(a AS pg_catalog.name) OPERATOR(pg_catalog.=) b; END $$;
CREATE FUNCTION public.op_spy_eq_data(a information_schema.character_data, b information_schema.character_data) RETURNS boolean LANGUAGE plpgsql AS $$
  BEGIN INSERT INTO public.op_spy VALUES (current_user, 'data = data'); RETURN CAST(a AS pg_catalog.text) OPERATOR(pg_catalog.=) CAST(b AS pg_catalog.text); END $$;
CREATE OPERATOR public.= (LEFTARG = information_schema.sql_identifier, RIGHTARG = information_schema.sql_identifier, FUNCTION = public.op_spy_eq);
CREATE OPERATOR public.= (LEFTARG = information_schema.sql_identifier, RIGHTARG = pg_catalog.name, FUNCTION = public.op_spy_eq_name);
CREATE OPERATOR public.= (LEFTARG = information_schema.character_data, RIGHTARG = information_schema.character_data, FUNCTION = public.op_spy_eq_data);`;

/** Who ran bob's operators, and how often each. */
async function spied(): Promise<unknown[][]> {
  return as('superuser', 'direct', (c) => rows(c, 'SELECT who, what, count(*)::int FROM public.op_spy GROUP BY 1, 2 ORDER BY 1, 2'));
}

beforeAll(async () => {
  await as('bob', 'direct', (c) => c.query(PLANT));
});

test('control: an unqualified comparison on information_schema runs bob’s operator as the caller, with the default path', async () => {
  await as('alice', 'direct', async (c) => {
    expect(await rows(c, 'SHOW search_path')).toEqual([['"$user", public']]);
    await c.query("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ml_catalog'");
  });
  expect(await spied()).toContainEqual([ROLE.alice, 'id = id', expect.any(Number)]);
  await as('superuser', 'direct', (c) => c.query('DELETE FROM public.op_spy'));
});

test('model statements, a materialized table’s creation and a host DROP TABLE, through the proxy and the library, run none of bob’s operators', async () => {
  await as('alice', 'proxy', async (c) => {
    await c.query('SHOW MODELS');
    await c.query(aliceModel('alices', 'schema_m'));
    await c.query('CREATE TABLE alices.src (id integer PRIMARY KEY, txt text)');
    await c.query(`INSERT INTO alices.src VALUES (1, 'one')`);
    await c.query(`CREATE MATERIALIZED TABLE alices.src_labels FRESHNESS = INTERVAL '1' HOUR REFRESH_MODE = CONTINUOUS AS SELECT id, a FROM ML_PREDICT(TABLE alices.src, MODEL alices.schema_m, DESCRIPTOR(txt))`);
    await c.query('CREATE TABLE alices.scratch (x integer)');
    await c.query('DROP TABLE alices.scratch');
  });
  const session = await connectPostgres(roleUrl('alice', 'direct'));
  try {
    await session.sql('SHOW MODELS');
    expect((await session.sql('SELECT id, a FROM alices.src_labels')).rows).toEqual([[1, 'echo: one']]);
  } finally {
    await session.close();
  }
  expect(await spied()).toEqual([]);
});

test('the shell’s own reads of information_schema (Tab completion’s names, .tables) run none of bob’s operators', async () => {
  // NOT IN compares with '<>' (against name[] when the list has several values): bob plants it too.
  await as('bob', 'direct', (c) =>
    c.query(`CREATE FUNCTION public.op_spy_ne(a information_schema.sql_identifier, b information_schema.sql_identifier) RETURNS boolean LANGUAGE plpgsql AS $$
  BEGIN INSERT INTO public.op_spy VALUES (current_user, 'id <> id'); RETURN CAST(a AS pg_catalog.name) OPERATOR(pg_catalog.<>) CAST(b AS pg_catalog.name); END $$;
CREATE FUNCTION public.op_spy_ne_name(a information_schema.sql_identifier, b pg_catalog.name) RETURNS boolean LANGUAGE plpgsql AS $$
  BEGIN INSERT INTO public.op_spy VALUES (current_user, 'id <> name'); RETURN CAST(a AS pg_catalog.name) OPERATOR(pg_catalog.<>) b; END $$;
CREATE OPERATOR public.<> (LEFTARG = information_schema.sql_identifier, RIGHTARG = information_schema.sql_identifier, FUNCTION = public.op_spy_ne);
CREATE OPERATOR public.<> (LEFTARG = information_schema.sql_identifier, RIGHTARG = pg_catalog.name, FUNCTION = public.op_spy_ne_name);`),
  );
  await as('alice', 'direct', async (c) => {
    await c.query('CREATE TABLE IF NOT EXISTS alices.shell_seen (x integer)');
    await c.query("SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog')");
  });
  expect(await spied()).toContainEqual([ROLE.alice, 'id <> id', expect.any(Number)]);
  await as('alice', 'direct', (c) => c.query("SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'ml_catalog')"));
  expect(await spied()).toContainEqual([ROLE.alice, 'id <> name', expect.any(Number)]);
  await as('superuser', 'direct', (c) => c.query('DELETE FROM public.op_spy'));

  const session = await connectPostgres(roleUrl('alice', 'direct'));
  try {
    const completer = new ShellCompleter(() => session, SHELL_COMMANDS);
    const [candidates] = await completer.complete('SELECT * FROM shell_se');
    expect(candidates).toContain('shell_seen');
    expect((await session.sql(TABLES_SQL)).rows).toContainEqual(['alices', 'shell_seen', 'BASE TABLE']);
  } finally {
    await session.close();
  }
  expect(await spied()).toEqual([]);
});
