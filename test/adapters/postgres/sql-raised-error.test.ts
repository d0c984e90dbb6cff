/**
 * Errors raised from plain Postgres SQL (adapters/postgres/sql-raised-error.ts) keep the
 * SQLSTATE they were raised with once mapped (postgres-errors.ts); other 22P02 errors stay.
 */
import { mapPostgresError } from '../../../adapters/postgres/postgres-errors.js';
import { raiseInSql, raisedError } from '../../../adapters/postgres/sql-raised-error.js';

const serverError = (code: string, message: string, detail?: string) => Object.assign(new Error(message), { code, detail });

describe('errors raised from plain SQL', () => {
  test('the SQLSTATE and message they were raised with, without the DETAIL of the cast', () => {
    const mapped = mapPostgresError(serverError('22P02', 'malformed array literal: "modelsql 2202E: column "v" holds 2-dimensional arrays"', 'Array value must start with "{" or dimension information.'));
    expect(mapped.sqlstate).toBe('2202E');
    expect(mapped.message).toBe('column "v" holds 2-dimensional arrays');
    expect(raisedError('22P02', 'malformed array literal: "modelsql 22023: two\nlines"')).toEqual({ sqlstate: '22023', message: 'two\nlines' });
  });

  test('any other error as the server sent it', () => {
    expect(mapPostgresError(serverError('22P02', 'malformed array literal: "abc"', 'Array value must start with "{" or dimension information.')).sqlstate).toBe('22P02');
    expect(raisedError('22023', 'malformed array literal: "modelsql 2202E: x"')).toBeUndefined();
    expect(raisedError('22P02', 'malformed array literal: "modelsql 2202: x"')).toBeUndefined();
    // A value in the data that reads as a raised message, with a SQLSTATE modelsql never raises: a client would retry a 40001.
    for (const state of ['40001', '57P01', '08006', '28P01']) {
      expect(raisedError('22P02', `malformed array literal: "modelsql ${state}: x"`)).toBeUndefined();
      expect(mapPostgresError(serverError('22P02', `malformed array literal: "modelsql ${state}: x"`)).sqlstate).toBe('22P02');
    }
  });

  test('raiseInSql takes only a SQLSTATE and quotes nothing of the message itself', () => {
    expect(raiseInSql('22023', "'it''s'")).toBe(`CAST('modelsql 22023: ' OPERATOR(pg_catalog.||) ('it''s') AS float8[])`);
    expect(() => raiseInSql("22023' || x", "'m'")).toThrow(/not a SQLSTATE modelsql raises/);
    expect(() => raiseInSql('40001', "'m'")).toThrow(/not a SQLSTATE modelsql raises/);
  });
});
