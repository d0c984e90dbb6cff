/**
 * Catalog locations (cli/catalog/location.ts): parsing `duckdb:`, `postgres://` and
 * `postgres:`, the settings a Postgres location takes from the environment as libpq does,
 * and how locations read in messages.
 */
import { describeLocation, parseLocation } from '../../../cli/catalog/location.js';
import { expectSqlError } from '../../support/expect-error.js';

/** Parses with exactly `env` as the environment. */
const parse = (text: string, env: NodeJS.ProcessEnv = {}) => parseLocation(text, env);
/** The URL a Postgres location connects to. */
const urlOf = (text: string, env: NodeJS.ProcessEnv) => {
  const location = parse(text, env);
  return location.kind === 'postgres' ? location.url : undefined;
};

describe('parseLocation', () => {
  it('reads a DuckDB file and a Postgres URL', () => {
    expect(parse('duckdb:data/shop.duckdb')).toEqual({ kind: 'duckdb', path: 'data/shop.duckdb' });
    expect(parse('duckdb:/abs/x:y.duckdb')).toEqual({ kind: 'duckdb', path: '/abs/x:y.duckdb' });
    expect(parse('postgres://me@db:5432/shop')).toEqual({ kind: 'postgres', url: 'postgresql://me@db:5432/shop', shown: 'postgres://me@db:5432/shop' });
    expect(parse('postgresql://db/shop?sslmode=require')).toEqual({
      kind: 'postgres',
      url: 'postgresql://db/shop?sslmode=require&uselibpqcompat=true',
      shown: 'postgresql://db/shop?sslmode=require',
    });
  });

  it('fills what a Postgres URL leaves out from the PG* variables, the URL winning', () => {
    const env = { PGHOST: 'db.internal', PGPORT: '6543', PGUSER: 'ann', PGPASSWORD: 'pw', PGDATABASE: 'other' };
    expect(urlOf('postgres:///shop', env)).toBe('postgresql://ann:pw@db.internal:6543/shop');
    expect(urlOf('postgres://bob@db2/shop', env)).toBe('postgresql://bob:pw@db2:6543/shop');
    expect(urlOf('postgres://', env)).toBe('postgresql://ann:pw@db.internal:6543/other');
    // DuckDB locations take nothing from the environment.
    expect(parse('duckdb:x.duckdb', env)).toEqual({ kind: 'duckdb', path: 'x.duckdb' });
  });

  it('postgres: alone is DATABASE_URL, else the PG* variables; messages show it without the password', () => {
    const fromUrl = parse('postgres:', { DATABASE_URL: 'postgres://ann:s3cret@db.internal:5433/shop', PGHOST: 'ignored-for-what-the-url-says' });
    expect(fromUrl.kind === 'postgres' && fromUrl.url).toBe('postgresql://ann:s3cret@db.internal:5433/shop');
    expect(describeLocation(fromUrl)).toBe('postgresql://ann:******@db.internal:5433/shop');
    const fromVariables = parse('postgresql:', { PGHOST: '/var/run/postgresql', PGDATABASE: 'shop', PGSSLMODE: 'disable' });
    expect(fromVariables.kind === 'postgres' && fromVariables.url).toBe('postgresql:///shop?host=%2Fvar%2Frun%2Fpostgresql&sslmode=disable&uselibpqcompat=true');
    expect(describeLocation(fromVariables)).toBe('postgresql:///shop?host=%2Fvar%2Frun%2Fpostgresql&sslmode=disable');
  });

  it.each([
    ['an unknown URL parameter', 'postgres://db/shop?sslmod=require', {}, /unknown connection setting "sslmod"/],
    ['a libpq variable modelsql does not apply', 'postgres://db/shop', { PGSERVICE: 'shop' }, /PGSERVICE is set, but modelsql does not apply it/],
    ['a bad port from the environment', 'postgres:///shop', { PGPORT: 'x' }, /invalid port "x"/],
    ['a DATABASE_URL of another scheme', 'postgres:', { DATABASE_URL: 'mysql://db/shop' }, /DATABASE_URL is not a postgres:\/\/ URL/],
    ['an sslmode the client cannot honour', 'postgres:', { PGSSLMODE: 'prefer' }, /sslmode "prefer" is not supported/],
  ])('refuses %s (22023), never falling back to another database', async (_what, text, env, message) => {
    await expectSqlError(Promise.resolve().then(() => parse(text, env)), '22023', message);
  });

  it.each(['shop.duckdb', 'duckdb:', 'mysql://db/shop', 'postgres://[bad/shop', 'postgres:shop'])('refuses %s (22023)', async (text) => {
    await expectSqlError(Promise.resolve().then(() => parse(text)), '22023', /not a (catalog location|valid Postgres URL)/);
  });
});

describe('describeLocation', () => {
  it('masks a Postgres password and keeps the rest', () => {
    expect(describeLocation(parse('postgres://me:s3cr%40t@db:5432/shop'))).toBe('postgres://me:******@db:5432/shop');
    expect(describeLocation(parse('postgres://me@db/shop'))).toBe('postgres://me@db/shop');
    expect(describeLocation(parse('duckdb:shop.duckdb'))).toBe('duckdb:shop.duckdb');
  });
});
