/**
 * Assertion helpers for modelsql errors.
 */
import { ModelSqlError } from '../../core/errors.js';
import { parseScript } from '../../core/sql/parser.js';

/** Awaits `promise`, expects it to reject with a ModelSqlError of `sqlstate` whose message matches `message`. */
export async function expectSqlError(promise: Promise<unknown>, sqlstate: string, message?: RegExp): Promise<ModelSqlError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof ModelSqlError)) throw new Error(`expected a ModelSqlError ${sqlstate}, got ${caught === undefined ? 'success' : String(caught)}`);
  expect({ sqlstate: caught.sqlstate, message: caught.message }).toEqual({ sqlstate, message: message ? expect.stringMatching(message) : expect.any(String) });
  return caught;
}

/** The ModelSqlError that parsing `sql` throws (the test fails when it parses). */
export function parseError(sql: string): ModelSqlError {
  try {
    parseScript(sql);
  } catch (error) {
    expect(error).toBeInstanceOf(ModelSqlError);
    return error as ModelSqlError;
  }
  throw new Error(`expected an error for ${sql}`);
}
