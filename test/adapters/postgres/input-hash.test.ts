/**
 * The digest of a materialized table's model inputs on Postgres: `hash_record_extended`
 * from Postgres 14 on, the md5 of the text form before (13 has no record hash). The SQL
 * chosen for the server the tests run against must run there.
 */
import type { Host } from '../../../core/host.js';
import { PostgresDialect } from '../../../adapters/postgres/postgres-dialect.js';
import { ADAPTERS } from '../../support/adapters.js';

const postgres = ADAPTERS.find((a) => a.name === 'postgres');
const COLUMNS = [
  { expression: 'a', type: 'integer' },
  { expression: 'b', type: 'text' },
];

test('the record hash is left to servers that have it', () => {
  const d = new PostgresDialect();
  expect(d.inputHash(COLUMNS, 130023)).toBeUndefined();
  expect(d.inputHash(COLUMNS, 140000)).toContain('pg_catalog.hash_record_extended');
  expect(d.inputHash(COLUMNS)).toContain('pg_catalog.hash_record_extended');
  expect(d.inputHash([{ expression: 'n', type: 'numeric' }], 170000)).toBeUndefined();
});

(postgres ? describe : describe.skip)('on the test server', () => {
  let host: Host;
  beforeAll(async () => {
    host = await postgres!.openHost();
  });
  afterAll(async () => {
    await host.close();
  });

  it('knows its version, and the digest it chooses runs and tells inputs apart', async () => {
    const shown = await host.execute('SHOW server_version_num');
    const version = await host.serverVersion!();
    expect(version).toBe(Number(shown.rows[0]![0]));
    expect(await host.serverVersion!()).toBe(version);
    const d = host.dialect;
    const digest = d.inputHash!(COLUMNS, version) ?? d.valuesDigest(COLUMNS.map((c) => c.expression));
    expect(digest.includes('hash_record_extended')).toBe(version >= 140000);
    const rows = await host.execute(`SELECT CAST(${digest} AS pg_catalog.text) FROM (VALUES (1, 'x'), (1, 'X'), (2, 'x'), (1, 'x')) AS s(a, b)`);
    const digests = rows.rows.map((r) => r[0]);
    expect(new Set(digests.slice(0, 3)).size).toBe(3);
    expect(digests[3]).toBe(digests[0]);
  });
});

(postgres ? describe : describe.skip)('digests of 64-bit values', () => {
  let host: Host;
  beforeAll(async () => {
    host = await postgres!.openHost();
  });
  afterAll(async () => {
    await host.close();
  });

  // Postgres's bigint hash folds the high half into the low one (lo ^ hi, to agree with
  // integer's hash), and timestamp/timestamptz hash as bigint: values that differ in both
  // halves alike share a hash, whatever the seed. A change between two of them must still be
  // a change of the digest (else the row is silently not predicted again).
  it.each([
    ['bigint', '0', '4294967297'],
    ['bigint', '-1', '-4294967298'],
    // Postgres's epoch (0 microseconds) and 2^32 + 1 microseconds later.
    ['timestamp without time zone', "'2000-01-01 00:00:00'", "'2000-01-01 01:11:34.967297'"],
    ['timestamp with time zone', "'2000-01-01 00:00:00+00'", "'2000-01-01 01:11:34.967297+00'"],
  ])('%s %s and %s digest apart', async (type, a, b) => {
    const version = await host.serverVersion!();
    const d = host.dialect;
    const columns = [{ expression: 's.v', type }];
    const digest = d.inputHash!(columns, version) ?? d.valuesDigest(columns.map((c) => c.expression));
    const rows = await host.execute(`SELECT CAST(${digest} AS pg_catalog.text), CAST(s.v AS pg_catalog.text) FROM (VALUES (CAST(${a} AS ${type})), (CAST(${b} AS ${type}))) AS s(v)`);
    expect(rows.rows[0]![1]).not.toBe(rows.rows[1]![1]);
    expect(rows.rows[0]![0]).not.toBe(rows.rows[1]![0]);
  });
});
