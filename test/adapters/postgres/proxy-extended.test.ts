/**
 * Model statements over the extended query protocol, in raw protocol messages, each answer
 * compared with what Postgres sends for the same messages on a plain statement of the same
 * shape: Describe runs nothing that writes, a portal runs once, Execute's row limit holds for
 * model DDL too, portals live as long as their transaction, statement names are shared with
 * the upstream session's, binary parameters are read as Postgres reads them.
 */
import type pg from 'pg';
import { bind, describe as describeMessage, execute, parse, query, SYNC } from '../../../adapters/postgres/proxy/message-builders.js';
import { writeModelFiles, type ModelFiles } from '../../support/model-files.js';
import { createPointsAndModel, proxyFixture, roundTrip, takeOverClient, type ProxyFixture } from './proxy-helpers.js';

/** Close ('C') of a statement or portal. */
function close(target: 'S' | 'P', name: string): Buffer {
  const body = Buffer.from(`${target}${name}\0`);
  const head = Buffer.alloc(5);
  head[0] = 0x43;
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

let fx: ProxyFixture;
let models: ModelFiles;
let db: pg.Client;

/** The first rows of `pts` through `lin`, and the same shape without a model. */
const PREDICT = 'SELECT id, y FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) AS p WHERE id <= 2 ORDER BY id';
const PLAIN = 'SELECT id, b AS y FROM pts WHERE id <= 2 ORDER BY id';

beforeAll(async () => {
  models = writeModelFiles();
  fx = await proxyFixture();
  db = await fx.client();
  await createPointsAndModel(db, models.linear);
}, 60_000);

afterAll(async () => {
  await fx?.close();
});

/** Prediction runs recorded so far (the lineage log). */
async function predictionRuns(): Promise<number> {
  const { rows } = await db.query('SELECT count(*)::int AS n FROM ml_catalog.prediction_runs');
  return rows[0].n as number;
}

async function modelNames(): Promise<string[]> {
  const { rows } = await db.query('SHOW MODELS');
  return rows.map((r: { model_name: string }) => r.model_name);
}

describe('Describe runs no model DDL that writes', () => {
  const create = (name: string) => `CREATE MODEL ${name} INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${models.linear}')`;

  test('CREATE MODEL described as a statement, then executed, creates the model once', async () => {
    const raw = await takeOverClient(fx);
    expect(await roundTrip(raw, [parse('s', create('described')), describeMessage('S', 's'), SYNC])).toEqual(['1', 't:', 'n', 'Z:I']);
    expect(await modelNames()).not.toContain('described');
    expect(await roundTrip(raw, [bind('', 's', []), describeMessage('P', ''), execute(''), SYNC])).toEqual(['2', 'n', 'C:CREATE MODEL', 'Z:I']);
    expect(await modelNames()).toContain('described');
  });

  test('a portal of CREATE MODEL described and closed without Execute creates nothing', async () => {
    const raw = await takeOverClient(fx);
    expect(await roundTrip(raw, [parse('', create('never')), bind('', '', []), describeMessage('P', ''), close('P', ''), SYNC])).toEqual(['1', '2', 'n', '3', 'Z:I']);
    expect(await modelNames()).not.toContain('never');
  });

  test('SHOW MODELS described answers its columns', async () => {
    const raw = await takeOverClient(fx);
    const answer = await roundTrip(raw, [parse('', 'SHOW MODELS'), describeMessage('S', ''), bind('', '', []), describeMessage('P', ''), execute(''), SYNC]);
    expect(answer.filter((m) => m !== 'D:' && !m.startsWith('D:'))).toEqual(['1', 't:', 'T', '2', 'T', 'C:SHOW MODELS', 'Z:I']);
  });
});

describe('a portal runs once', () => {
  beforeAll(async () => {
    await db.query('CREATE TABLE once_out (id int, y float8)');
  });

  test('a second Execute of a completed ML_PREDICT portal runs no model and answers SELECT 0, as Postgres', async () => {
    const messages = (sql: string) => [parse('', sql), bind('', '', []), execute(''), execute(''), SYNC];
    const expected = await roundTrip(await takeOverClient(fx, { direct: true }), messages(PLAIN));
    expect(expected.slice(-2)).toEqual(['C:SELECT 0', 'Z:I']);
    const before = await predictionRuns();
    const answer = await roundTrip(await takeOverClient(fx), messages(PREDICT));
    expect(answer.map((m) => m[0])).toEqual(expected.map((m) => m[0]));
    expect(answer.slice(-2)).toEqual(['C:SELECT 0', 'Z:I']);
    expect(await predictionRuns()).toBe(before + 1);
  });

  test('a second Execute of a completed INSERT ... ML_PREDICT portal writes nothing more: 55000, as Postgres', async () => {
    const insert = 'INSERT INTO once_out SELECT id, y FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) AS p WHERE id <= 2';
    const messages = (sql: string) => [parse('', sql), bind('', '', []), execute(''), execute(''), SYNC];
    expect(await roundTrip(await takeOverClient(fx, { direct: true }), messages('INSERT INTO once_out SELECT id, b FROM pts WHERE id <= 2'))).toEqual(['1', '2', 'C:INSERT 0 2', 'E:55000', 'Z:I']);
    // Postgres's failed Execute rolled its batch back.
    expect((await db.query('SELECT count(*)::int AS n FROM once_out')).rows[0].n).toBe(0);
    expect(await roundTrip(await takeOverClient(fx), messages(insert))).toEqual(['1', '2', 'C:INSERT 0 2', 'E:55000', 'Z:I']);
    // The proxy's first Execute wrote in a statement of its own, which committed (docs/proxy.md, half-close); it ran once.
    expect((await db.query('SELECT count(*)::int AS n FROM once_out')).rows[0].n).toBe(2);
  });

  test('SHOW MODELS executed with a row limit answers PortalSuspended between slices, as Postgres a query', async () => {
    await db.query(`CREATE MODEL lin_b INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${models.linear}')`);
    const count = (await db.query('SHOW MODELS')).rows.length;
    const messages = (sql: string) => [parse('', sql), bind('', '', []), execute('', 1), execute('', count - 1), execute('', 1), execute('', 1), SYNC];
    const direct = await takeOverClient(fx, { direct: true });
    await roundTrip(direct, [query('BEGIN')]);
    const expected = await roundTrip(direct, messages(`SELECT * FROM generate_series(1, ${count})`));
    // A slice that fills the limit is suspended, even when it holds the last row; then nothing is left.
    expect(expected.map((m) => m[0]).join('')).toBe(`12Ds${'D'.repeat(count - 1)}sCCZ`);
    const raw = await takeOverClient(fx);
    await roundTrip(raw, [query('BEGIN')]);
    const answer = await roundTrip(raw, messages('SHOW MODELS'));
    expect(answer.map((m) => m[0]).join('')).toBe(`12Ds${'D'.repeat(count - 1)}sCCZ`);
    expect(answer.filter((m) => m.startsWith('C:'))).toEqual(['C:SHOW MODELS', 'C:SHOW MODELS']);
    expect(await roundTrip(raw, [query('COMMIT')])).toEqual(['C:COMMIT', 'Z:I']);
  });
});

describe('portals live as long as their transaction', () => {
  test('the unnamed portal of an ML_PREDICT suspended in a transaction block outlives a Sync, as Postgres', async () => {
    for (const [direct, sql] of [[true, PLAIN], [false, PREDICT]] as const) {
      const raw = await takeOverClient(fx, { direct });
      await roundTrip(raw, [query('BEGIN')]);
      expect(await roundTrip(raw, [parse('', sql), bind('', '', []), execute('', 1), SYNC])).toEqual(['1', '2', expect.stringMatching(/^D:1,/), 's', 'Z:T']);
      expect(await roundTrip(raw, [execute('', 1), SYNC])).toEqual([expect.stringMatching(/^D:2,/), 's', 'Z:T']);
      expect(await roundTrip(raw, [query('COMMIT')])).toEqual(['C:COMMIT', 'Z:I']);
    }
  });

  test('a portal whose transaction ended is gone: 34000 naming it, as Postgres', async () => {
    for (const [direct, sql] of [[true, PLAIN], [false, PREDICT]] as const) {
      const raw = await takeOverClient(fx, { direct });
      // Ended by the Sync of its implicit transaction.
      expect(await roundTrip(raw, [parse('', sql), bind('p', '', []), execute('p', 1), SYNC])).toEqual(['1', '2', expect.stringMatching(/^D:1,/), 's', 'Z:I']);
      expect(await roundTrip(raw, [execute('p', 1), SYNC])).toEqual(['E:34000', 'Z:I']);
      // Ended by COMMIT; a portal never executed as well.
      await roundTrip(raw, [query('BEGIN')]);
      expect(await roundTrip(raw, [parse('', sql), bind('q', '', []), execute('q', 1), bind('r', '', []), SYNC])).toEqual(['1', '2', expect.stringMatching(/^D:1,/), 's', '2', 'Z:T']);
      await roundTrip(raw, [query('COMMIT')]);
      expect(await roundTrip(raw, [execute('q', 1), SYNC])).toEqual(['E:34000', 'Z:I']);
      expect(await roundTrip(raw, [execute('r', 1), SYNC])).toEqual(['E:34000', 'Z:I']);
    }
  });
});

describe('statement names', () => {
  test('a name is shared with the upstream session’s statements (Parse, PREPARE): 42P05 both ways, as Postgres', async () => {
    for (const [direct, sql] of [[true, PLAIN], [false, PREDICT]] as const) {
      const raw = await takeOverClient(fx, { direct });
      // A plain statement first, then the model statement under its name; closed, the name is free.
      expect(await roundTrip(raw, [parse('s', 'SELECT 1'), SYNC])).toEqual(['1', 'Z:I']);
      expect(await roundTrip(raw, [parse('s', sql), SYNC])).toEqual(['E:42P05', 'Z:I']);
      expect(await roundTrip(raw, [close('S', 's'), parse('s', 'SELECT 2'), SYNC])).toEqual(['3', '1', 'Z:I']);
      // The model statement first, then a plain one under its name.
      expect(await roundTrip(raw, [parse('t', sql), SYNC])).toEqual(['1', 'Z:I']);
      expect(await roundTrip(raw, [parse('t', 'SELECT 3'), SYNC])).toEqual(['E:42P05', 'Z:I']);
      // The model statement is still the one under the name.
      expect((await roundTrip(raw, [bind('', 't', []), execute(''), SYNC])).map((m) => m[0]).join('')).toBe('2DDCZ');
      // SQL PREPARE names one too.
      await roundTrip(raw, [query('PREPARE u AS SELECT 4')]);
      expect(await roundTrip(raw, [parse('u', sql), SYNC])).toEqual(['E:42P05', 'Z:I']);
    }
  });
});

describe('parameters', () => {
  const int32 = (n: number) => Buffer.from([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);

  test('binary parameters of the wrong length get Postgres’s 08P01 and 22P03, not a wrong value', async () => {
    const sql = (plain: boolean) => (plain ? 'SELECT id FROM pts WHERE id = $1' : 'SELECT id FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) AS p WHERE id = $1');
    for (const direct of [true, false]) {
      const raw = await takeOverClient(fx, { direct });
      // int4 sent as one byte; int2 sent as four bytes.
      expect(await roundTrip(raw, [parse('', sql(direct), [23]), bind('', '', [Buffer.from([1])], [1]), execute(''), SYNC])).toEqual(['1', 'E:08P01', 'Z:I']);
      expect(await roundTrip(raw, [parse('', sql(direct), [21]), bind('', '', [int32(2)], [1]), execute(''), SYNC])).toEqual(['1', 'E:22P03', 'Z:I']);
      expect(await roundTrip(raw, [parse('', `${sql(direct)} OR $2`, [23, 16]), bind('', '', ['1', Buffer.from([1, 0])], [0, 1]), execute(''), SYNC])).toEqual(['1', 'E:22P03', 'Z:I']);
    }
  });

  test('binary numeric and uuid parameters (JDBC’s setBigDecimal, setObject(UUID))', async () => {
    // numeric: digit count, weight, sign, display scale, base-10,000 digits.
    const numeric = (count: number, weight: number, sign: number, scale: number, digits: number[]) => {
      const b = Buffer.alloc(8 + 2 * count);
      b.writeUInt16BE(count, 0);
      b.writeInt16BE(weight, 2);
      b.writeUInt16BE(sign, 4);
      b.writeUInt16BE(scale, 6);
      digits.forEach((d, i) => b.writeUInt16BE(d, 8 + 2 * i));
      return b;
    };
    const values: [Buffer, string][] = [
      [numeric(2, 0, 0, 3, [12, 3450]), '12.345'],
      [numeric(3, 1, 0x4000, 2, [1, 2345, 6700]), '-12345.67'],
      [numeric(1, -2, 0, 8, [12]), '0.00000012'],
      [numeric(1, 1, 0, 0, [7]), '70000'],
      [numeric(0, 0, 0, 2, []), '0.00'],
      [numeric(0, 0, 0xc000, 0, []), 'NaN'],
    ];
    const sql = (plain: boolean) => `SELECT $1::text AS v${plain ? ' FROM pts' : ' FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) AS p'} WHERE id = 1`;
    for (const direct of [true, false]) {
      const raw = await takeOverClient(fx, { direct });
      for (const [bytes, text] of values) {
        expect(await roundTrip(raw, [parse('', sql(direct), [1700]), bind('', '', [bytes], [1]), execute(''), SYNC])).toEqual(['1', '2', `D:${text}`, 'C:SELECT 1', 'Z:I']);
      }
      const uuid = '123e4567-e89b-12d3-a456-426614174000';
      expect(await roundTrip(raw, [parse('', sql(direct), [2950]), bind('', '', [Buffer.from(uuid.replace(/-/g, ''), 'hex')], [1]), execute(''), SYNC])).toEqual(['1', '2', `D:${uuid}`, 'C:SELECT 1', 'Z:I']);
    }
  });

  test('Parse may declare more parameter types than the text uses, as Postgres allows', async () => {
    const sql = (plain: boolean) => `SELECT id${plain ? ' FROM pts' : ' FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) AS p'} WHERE id = $1`;
    for (const direct of [true, false]) {
      const raw = await takeOverClient(fx, { direct });
      expect(await roundTrip(raw, [parse('', sql(direct), [23, 25]), describeMessage('S', ''), bind('', '', ['3', 'unused']), execute(''), SYNC])).toEqual(['1', 't:23,25', 'T', '2', 'D:3', 'C:SELECT 1', 'Z:I']);
    }
  });
});
