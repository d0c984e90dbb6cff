/**
 * The proxy's model-statement routing (adapters/postgres/proxy/model-router.ts): a byte test
 * first, then the scanner and parser decide; no regular expression reads the SQL.
 */
import { bytesMayHoldModelSyntax, mayHoldModelSyntax, modelStatements, queryHoldsModelSyntax } from '../../../adapters/postgres/proxy/model-router.js';
import { query } from '../../../adapters/postgres/proxy/message-builders.js';

describe('model-statement routing', () => {
  it('lets through text without `model` or `ml_` without parsing it', () => {
    expect(mayHoldModelSyntax('SELECT abalance FROM pgbench_accounts WHERE aid = 1')).toBe(false);
    expect(mayHoldModelSyntax('SELECT modest, ml FROM t')).toBe(false);
    expect(mayHoldModelSyntax('select * from Ml_Predict(')).toBe(true);
    expect(mayHoldModelSyntax('SHOW MODELS')).toBe(true);
    // VECTOR_SEARCH holds neither word.
    expect(mayHoldModelSyntax('SELECT * FROM TABLE(Vector_Search(TABLE d, ARRAY[1.0], DESCRIPTOR(v), 3))')).toBe(true);
    expect(mayHoldModelSyntax('SELECT vector, search FROM vectors')).toBe(false);
    expect(modelStatements('SELECT * FROM TABLE(VECTOR_SEARCH(TABLE d, ARRAY[1.0], DESCRIPTOR(v), 3))', {})?.map((s) => s.kind)).not.toContain('host');
    expect(modelStatements('SELECT vector_search FROM t', {})).toBeUndefined();
    const q = query('SELECT 1');
    expect(bytesMayHoldModelSyntax(q, 5, q.length)).toBe(false);
  });

  it('routes model statements to the proxy and host SQL that only mentions the words to Postgres', () => {
    expect(modelStatements('SHOW MODELS', {})?.map((s) => s.kind)).not.toContain('host');
    expect(modelStatements("SELECT 'model', ml_x FROM models_table", {})).toBeUndefined();
    expect(queryHoldsModelSyntax(query('SHOW MODELS').subarray(5), {})).toBe(true);
    expect(queryHoldsModelSyntax(query('SELECT 1').subarray(5), {})).toBe(false);
  });

  it('reports a broken model statement, and leaves broken host SQL to Postgres (the scanner decides which)', () => {
    expect(() => modelStatements('CREATE MODEL (', {})).toThrow(expect.objectContaining({ sqlstate: '42601' }));
    // The key word only inside a string, or a comment: not a model statement, Postgres reports the error.
    expect(modelStatements("SELECT 'an unterminated model string", {})).toBeUndefined();
    expect(modelStatements('SELECT 1 +; -- ml_predict', {})).toBeUndefined();
  });
});
