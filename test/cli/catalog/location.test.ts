/**
 * Catalog locations (cli/catalog/location.ts): parsing `duckdb:` and `postgres://`, and
 * how they read in messages.
 */
import { describeLocation, parseLocation } from '../../../cli/catalog/location.js';
import { expectSqlError } from '../../support/expect-error.js';

describe('parseLocation', () => {
  it('reads a DuckDB file and a Postgres URL', () => {
    expect(parseLocation('duckdb:data/shop.duckdb')).toEqual({ kind: 'duckdb', path: 'data/shop.duckdb' });
    expect(parseLocation('duckdb:/abs/x:y.duckdb')).toEqual({ kind: 'duckdb', path: '/abs/x:y.duckdb' });
    expect(parseLocation('postgres://me@db:5432/shop')).toEqual({ kind: 'postgres', url: 'postgres://me@db:5432/shop' });
    expect(parseLocation('postgresql://db/shop?sslmode=require')).toEqual({ kind: 'postgres', url: 'postgresql://db/shop?sslmode=require' });
  });

  it.each(['shop.duckdb', 'duckdb:', 'mysql://db/shop', 'postgres://', 'postgres://[bad/shop'])('refuses %s (22023)', async (text) => {
    await expectSqlError(Promise.resolve().then(() => parseLocation(text)), '22023', /not a (catalog location|valid Postgres URL)/);
  });
});

describe('describeLocation', () => {
  it('masks a Postgres password and keeps the rest', () => {
    expect(describeLocation(parseLocation('postgres://me:s3cr%40t@db:5432/shop'))).toBe('postgres://me:******@db:5432/shop');
    expect(describeLocation(parseLocation('postgres://me@db/shop'))).toBe('postgres://me@db/shop');
    expect(describeLocation(parseLocation('duckdb:shop.duckdb'))).toBe('duckdb:shop.duckdb');
  });
});
