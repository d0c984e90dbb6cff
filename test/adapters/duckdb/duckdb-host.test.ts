/**
 * DuckDBHost.execute with parameters: text parameters written into the statement as
 * literals must mean what binding them means, whatever they hold; other parameters are bound.
 */
import { DuckDBHost } from '../../../adapters/duckdb/index.js';

describe('DuckDB host parameters', () => {
  let host: DuckDBHost;
  beforeAll(async () => {
    host = await DuckDBHost.open();
    await host.execute(`CREATE TABLE p (name VARCHAR, n INTEGER, data BLOB)`);
  });
  afterAll(async () => {
    await host.close();
  });

  it.each([["it's"], ["'; DROP TABLE p; --"], ['$1'], ['back\\slash'], ['"quoted"'], ['ünïcødé ✓'], ['']])('round-trips the text %j', async (value) => {
    await host.execute('DELETE FROM p');
    await host.execute('INSERT INTO p (name) VALUES ($1)', [value]);
    const found = await host.execute(`SELECT name, $1 = name, '$1' FROM p WHERE name = $1 /* $1 */`, [value]);
    expect(found.rows).toEqual([[value, true, '$1']]);
  });

  it('uses each parameter by its number, more than once', async () => {
    const r = await host.execute('SELECT $2 || $1 || $2', ['a', 'b']);
    expect(r.rows).toEqual([['bab']]);
  });

  it('binds numbers, NULL and bytes', async () => {
    await host.execute('DELETE FROM p');
    await host.execute('INSERT INTO p VALUES ($1, $2, $3)', ['x', 7, new Uint8Array([1, 2, 3])]);
    await host.execute('INSERT INTO p VALUES ($1, $2, $3)', ['y', null, null]);
    const r = await host.execute('SELECT name, n, data FROM p WHERE n = $1 OR n IS NULL ORDER BY name', [7]);
    expect(r.rows).toEqual([
      ['x', 7, new Uint8Array([1, 2, 3])],
      ['y', null, null],
    ]);
  });
});
