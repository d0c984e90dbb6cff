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
