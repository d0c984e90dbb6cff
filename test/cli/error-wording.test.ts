/**
 * One wording per error in every front end: the library's error, the CLI's `ERROR:` text
 * and the proxy's ErrorResponse carry the same SQLSTATE and message.
 */
import { openDuckDB } from '../../adapters/duckdb/index.js';
import { mapDuckDBError } from '../../adapters/duckdb/duckdb-errors.js';
import { parseErrorFields } from '../../adapters/postgres/proxy/message-readers.js';
import { errorMessage } from '../../adapters/postgres/proxy/result-messages.js';
import { ModelSqlError, QueryCanceledError, formatError } from '../../core/errors.js';

/** The SQLSTATE and message of the proxy's ErrorResponse for `error` (the payload after type and length). */
function proxyWording(error: unknown): { code?: string; message?: string } {
  const fields = parseErrorFields(errorMessage(error).subarray(5));
  return { code: fields.get('C'), message: fields.get('M') };
}

/** The SQLSTATE and message of the CLI's text for `error`. */
function cliWording(error: unknown): { code?: string; message?: string } {
  const [, code, message] = /^ERROR: {2}(\w{5}): (.*)/.exec(formatError(error)) ?? [];
  return { code, message };
}

describe('error wording', () => {
  it("a cancelled DuckDB statement is Postgres' 57014 wording in the library, the CLI and the proxy", () => {
    const error = mapDuckDBError(new Error('INTERRUPT Error: Interrupted!'));
    expect(error).toBeInstanceOf(QueryCanceledError);
    const expected = { code: '57014', message: 'canceling statement due to user request' };
    expect({ code: error.sqlstate, message: error.message }).toEqual(expected);
    expect(cliWording(error)).toEqual(expected);
    expect(proxyWording(error)).toEqual(expected);
  });

  it('an error that is not ours is XX000 "internal error: ..." in the CLI and the proxy alike', () => {
    const expected = { code: 'XX000', message: 'internal error: socket went away' };
    expect(cliWording(new Error('socket went away'))).toEqual(expected);
    expect(proxyWording(new Error('socket went away'))).toEqual(expected);
    // a driver error with a SQLSTATE keeps it
    const driver = Object.assign(new Error('relation "t" does not exist'), { sqlstate: '42P01' });
    expect(cliWording(driver)).toEqual({ code: '42P01', message: 'relation "t" does not exist' });
    expect(proxyWording(driver)).toEqual({ code: '42P01', message: 'relation "t" does not exist' });
  });

  it('a host error from a real DuckDB session reads the same in the library and the CLI', async () => {
    const session = await openDuckDB();
    try {
      const error = await session.sql('select * from no_such_table').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ModelSqlError);
      const { sqlstate, message } = error as ModelSqlError;
      expect(cliWording(error)).toEqual({ code: sqlstate, message: message.split('\n')[0] });
      expect(proxyWording(error)).toEqual({ code: sqlstate, message: message.split('\n')[0] });
    } finally {
      await session.close();
    }
  });
});
