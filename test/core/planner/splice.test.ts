/**
 * The pure text steps of the rewrite, from input/expected fixtures: each case's calls are
 * replaced by `<R1>`, `<R2>`, ... in text order.
 */
import { DuckDBDialect } from '../../../adapters/duckdb/duckdb-dialect.js';
import type { QueryStatement } from '../../../core/sql/ast.js';
import { parseScript } from '../../../core/sql/parser.js';
import { callAlias, describedRelation, inputQuerySql, spliceCalls, spliceCallsMapped } from '../../../core/planner/splice.js';
import { readCases } from './fixture-cases.js';

describe('spliceCalls', () => {
  it.each(readCases('splice.sql').map((c) => [c.name, c]))('%s', (_name, c) => {
    const [statement] = parseScript(c.input) as QueryStatement[];
    expect(statement!.kind).toBe('query');
    const relations = statement!.calls.map((_, i) => `<R${i + 1}>`);
    expect(spliceCalls(c.input, statement!.span, statement!.calls, relations)).toBe(c.expected);
  });
});

describe('spliceCallsMapped', () => {
  it.each(readCases('splice.sql').map((c) => [c.name, c]))('maps every offset back: %s', (_name, c) => {
    const [statement] = parseScript(c.input) as QueryStatement[];
    const calls = statement!.calls;
    const relations = calls.map((_, i) => `(SELECT relation ${i + 1})`);
    const spliced = spliceCallsMapped(c.input, statement!.span, calls, relations);
    // Every copied character maps to itself in the input; every character of a relation to its call's start.
    let out = 0;
    let from = statement!.span.start;
    calls.forEach((call, i) => {
      for (; from < call.span.start; from++, out++) expect(spliced.originalOffset(out)).toBe(from);
      for (let k = 0; k < relations[i]!.length + callAlias(call, i).length; k++, out++) expect(spliced.originalOffset(out)).toBe(call.span.start);
      from = call.span.end;
    });
    for (; from < statement!.span.end; from++, out++) expect(spliced.originalOffset(out)).toBe(from);
    expect(out).toBe(spliced.text.length);
  });
});

describe('describedRelation', () => {
  it('is the input with the OUTPUT columns as typed NULLs', () => {
    expect(describedRelation(new DuckDBDialect(), 'SELECT * FROM t', [{ name: 'Score', type: 'DOUBLE' }])).toBe(
      '(SELECT described_input.*, CAST(NULL AS DOUBLE) AS "Score" FROM (SELECT * FROM t\n) AS described_input)',
    );
  });
});

describe('inputQuerySql', () => {
  const dialect = new DuckDBDialect();
  const inputOf = (sql: string) => {
    const [statement] = parseScript(sql) as QueryStatement[];
    const arg = statement!.calls[0]!.args[0]!.value;
    if (arg.kind !== 'table' && arg.kind !== 'subquery') throw new Error('not an input');
    return arg;
  };

  it('reads a table, quoting every part', () => {
    const sql = 'SELECT * FROM ML_PREDICT(TABLE s."My T", MODEL m, DESCRIPTOR(a))';
    expect(inputQuerySql(inputOf(sql), sql, dialect)).toBe('SELECT * FROM "s"."My T"');
  });

  it('runs a subquery as spliced', () => {
    const sql = 'SELECT * FROM ML_PREDICT(TABLE (SELECT a FROM t WHERE a > 1), MODEL m, DESCRIPTOR(a))';
    expect(inputQuerySql(inputOf(sql), sql, dialect, 'SELECT a FROM t WHERE a > 1')).toBe('SELECT a FROM t WHERE a > 1');
  });

  it('selects from a subquery that is one ML call', () => {
    const sql = 'SELECT * FROM ML_PREDICT(TABLE (ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a))), MODEL n, DESCRIPTOR(y))';
    expect(inputQuerySql(inputOf(sql), sql, dialect, ' <R1> ')).toBe('SELECT * FROM <R1>');
  });
});
