/**
 * The search-path refusal (42501) of an ML query is made by the statement's first SQL, the
 * catalog look-up, in the same query that reads the models: that query runs under the
 * caller's path, so it must name nothing the path could change, and the path must be read
 * afresh by every statement. `bob` (attack-fixture.ts) plants in `public` a stand-in for
 * every name the look-up would reach if it were unqualified: the type `text` (a domain
 * whose check logs its caller), `current_schema()`, `current_database()`,
 * `current_schemas(boolean)`, `unnest`, `string_agg`, the functions naming a stored version
 * (`format`, `inet_server_addr()`, `inet_server_port()`, `pg_postmaster_start_time()`,
 * `date_part`) and the operators `=`, `<>` and `!~` on text and names. `alice` puts `public` before pg_catalog in each way a session can:
 * SET, set_config() in an earlier statement, SET LOCAL between two statements of one
 * transaction (in one script, and pipelined through the proxy before one Sync), and
 * set_config() run by bob's view in the middle of her statement. Each time her model
 * statement is refused before it reaches her endpoint, nothing of bob's runs, and once the
 * path is safe again the same statement runs.
 */
import pg from 'pg';
import { connectPostgres } from '../../adapters/postgres/index.js';
import { errorCodes } from '../adapters/postgres/proxy-helpers.js';
import { ROLE, aliceModel, aliceServer, as, failure, pipeline, roleUrl, rows } from './attack-fixture.js';

const MODEL = 'alices.lookup_m';
const PREDICT = `SELECT a FROM ML_PREDICT(TABLE notes, MODEL ${MODEL}, DESCRIPTOR(txt)) AS p`;
const HOSTILE = 'public, pg_catalog';

/** bob's stand-ins: each logs its caller into `public.spy_log`, then answers as the built-in would. */
const PLANT = `CREATE TABLE public.spy_log (who pg_catalog.text, what pg_catalog.text);
GRANT INSERT ON public.spy_log TO PUBLIC;
CREATE FUNCTION public.spy(what pg_catalog.text) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN INSERT INTO public.spy_log VALUES (current_user, what); RETURN true; END $$;
CREATE FUNCTION public.current_schema() RETURNS name LANGUAGE sql AS $$ SELECT 'alices'::name WHERE public.spy('current_schema') $$;
CREATE FUNCTION public.current_database() RETURNS name LANGUAGE sql AS $$ SELECT pg_catalog.current_database() WHERE public.spy('current_database') $$;
CREATE FUNCTION public.current_schemas(boolean) RETURNS name[] LANGUAGE sql AS $$ SELECT ARRAY['pg_catalog'::name] WHERE public.spy('current_schemas') $$;
CREATE FUNCTION public.unnest(name[]) RETURNS SETOF name LANGUAGE sql AS $$ SELECT 'pg_catalog'::name WHERE public.spy('unnest') $$;
CREATE FUNCTION public.agg_step(s pg_catalog.text, v pg_catalog.text, d pg_catalog.text) RETURNS pg_catalog.text LANGUAGE sql AS $$ SELECT v WHERE public.spy('string_agg') $$;
CREATE AGGREGATE public.string_agg(pg_catalog.text, pg_catalog.text) (SFUNC = public.agg_step, STYPE = pg_catalog.text);
CREATE FUNCTION public.op_tt(l pg_catalog.text, r pg_catalog.text) RETURNS boolean LANGUAGE sql AS $$ SELECT public.spy('operator') $$;
CREATE FUNCTION public.op_nn(l name, r name) RETURNS boolean LANGUAGE sql AS $$ SELECT public.spy('operator') $$;
CREATE FUNCTION public.op_nt(l name, r pg_catalog.text) RETURNS boolean LANGUAGE sql AS $$ SELECT public.spy('operator') $$;
CREATE OPERATOR public.= (LEFTARG = pg_catalog.text, RIGHTARG = pg_catalog.text, FUNCTION = public.op_tt);
CREATE OPERATOR public.<> (LEFTARG = name, RIGHTARG = name, FUNCTION = public.op_nn);
CREATE OPERATOR public.!~ (LEFTARG = name, RIGHTARG = pg_catalog.text, FUNCTION = public.op_nt);
CREATE FUNCTION public.format(f pg_catalog.text, a inet, p integer, e double precision, d name, x xid) RETURNS pg_catalog.text LANGUAGE sql AS $$ SELECT f WHERE public.spy('format') $$;
CREATE FUNCTION public.inet_server_addr() RETURNS inet LANGUAGE sql AS $$ SELECT CAST(NULL AS inet) WHERE public.spy('inet_server_addr') $$;
CREATE FUNCTION public.inet_server_port() RETURNS integer LANGUAGE sql AS $$ SELECT 1 WHERE public.spy('inet_server_port') $$;
CREATE FUNCTION public.pg_postmaster_start_time() RETURNS timestamptz LANGUAGE sql AS $$ SELECT pg_catalog.now() WHERE public.spy('pg_postmaster_start_time') $$;
CREATE FUNCTION public.date_part(f pg_catalog.text, t timestamptz) RETURNS double precision LANGUAGE sql AS $$ SELECT 0.5 WHERE public.spy('date_part') $$;
CREATE DOMAIN public.text AS pg_catalog.text CHECK (public.spy('text'));`;

/** What bob's stand-ins logged, as the superuser sees it. */
const spied = () => as('superuser', 'direct', (c) => rows(c, 'SELECT who, what FROM public.spy_log'));

/** A session of alice: the library's, or a client of the proxy. */
interface AliceSession {
  sql(text: string): Promise<unknown[][]>;
  close(): Promise<void>;
}

async function alice(via: 'library' | 'proxy'): Promise<AliceSession> {
  if (via === 'library') {
    const db = await connectPostgres(roleUrl('alice', 'direct'));
    return { sql: async (text) => (await db.sql(text)).rows as unknown[][], close: () => db.close() };
  }
  const c = new pg.Client({ connectionString: roleUrl('alice', 'proxy') });
  c.on('error', () => undefined);
  await c.connect();
  return {
    sql: async (text) => {
      const r = (await c.query({ text, rowMode: 'array' })) as unknown as pg.QueryArrayResult | pg.QueryArrayResult[];
      return (Array.isArray(r) ? r.at(-1)! : r).rows as unknown[][];
    },
    close: () => c.end(),
  };
}

beforeAll(async () => {
  await as('alice', 'proxy', (c) => c.query(aliceModel('alices', 'lookup_m')));
  await as('bob', 'direct', async (c) => {
    await c.query(PLANT);
    // A view alice may read that moves her search path while her statement reads it.
    await c.query(`CREATE VIEW public.moving_notes AS SELECT txt FROM public.notes WHERE pg_catalog.set_config('search_path', '${HOSTILE}', false) OPERATOR(pg_catalog.<>) txt`);
    await c.query('GRANT SELECT ON public.moving_notes TO PUBLIC');
    // A function whose SET clause moves the path only while it runs.
    await c.query(`CREATE FUNCTION public.same_text(t pg_catalog.text) RETURNS pg_catalog.text LANGUAGE sql SET search_path = ${HOSTILE} AS 'SELECT t'`);
  });
}, 60_000);

describe.each(['library', 'proxy'] as const)('alice through the %s', (via) => {
  let session: AliceSession;
  beforeEach(async () => {
    session = await alice(via);
    aliceServer.reset();
  });
  afterEach(async () => {
    await session.close();
    expect(await spied()).toEqual([]);
  });

  test('SET and set_config() in an earlier statement: refused before her endpoint hears anything; after RESET the statement runs', async () => {
    await session.sql(`SET search_path = ${HOSTILE}`);
    expect(await failure(session.sql(PREDICT))).toBe('42501');
    await session.sql('RESET search_path');
    await session.sql(`SELECT pg_catalog.set_config('search_path', '${HOSTILE}', false)`);
    expect(await failure(session.sql(PREDICT))).toBe('42501');
    expect(aliceServer.requests).toHaveLength(0);
    await session.sql('RESET search_path');
    expect(await session.sql(PREDICT)).toEqual([['echo: hello']]);
  });

  test('SET LOCAL between two statements of one transaction (one script): the first runs, the second is refused', async () => {
    const script = `BEGIN; ${PREDICT}; SET LOCAL search_path = ${HOSTILE}; ${PREDICT}; COMMIT`;
    expect(await failure(session.sql(script))).toBe('42501');
    expect(aliceServer.requests).toHaveLength(1);
    await session.sql('ROLLBACK');
    expect(await session.sql(PREDICT)).toEqual([['echo: hello']]);
  });

  test('SET LOCAL inside a transaction, then ROLLBACK: refused inside, runs after', async () => {
    await session.sql('BEGIN');
    await session.sql(`SET LOCAL search_path = ${HOSTILE}`);
    expect(await failure(session.sql(PREDICT))).toBe('42501');
    await session.sql('ROLLBACK');
    expect(aliceServer.requests).toHaveLength(0);
    expect(await session.sql(PREDICT)).toEqual([['echo: hello']]);
  });

  test("a function's SET clause moves the path only while it runs: the statement runs, and so does the next", async () => {
    const input = `SELECT a FROM ML_PREDICT(TABLE (SELECT public.same_text(txt) AS txt FROM notes), MODEL ${MODEL}, DESCRIPTOR(txt)) AS p`;
    expect(await session.sql(input)).toEqual([['echo: hello']]);
    expect(await session.sql(PREDICT)).toEqual([['echo: hello']]);
  });

  test("set_config() run by bob's view in the middle of her statement: the rest of it runs none of bob's objects; her next model statement is refused", async () => {
    const moved = `SELECT a FROM ML_PREDICT(TABLE public.moving_notes, MODEL ${MODEL}, DESCRIPTOR(txt)) AS p`;
    expect(await session.sql(moved)).toEqual([['echo: hello']]);
    expect(await session.sql('SHOW search_path')).toEqual([[HOSTILE]]);
    expect(await failure(session.sql(PREDICT))).toBe('42501');
    expect(aliceServer.requests).toHaveLength(1);
  });
});

test('pipelined through the proxy before one Sync: SET LOCAL, then the model statement, refused', async () => {
  aliceServer.reset();
  expect(errorCodes(await pipeline('alice', ['BEGIN', `SET LOCAL search_path = ${HOSTILE}`, PREDICT]))).toEqual(['42501']);
  expect(aliceServer.requests).toHaveLength(0);
  // Control: the same pipeline with a safe path runs the statement.
  expect(errorCodes(await pipeline('alice', ['BEGIN', 'SET LOCAL search_path = pg_catalog, public', PREDICT]))).toEqual([]);
  expect(aliceServer.requests).toHaveLength(1);
  expect(await spied()).toEqual([]);
});

test("control: with public first, the look-up's names unqualified run bob's stand-ins as alice", async () => {
  await as('alice', 'direct', async (c) => {
    await c.query(`SET search_path = ${HOSTILE}`);
    await c.query(
      "SELECT CAST(current_schema() AS text), current_database(), (SELECT string_agg(CAST(s AS text), ', ') FROM unnest(current_schemas(true)) AS u(s) WHERE s !~ 'x' AND s <> 'y'), 'a'::text = 'b'",
    );
    await c.query("SELECT format('%s:%s %s %s %s', inet_server_addr(), inet_server_port(), date_part('epoch', pg_postmaster_start_time()), current_database(), xmin) FROM public.notes");
  });
  const what = (await spied()).filter((r) => r[0] === ROLE.alice).map((r) => r[1]);
  expect(new Set(what)).toEqual(
    new Set(['text', 'current_schema', 'current_database', 'current_schemas', 'unnest', 'string_agg', 'operator', 'format', 'inet_server_addr', 'inet_server_port', 'pg_postmaster_start_time', 'date_part']),
  );
  await as('superuser', 'direct', (c) => c.query('DELETE FROM public.spy_log'));
});
