/**
 * DuckDB's catalog errors get the SQLSTATE Postgres gives the same failure
 * (adapters/duckdb/duckdb-errors.ts), from the real driver's messages.
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { mapDuckDBError } from '../../../adapters/duckdb/duckdb-errors.js';

let connection: DuckDBConnection;
beforeAll(async () => {
  connection = await (await DuckDBInstance.create(':memory:')).connect();
  await connection.run('CREATE TABLE t (a INTEGER); CREATE VIEW v AS SELECT 1; CREATE SCHEMA s; CREATE MACRO m(a) AS a; CREATE SEQUENCE q; CREATE INDEX i ON t (a)');
});

async function stateOf(sql: string): Promise<string> {
  try {
    await connection.run(sql);
  } catch (error) {
    return mapDuckDBError(error).sqlstate;
  }
  throw new Error(`${sql} ran`);
}

it.each([
  ['CREATE TABLE t (a INTEGER)', '42P07'],
  ['CREATE VIEW v AS SELECT 1', '42P07'],
  ['CREATE TABLE v (a INTEGER)', '42P07'],
  ['CREATE SEQUENCE q', '42P07'],
  ['CREATE INDEX i ON t (a)', '42P07'],
  ['CREATE SCHEMA s', '42P06'],
  ['CREATE MACRO m(a) AS a', '42710'],
  ["CREATE TYPE ty AS ENUM ('a'); CREATE TYPE ty AS ENUM ('a')", '42710'],
  ['SELECT * FROM nope', '42P01'],
  ['DROP TABLE nope', '42P01'],
  ['SELECT * FROM nos.t', '42P01'],
  ['CREATE TABLE nos.x (a INTEGER)', '3F000'],
  ['SELECT nofn(1)', '42883'],
  ['SELECT * FROM range_nope(3)', '42883'],
])('%s: %s', async (sql, state) => {
  expect(await stateOf(sql)).toBe(state);
});
