/**
 * The three holes a hostile review found in the refreshers of materialized tables, each
 * tried by a hostile role on a real Postgres, by plain SQL and through the proxy and a
 * refresher (the code the proxy's refreshers and `modelsql worker` run):
 *
 * 1. code in a refresh acting with the refresher's rights, or leaving the refresher's
 *    session changed for the next owner's refresh (a source of another role's, a source
 *    given away, the owner's own policy, trigger and functions);
 * 2. holding a table's refresh lock (the advisory lock of old, the catalog row);
 * 3. taking a name with no table behind it, and counting ids.
 *
 * The refresher role is a member of alice and of bob, who do not trust each other.
 */
import pg from 'pg';
import { connectPostgres } from '../../adapters/postgres/index.js';
import { startProxy } from '../../adapters/postgres/proxy/index.js';
import type { ModelSession } from '../../core/session/model-session.js';
import type { MaterializedTable } from '../../core/materialized/materialized-store.js';
import { PASSWORD, ROLE, aliceModel, as, dbUrl, failure, roleUrl, rows, tag } from './attack-fixture.js';

const REFRESHER = `mt_refresher_${tag}`;
/** The advisory lock key refreshes took before catalog layout 8 ('msql', then the id). */
const OLD_LOCK_CLASS = 0x6d73716c;

/** A URL of the refresher role, directly on the database. */
function refresherUrl(): string {
  const url = new URL(dbUrl);
  url.username = REFRESHER;
  url.password = PASSWORD;
  return url.toString();
}

/** Runs `fn` with a session of the refresher role (the library's, as `modelsql worker` opens it). */
async function asRefresher<T>(fn: (session: ModelSession) => Promise<T>): Promise<T> {
  const session = (await connectPostgres(refresherUrl())) as ModelSession;
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/** The refresher's refresh of the table named `name` (undefined: another session holds it). */
async function refreshAs(session: ModelSession, name: string): Promise<Awaited<ReturnType<ModelSession['materialized']['refreshAsOwner']>>> {
  const table = (await session.materialized.store.refreshable()).find((t: MaterializedTable) => t.name === name);
  if (!table) throw new Error(`the refresher does not see ${name}`);
  return session.materialized.refreshAsOwner(table);
}

/** A catalog row's columns, as the superuser reads them. */
async function catalogRow(name: string): Promise<Record<string, unknown>> {
  return as('superuser', 'direct', async (c) => (await c.query(`SELECT table_id, owner, refresh_count, error_count, last_error, refresh_pid, status FROM ml_catalog.materialized_tables WHERE table_name = $1`, [name])).rows[0]);
}

async function hijackLog(): Promise<unknown[][]> {
  return as('superuser', 'direct', (c) => rows(c, 'SELECT who, what FROM public.hijack_log ORDER BY what, who'));
}

async function clearLog(): Promise<void> {
  await as('superuser', 'direct', (c) => c.query('DELETE FROM public.hijack_log'));
}

/**
 * A policy function in `schema`: tries to act as the refresher and as bob, each attempt
 * logged with its outcome; with `poison`, leaves settings and a temporary table in the
 * session for whatever runs next.
 */
function escapeFunction(schema: string, name = 'escape', poison = true): string {
  const attempt = (label: string, statement: string) => `BEGIN ${statement}; INSERT INTO public.hijack_log VALUES (current_user, '${label}: done as ' || current_user); EXCEPTION WHEN others THEN INSERT INTO public.hijack_log VALUES (current_user, '${label}: ' || SQLSTATE); END;`;
  return `CREATE FUNCTION ${schema}.${name}() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN
    ${attempt('reset role', 'RESET ROLE')}
    ${attempt('set role bob', `SET ROLE ${ROLE.bob}`)}
    ${attempt('set_config role', `PERFORM pg_catalog.set_config('role', '${ROLE.bob}', false)`)}
    ${attempt('session authorization', `SET SESSION AUTHORIZATION ${REFRESHER}`)}
    ${
      poison
        ? `-- What stays in the session for the next refresh, if nothing resets it.
    PERFORM pg_catalog.set_config('search_path', '${schema}, public, pg_catalog', false);
    PERFORM pg_catalog.set_config('application_name', 'left by ${schema}', false);
    CREATE TEMPORARY TABLE IF NOT EXISTS left_behind (x integer);`
        : ''
    }
    RETURN true;
  END $$`;
}

beforeAll(async () => {
  await as('superuser', 'direct', async (c) => {
    await c.query('CREATE TABLE public.hijack_log (who text, what text)');
    await c.query('GRANT INSERT ON public.hijack_log TO PUBLIC');
    await c.query(`CREATE ROLE ${REFRESHER} LOGIN PASSWORD '${PASSWORD}'`);
    await c.query(`GRANT ${ROLE.alice}, ${ROLE.bob} TO ${REFRESHER}`);
    await c.query(`CREATE SCHEMA bobs AUTHORIZATION ${ROLE.bob}`);
  });
  await as('alice', 'direct', async (c) => {
    await c.query('CREATE TABLE alices.reviews (id integer PRIMARY KEY, txt text)');
    await c.query(`INSERT INTO alices.reviews VALUES (1, 'one'), (2, 'two')`);
  });
  await as('bob', 'direct', async (c) => {
    await c.query('CREATE TABLE bobs.notes (id integer PRIMARY KEY, txt text)');
    await c.query(`INSERT INTO bobs.notes VALUES (1, 'b-one')`);
    // bob's table that he offers alice as a source: its policy runs his code.
    await c.query('CREATE TABLE public.bob_offer (id integer PRIMARY KEY, txt text)');
    await c.query(`INSERT INTO public.bob_offer VALUES (1, 'offered')`);
    await c.query(escapeFunction('bobs'));
    await c.query('ALTER TABLE public.bob_offer ENABLE ROW LEVEL SECURITY');
    await c.query('CREATE POLICY offer ON public.bob_offer USING (bobs.escape())');
    await c.query(`GRANT SELECT ON public.bob_offer TO ${ROLE.alice}`);
    // What bob's own refreshes see of the session: logged by a policy on his source.
    await c.query(`CREATE FUNCTION bobs.observe() RETURNS boolean LANGUAGE sql AS $$
      INSERT INTO public.hijack_log SELECT current_user, 'observed ' || pg_catalog.current_setting('search_path') || ' / ' || pg_catalog.current_setting('application_name')
        || ' / temp tables ' || (SELECT pg_catalog.count(*) FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema() AND relname = 'left_behind');
      SELECT true $$`);
    await c.query('ALTER TABLE bobs.notes ENABLE ROW LEVEL SECURITY');
    await c.query('ALTER TABLE bobs.notes FORCE ROW LEVEL SECURITY');
    await c.query('CREATE POLICY observe ON bobs.notes USING (bobs.observe())');
  });
  await as('alice', 'proxy', async (c) => {
    await c.query(aliceModel('alices', 'labeler'));
    await c.query(`GRANT USAGE ON MODEL alices.labeler TO ${ROLE.bob}`);
    await c.query(`CREATE MATERIALIZED TABLE public.alice_labels FRESHNESS = INTERVAL '1' HOUR REFRESH_MODE = CONTINUOUS AS SELECT id, a FROM ML_PREDICT(TABLE alices.reviews, MODEL alices.labeler, DESCRIPTOR(txt))`);
  });
  await as('bob', 'proxy', (c) =>
    c.query(`CREATE MATERIALIZED TABLE public.bob_labels FRESHNESS = INTERVAL '1' HOUR REFRESH_MODE = CONTINUOUS AS SELECT id, a FROM ML_PREDICT(TABLE bobs.notes, MODEL alices.labeler, DESCRIPTOR(txt))`),
  );
  await clearLog();
}, 120_000);

describe('hole 1: code in a refresh acts with its owner’s rights alone', () => {
  test('another role’s table is no source: CREATE and create_materialized refuse it, and nothing is left', async () => {
    await as('alice', 'proxy', async (c) => {
      const create = `CREATE MATERIALIZED TABLE public.alice_over_bob FRESHNESS = INTERVAL '1' HOUR REFRESH_MODE = CONTINUOUS AS SELECT id, a FROM ML_PREDICT(TABLE public.bob_offer, MODEL alices.labeler, DESCRIPTOR(txt))`;
      // Refused before the catalog is asked: bob's primary key is not alice's to see (information_schema), so the source has none for her.
      expect(await failure(c.query(create))).toBe('55000');
    });
    await as('alice', 'direct', async (c) => {
      await c.query('CREATE TABLE public.alice_direct (id integer)');
      const call = `SELECT ml_catalog.create_materialized('public', 'alice_direct', 'x', 'x', 'CONTINUOUS', 60, 'ACTIVE', 'public', 'bob_offer', '["id"]', 'alices', 'labeler', NULL, NULL)`;
      const error = await c.query(call).catch((e: { code: string; message: string }) => e);
      expect(error).toMatchObject({ code: '42501', message: 'must be owner of table public.bob_offer: the source of a materialized table is a table its owner owns' });
      await c.query('DROP TABLE public.alice_direct');
    });
    await as('superuser', 'direct', async (c) => {
      expect(await rows(c, `SELECT table_name FROM ml_catalog.materialized_tables ORDER BY 1`)).toEqual([['alice_labels'], ['bob_labels']]);
      expect(await rows(c, `SELECT relname FROM pg_class WHERE relname IN ('alice_over_bob', 'alice_direct')`)).toEqual([]);
    });
    expect(await hijackLog()).toEqual([]);
  });

  test('a source given to another role is refreshed no more, by the refresher or the owner, and the error is recorded', async () => {
    const before = await catalogRow('alice_labels');
    await as('superuser', 'direct', async (c) => {
      await c.query(`ALTER TABLE alices.reviews OWNER TO ${ROLE.bob}`);
      await c.query(`CREATE POLICY taken ON alices.reviews USING (bobs.escape())`);
      await c.query('ALTER TABLE alices.reviews ENABLE ROW LEVEL SECURITY');
      await c.query(`INSERT INTO alices.reviews VALUES (3, 'three')`);
    });
    try {
      await asRefresher(async (s) => expect(await failure(refreshAs(s, 'alice_labels'))).toBe('42501'));
      await as('alice', 'proxy', async (c) => expect(await failure(c.query('ALTER MATERIALIZED TABLE public.alice_labels REFRESH'))).toBe('42501'));
      const after = await catalogRow('alice_labels');
      expect(after).toMatchObject({ refresh_count: before.refresh_count, error_count: String(Number(before.error_count) + 2), refresh_pid: null });
      expect(after.last_error).toBe(`materialized table ${String(before.table_id)} is not refreshed: its source alices.reviews is not a table owned by ${ROLE.alice}`);
      expect(await hijackLog()).toEqual([]);
      expect(await as('alice', 'direct', (c) => rows(c, 'SELECT id, a FROM public.alice_labels ORDER BY id'))).toEqual([
        [1, 'echo: one'],
        [2, 'echo: two'],
      ]);
    } finally {
      await as('superuser', 'direct', async (c) => {
        await c.query('DROP POLICY taken ON alices.reviews');
        await c.query('ALTER TABLE alices.reviews DISABLE ROW LEVEL SECURITY');
        await c.query(`ALTER TABLE alices.reviews OWNER TO ${ROLE.alice}`);
      });
    }
  });

  test('the owner’s own policy cannot act as the refresher or as bob, and what it leaves in the session is gone for bob’s refresh after it', async () => {
    await as('alice', 'direct', async (c) => {
      await c.query(escapeFunction('alices'));
      await c.query('ALTER TABLE alices.reviews ENABLE ROW LEVEL SECURITY');
      await c.query('ALTER TABLE alices.reviews FORCE ROW LEVEL SECURITY');
      await c.query('CREATE POLICY mine ON alices.reviews USING (alices.escape())');
      await c.query(`INSERT INTO alices.reviews VALUES (4, 'four')`);
    });
    await as('bob', 'direct', (c) => c.query(`INSERT INTO bobs.notes VALUES (2, 'b-two')`));
    await clearLog();
    // One refresher session refreshes alice's table, then bob's. alice's own refresh fails:
    // her policy moved the search path before modelsql's statements (refused, 42501).
    await asRefresher(async (s) => {
      expect(await failure(refreshAs(s, 'alice_labels'))).toBe('42501');
      expect((await refreshAs(s, 'bob_labels'))?.rowsPredicted).toBe(1);
    });
    const log = await hijackLog();
    // Nothing ran as the refresher or as bob on alice's behalf: every attempt refused (42501) as alice.
    expect(log.filter(([who]) => who !== ROLE.alice && who !== ROLE.bob)).toEqual([]);
    const alices = new Set(log.filter(([who]) => who === ROLE.alice).map(([, what]) => what));
    expect([...alices].sort()).toEqual(['reset role: 42501', 'session authorization: 42501', 'set role bob: 42501', 'set_config role: 42501']);
    // bob's refresh, after alice's in the same session, saw the session as it was at its start.
    const observed = log.filter(([who]) => who === ROLE.bob).map(([, what]) => what);
    expect(new Set(observed)).toEqual(new Set(['observed "$user", public /  / temp tables 0']));
    // alice's policy without the settings: her refresh goes through, every escape still refused.
    await as('alice', 'direct', async (c) => {
      await c.query(escapeFunction('alices', 'escape_only', false));
      await c.query('DROP POLICY mine ON alices.reviews');
      await c.query('CREATE POLICY mine ON alices.reviews USING (alices.escape_only())');
    });
    await clearLog();
    await asRefresher(async (s) => expect((await refreshAs(s, 'alice_labels'))?.rowsPredicted).toBe(2));
    expect((await hijackLog()).filter(([who, what]) => who !== ROLE.alice || !String(what).endsWith(': 42501'))).toEqual([]);
    expect(await as('alice', 'direct', (c) => rows(c, 'SELECT id, a FROM public.alice_labels ORDER BY id'))).toEqual([
      [1, 'echo: one'],
      [2, 'echo: two'],
      [3, 'echo: three'],
      [4, 'echo: four'],
    ]);
  });

  test('through the proxy’s refresher: the owner’s policy is refused the refresher’s role as well', async () => {
    await as('alice', 'direct', (c) => c.query(`INSERT INTO alices.reviews VALUES (5, 'five')`));
    await as('alice', 'proxy', (c) => c.query(`ALTER MATERIALIZED TABLE public.alice_labels SET FRESHNESS = INTERVAL '1' SECOND`));
    await clearLog();
    const upstream = new URL(dbUrl);
    const proxy = await startProxy({ upstream: `postgres://${upstream.host}${upstream.pathname}?sslmode=disable`, listen: 0, refreshUrl: refresherUrl(), session: { allowedUrlPrefixes: ['*'] }, log: () => undefined });
    try {
      const url = new URL(roleUrl('alice', 'direct'));
      url.host = `127.0.0.1:${proxy.port}`;
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        while ((await as('alice', 'direct', (c) => rows(c, 'SELECT count(*)::int FROM public.alice_labels')))[0]![0] !== 5) await new Promise((r) => setTimeout(r, 50));
      } finally {
        await client.end();
      }
    } finally {
      await proxy.close();
      await as('alice', 'proxy', (c) => c.query(`ALTER MATERIALIZED TABLE public.alice_labels SET FRESHNESS = INTERVAL '1' HOUR`));
    }
    const log = await hijackLog();
    expect(log.length).toBeGreaterThan(0);
    expect(log.filter(([who, what]) => who !== ROLE.alice || !String(what).endsWith(': 42501'))).toEqual([]);
  });

  test('code that replaces the refresh’s confinement, or leaves a trigger on its temporary tables, stops the refresh', async () => {
    await as('alice', 'direct', async (c) => {
      await c.query('DROP POLICY mine ON alices.reviews');
      // Replaces the SECURITY DEFINER runner with one that would run as the caller.
      await c.query(`CREATE FUNCTION alices.replace_runner() RETURNS boolean LANGUAGE plpgsql AS $$ DECLARE f text; BEGIN
        FOR f IN SELECT proname FROM pg_catalog.pg_proc WHERE pronamespace = pg_catalog.pg_my_temp_schema() LOOP
          EXECUTE pg_catalog.format('CREATE OR REPLACE FUNCTION pg_temp.%I(p_sql text, p_into text) RETURNS bigint LANGUAGE plpgsql AS $r$ BEGIN RESET ROLE; INSERT INTO public.hijack_log VALUES (current_user, ''runner replaced''); EXECUTE p_sql; RETURN 0; END $r$', f);
        END LOOP; RETURN true; END $$`);
      await c.query('CREATE POLICY replace ON alices.reviews USING (alices.replace_runner())');
      await c.query(`INSERT INTO alices.reviews VALUES (6, 'six')`);
    });
    await clearLog();
    await asRefresher(async (s) => expect(await failure(refreshAs(s, 'alice_labels'))).toBe('42501'));
    expect(await hijackLog()).toEqual([]);
    await as('alice', 'direct', async (c) => {
      await c.query('DROP POLICY replace ON alices.reviews');
      // A trigger on the refresh's own temporary tables would fire in a COPY outside the runner.
      await c.query(`CREATE FUNCTION alices.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RESET ROLE; INSERT INTO public.hijack_log VALUES (current_user, 'temp trigger'); RETURN NULL; END $$`);
      await c.query(`CREATE FUNCTION alices.plant() RETURNS boolean LANGUAGE plpgsql AS $$ DECLARE t text; BEGIN
        FOR t IN SELECT relname FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema() AND relkind = 'r' LOOP
          EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS planted ON pg_temp.%I', t);
          EXECUTE pg_catalog.format('CREATE TRIGGER planted AFTER INSERT ON pg_temp.%I FOR EACH STATEMENT EXECUTE FUNCTION alices.noop()', t);
        END LOOP; RETURN true; END $$`);
      await c.query('CREATE POLICY plant ON alices.reviews USING (alices.plant())');
    });
    await asRefresher(async (s) => expect(await failure(refreshAs(s, 'alice_labels'))).toBe('42501'));
    await as('alice', 'direct', async (c) => {
      await c.query('DROP POLICY plant ON alices.reviews');
      await c.query('ALTER TABLE alices.reviews NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY');
    });
    expect(await hijackLog()).toEqual([]);
    // With the policies gone, the next refresh catches up.
    await asRefresher(async (s) => expect((await refreshAs(s, 'alice_labels'))?.rowsPredicted).toBe(1));
  });

  test('a trigger of the owner’s on the result table runs confined; a deferrable one stops the refresh', async () => {
    await as('alice', 'direct', async (c) => {
      await c.query(`CREATE FUNCTION alices.on_result() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        BEGIN RESET ROLE; INSERT INTO public.hijack_log VALUES (current_user, 'result trigger escaped'); EXCEPTION WHEN others THEN INSERT INTO public.hijack_log VALUES (current_user, 'result trigger: ' || SQLSTATE); END;
        RETURN NULL; END $$`);
      await c.query('CREATE TRIGGER on_result AFTER INSERT ON public.alice_labels FOR EACH STATEMENT EXECUTE FUNCTION alices.on_result()');
      await c.query(`INSERT INTO alices.reviews VALUES (7, 'seven')`);
    });
    await clearLog();
    await asRefresher(async (s) => expect((await refreshAs(s, 'alice_labels'))?.rowsPredicted).toBe(1));
    expect(await hijackLog()).toEqual([[ROLE.alice, 'result trigger: 42501']]);
    await as('alice', 'direct', async (c) => {
      await c.query('DROP TRIGGER on_result ON public.alice_labels');
      await c.query('CREATE CONSTRAINT TRIGGER at_commit AFTER INSERT ON public.alice_labels DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION alices.on_result()');
      await c.query(`INSERT INTO alices.reviews VALUES (8, 'eight')`);
    });
    await clearLog();
    await asRefresher(async (s) => expect(await failure(refreshAs(s, 'alice_labels'))).toBe('42501'));
    expect(await hijackLog()).toEqual([]);
    await as('alice', 'direct', (c) => c.query('DROP TRIGGER at_commit ON public.alice_labels'));
    await asRefresher(async (s) => expect((await refreshAs(s, 'alice_labels'))?.rowsPredicted).toBe(1));
  });
});

test('a source with a column of a type an ordinary role made (its casts are that role’s code) is not refreshed by a refresher; its owner refreshes it', async () => {
  await as('alice', 'direct', async (c) => {
    await c.query(`CREATE TYPE alices.mood AS ENUM ('calm', 'cross')`);
    await c.query('CREATE TABLE alices.moods (id integer PRIMARY KEY, txt text, mood alices.mood)');
    await c.query(`INSERT INTO alices.moods VALUES (1, 'm-one', 'calm')`);
  });
  await as('alice', 'proxy', (c) =>
    c.query(`CREATE MATERIALIZED TABLE public.alice_moods FRESHNESS = INTERVAL '1' HOUR REFRESH_MODE = CONTINUOUS AS SELECT id, mood, a FROM ML_PREDICT(TABLE alices.moods, MODEL alices.labeler, DESCRIPTOR(txt))`),
  );
  await as('alice', 'direct', (c) => c.query(`INSERT INTO alices.moods VALUES (2, 'm-two', 'cross')`));
  await asRefresher(async (s) => expect(await failure(refreshAs(s, 'alice_moods'))).toBe('42501'));
  await as('alice', 'proxy', (c) => c.query('ALTER MATERIALIZED TABLE public.alice_moods REFRESH'));
  expect(await as('alice', 'direct', (c) => rows(c, 'SELECT id, mood::text, a FROM public.alice_moods ORDER BY id'))).toEqual([
    [1, 'calm', 'echo: m-one'],
    [2, 'cross', 'echo: m-two'],
  ]);
  await as('alice', 'proxy', (c) => c.query('DROP MATERIALIZED TABLE public.alice_moods'));
});

describe('hole 2: no other role can hold or block a table’s refresh', () => {
  test('bob holding the old advisory key and every lock he may take blocks no refresh; the catalog functions and rows refuse him', async () => {
    const { table_id: id } = await catalogRow('alice_labels');
    const bob = new pg.Client({ connectionString: roleUrl('bob', 'direct') });
    await bob.connect();
    try {
      // The key of old (an id beyond 32 bits no longer fits it) and the id as a key of its own.
      await bob.query('SELECT pg_advisory_lock($1, $2), pg_advisory_lock($3)', [OLD_LOCK_CLASS, Number(id) % 2 ** 31, String(id)]);
      await bob.query('BEGIN');
      await bob.query('LOCK TABLE ml_catalog.materialized_tables IN ACCESS SHARE MODE');
      for (const sql of [
        `SELECT ml_catalog.claim_refresh(${id})`,
        `SELECT ml_catalog.release_refresh(${id})`,
      ]) {
        await bob.query('SAVEPOINT s');
        expect([sql, await failure(bob.query(sql))]).toEqual([sql, '42P01']);
        await bob.query('ROLLBACK TO SAVEPOINT s');
      }
      for (const sql of [
        `SELECT ml_catalog.claim_refresh_as(gen_random_uuid(), ${id})`,
        `SELECT 1 FROM ml_catalog.materialized_tables FOR UPDATE`,
        `SELECT 1 FROM ml_catalog.materialized_tables FOR KEY SHARE`,
        `UPDATE ml_catalog.materialized_tables SET refresh_pid = pg_backend_pid()`,
        'LOCK TABLE ml_catalog.materialized_tables IN ROW EXCLUSIVE MODE',
      ]) {
        await bob.query('SAVEPOINT s');
        expect([sql, await failure(bob.query(sql))]).toEqual([sql, '42501']);
        await bob.query('ROLLBACK TO SAVEPOINT s');
      }
      await as('alice', 'direct', (c) => c.query(`INSERT INTO alices.reviews VALUES (9, 'nine')`));
      await asRefresher(async (s) => expect((await refreshAs(s, 'alice_labels'))?.rowsPredicted).toBe(1));
      await as('alice', 'direct', (c) => c.query(`INSERT INTO alices.reviews VALUES (10, 'ten')`));
      await as('alice', 'proxy', (c) => c.query('ALTER MATERIALIZED TABLE public.alice_labels REFRESH'));
      await bob.query('COMMIT');
    } finally {
      await bob.end();
    }
    expect(await as('alice', 'direct', (c) => rows(c, 'SELECT count(*)::int FROM public.alice_labels'))).toEqual([[10]]);
    expect(await catalogRow('alice_labels')).toMatchObject({ refresh_pid: null, status: 'ACTIVE' });
  });

  test('a claim held by a live session is skipped (waited for by ALTER ... REFRESH); a dead session’s claim is taken over', async () => {
    const { table_id: id } = await catalogRow('alice_labels');
    const holder = new pg.Client({ connectionString: roleUrl('alice', 'direct') });
    holder.on('error', () => undefined);
    await holder.connect();
    const pid = Number((await holder.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    expect((await holder.query(`SELECT ml_catalog.claim_refresh(${id}) AS claimed`)).rows[0].claimed).toBe(true);
    await as('alice', 'direct', (c) => c.query(`INSERT INTO alices.reviews VALUES (11, 'eleven')`));
    await asRefresher(async (s) => expect(await refreshAs(s, 'alice_labels')).toBeUndefined());
    // ALTER ... REFRESH waits for the claim: it ends when the holder releases it.
    const waiting = as('alice', 'proxy', (c) => c.query('ALTER MATERIALIZED TABLE public.alice_labels REFRESH'));
    await holder.query(`SELECT ml_catalog.release_refresh(${id})`);
    await waiting;
    expect(await as('alice', 'direct', (c) => rows(c, 'SELECT a FROM public.alice_labels WHERE id = 11'))).toEqual([['echo: eleven']]);
    // A claim whose session is gone is no claim.
    expect((await holder.query(`SELECT ml_catalog.claim_refresh(${id}) AS claimed`)).rows[0].claimed).toBe(true);
    await as('superuser', 'direct', (c) => c.query('SELECT pg_terminate_backend($1)', [pid]));
    await holder.end().catch(() => undefined);
    await as('alice', 'direct', (c) => c.query(`INSERT INTO alices.reviews VALUES (12, 'twelve')`));
    await asRefresher(async (s) => expect((await refreshAs(s, 'alice_labels'))?.rowsPredicted).toBe(1));
    expect(await catalogRow('alice_labels')).toMatchObject({ refresh_pid: null });
  });
});

describe('hole 3: a name needs its table, and ids tell nothing', () => {
  test('create_materialized refuses a name with no table, or another role’s table, with one error; the catalog is unchanged', async () => {
    await as('alice', 'direct', (c) => c.query('CREATE TABLE public.alice_plain (id integer)'));
    const call = (name: string) => `SELECT ml_catalog.create_materialized('public', '${name}', 'x', 'x', 'FULL', 60, 'ACTIVE', NULL, NULL, NULL, NULL, NULL, NULL, NULL)`;
    const before = await as('superuser', 'direct', (c) => rows(c, 'SELECT table_id, table_name FROM ml_catalog.materialized_tables ORDER BY 1'));
    await as('bob', 'direct', async (c) => {
      const errors: { code: string; message: string }[] = [];
      for (const name of ['nothing_here', 'alice_plain', 'alice_labels']) errors.push(await c.query(call(name)).then(() => ({ code: 'none', message: '' }), (e: { code: string; message: string }) => e));
      expect(errors.map((e) => [e.code, e.message])).toEqual(['nothing_here', 'alice_plain', 'alice_labels'].map((n) => ['42501', `must be owner of table public.${n}`]));
    });
    await as('bob', 'proxy', async (c) => {
      expect(await failure(c.query(call('nothing_here')))).toBe('42501');
    });
    expect(await as('superuser', 'direct', (c) => rows(c, 'SELECT table_id, table_name FROM ml_catalog.materialized_tables ORDER BY 1'))).toEqual(before);
    // The name was not taken: its owner creates it.
    await as('alice', 'proxy', (c) => c.query(`CREATE MATERIALIZED TABLE public.nothing_here FRESHNESS = INTERVAL '1' HOUR REFRESH_MODE = FULL AS SELECT 1 AS one`));
    await as('alice', 'proxy', (c) => c.query('DROP MATERIALIZED TABLE public.nothing_here'));
  });

  test('ids are drawn at random: two tables made one after the other are not numbered one after the other', async () => {
    const ids: number[] = [];
    for (const name of ['first_of_two', 'second_of_two']) {
      await as('alice', 'proxy', (c) => c.query(`CREATE MATERIALIZED TABLE public.${name} FRESHNESS = INTERVAL '1' HOUR REFRESH_MODE = FULL AS SELECT 1 AS one`));
      ids.push(Number((await catalogRow(name)).table_id));
    }
    expect(ids.every((i) => Number.isSafeInteger(i) && i > 0)).toBe(true);
    expect(Math.abs(ids[1]! - ids[0]!)).not.toBe(1);
    await as('alice', 'proxy', async (c) => {
      for (const name of ['first_of_two', 'second_of_two']) await c.query(`DROP MATERIALIZED TABLE public.${name}`);
    });
    await as('superuser', 'direct', async (c) => expect(await rows(c, `SELECT count(*)::int FROM pg_class WHERE relname = 'materialized_ids'`)).toEqual([[0]]));
  });
});
