/**
 * `standard_conforming_strings = off` on a real Postgres, through the proxy and the library:
 * Postgres then reads a backslash in `'..'` as an escape, so `'x\' , ...'` is one string. The
 * scanner must read it the same way, or text Postgres treats as a literal would be taken
 * for model SQL (a model stage run on it, or a statement split out of it). Model statements
 * are refused while the setting is off. Set-up as in attack-fixture.ts.
 */
import pg from 'pg';
import { connectPostgres } from '../../adapters/postgres/index.js';
import { aliceModel, aliceServer, as, failure, roleUrl, rows, tag } from './attack-fixture.js';

const MODEL = `alices.strings_${tag}`;
const VICTIM = `alices.victim_${tag}`;

/** A literal under scs = off; under scs = on, a string, then an ML call outside any string. */
const CRAFTED = `SELECT 'x\\' , (SELECT count(*) FROM ML_PREDICT(TABLE notes, MODEL ${MODEL}, DESCRIPTOR(txt))) --'`;
/** A literal under scs = off; under scs = on, a string, then a DROP, then an ML query. */
const SMUGGLED = `SELECT 'x\\'; DROP TABLE ${VICTIM}; SELECT * FROM ML_PREDICT(TABLE notes, MODEL ${MODEL}, DESCRIPTOR(txt)) --'`;

beforeAll(async () => {
  await as('alice', 'proxy', (c) => c.query(aliceModel('alices', MODEL.split('.')[1]!)));
  await as('alice', 'direct', (c) => c.query(`CREATE TABLE ${VICTIM} AS SELECT 1 AS i`));
});

beforeEach(() => aliceServer.reset());

/** The victim table is still there and the model's endpoint heard nothing. */
async function expectNothingHappened(): Promise<void> {
  await as('alice', 'direct', async (c) => expect(await rows(c, `SELECT count(*)::int FROM ${VICTIM}`)).toEqual([[1]]));
  expect(aliceServer.requests).toHaveLength(0);
}

/** One of the client's ways in: the statements' last result rows, or the SQLSTATE of a failure. */
interface Way {
  run(sql: string): Promise<unknown[][]>;
  close(): Promise<void>;
}

const WAYS: Record<'proxy' | 'library', () => Promise<Way>> = {
  async proxy() {
    const c = new pg.Client({ connectionString: roleUrl('alice', 'proxy') });
    await c.connect();
    return {
      async run(sql) {
        const r = (await c.query({ text: sql, rowMode: 'array' })) as unknown as pg.QueryArrayResult | pg.QueryArrayResult[];
        return (Array.isArray(r) ? r[r.length - 1]! : r).rows;
      },
      close: () => c.end(),
    };
  },
  async library() {
    const db = await connectPostgres(roleUrl('alice', 'direct'), { allowedUrlPrefixes: ['*'] });
    return {
      async run(sql) {
        return (await db.sql(sql)).rows.map((r) => [...r]);
      },
      close: () => db.close(),
    };
  },
};

describe.each(['proxy', 'library'] as const)('standard_conforming_strings off, through the %s', (via) => {
  let way: Way;
  beforeEach(async () => (way = await WAYS[via]()));
  afterEach(() => way.close());

  test('a literal that would read as an ML call with the setting on is a literal: no model runs', async () => {
    await way.run('SET standard_conforming_strings = off');
    expect(await way.run(CRAFTED)).toEqual([[`x' , (SELECT count(*) FROM ML_PREDICT(TABLE notes, MODEL ${MODEL}, DESCRIPTOR(txt))) --`]]);
    await expectNothingHappened();
  });

  test('a script turning the setting off is split as Postgres reads it: no statement is smuggled out of a literal', async () => {
    expect(await way.run(`SET standard_conforming_strings = off; ${SMUGGLED}`)).toEqual([[expect.stringContaining(`'; DROP TABLE ${VICTIM};`)]]);
    await expectNothingHappened();
    // The same sent after the setting is off.
    expect(await way.run(SMUGGLED)).toEqual([[expect.stringContaining(`'; DROP TABLE ${VICTIM};`)]]);
    await expectNothingHappened();
  });

  test('model statements are refused while the setting is off, and run again once it is on', async () => {
    await way.run('SET standard_conforming_strings = off');
    const predict = `SELECT a FROM ML_PREDICT(TABLE notes, MODEL ${MODEL}, DESCRIPTOR(txt))`;
    expect(await failure(way.run(predict))).toBe('0A000');
    expect(await failure(way.run(`SHOW MODELS FROM alices`))).toBe('0A000');
    expect(await failure(way.run(`SET standard_conforming_strings = on; SELECT 1; SET standard_conforming_strings = off; ${predict}`))).toBe('0A000');
    await expectNothingHappened();
    await way.run('SET standard_conforming_strings = on');
    expect(await way.run(predict)).toEqual([['echo: hello']]);
    expect(aliceServer.requests).toHaveLength(1);
  });
});

test('the victim role owns the table the smuggled DROP names (the DROP would have worked)', async () => {
  await as('alice', 'direct', async (c) => {
    await c.query('BEGIN');
    await c.query(`DROP TABLE ${VICTIM}`);
    await c.query('ROLLBACK');
  });
});
