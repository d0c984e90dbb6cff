/**
 * Model statements over the extended query protocol, in raw protocol messages, each answer
 * compared with what Postgres sends for the same messages on a plain statement of the same
 * shape: Describe runs nothing that writes, binary parameters are read as Postgres reads
 * them.
 */
import type pg from 'pg';
import { bind, describe as describeMessage, execute, parse, SYNC } from '../../../adapters/postgres/proxy/message-builders.js';
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

beforeAll(async () => {
  models = writeModelFiles();
  fx = await proxyFixture();
  db = await fx.client();
  await createPointsAndModel(db, models.linear);
}, 60_000);

afterAll(async () => {
  await fx?.close();
});

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
