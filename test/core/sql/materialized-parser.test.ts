/**
 * The materialized-table statements (Flink 1.20, FLIP-435): a corpus that parses, the
 * nodes of a full CREATE, syntax errors with positions, and which queries are incremental
 * (core/materialized/incremental-query.ts).
 */
import { readFileSync } from 'node:fs';
import { parseScript } from '../../../core/sql/parser.js';
import { parseError } from '../../support/expect-error.js';
import type { CreateMaterializedTableStatement } from '../../../core/sql/ast.js';
import { carriesColumn, incrementalShape } from '../../../core/materialized/incremental-query.js';

const corpus = readFileSync(new URL('./corpus/materialized-statements.sql', import.meta.url), 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '');

function create(sql: string): CreateMaterializedTableStatement {
  const [statement] = parseScript(sql);
  expect(statement?.kind).toBe('create-materialized-table');
  return statement as CreateMaterializedTableStatement;
}

describe('materialized-table statements', () => {
  it.each(corpus)('%s', (line) => {
    const statements = parseScript(line);
    expect(statements).toHaveLength(1);
    expect(statements[0]!.kind).toMatch(/materialized-table/);
    expect(line.startsWith(statements[0]!.text)).toBe(true);
  });

  it('reads every clause of CREATE', () => {
    const s = create(corpus[1]!);
    expect(s.table.map((p) => p.value)).toEqual(['s', 't']);
    expect(s.primaryKey!.map((p) => p.value)).toEqual(['id']);
    expect(s.comment).toBe('labels');
    expect(s.options.map((o) => [o.key, o.value])).toEqual([['format', 'x']]);
    expect(s.freshness).toMatchObject({ amount: 1, unit: 'MINUTE', seconds: 60 });
    expect(s.refreshMode!.mode).toBe('CONTINUOUS');
    expect(s.asQuery.text).toBe('select * from ml_predict(table s.src, model m$2, descriptor(a, b)) p where p.y > 0');
    expect(s.asQuery.calls).toHaveLength(1);
    expect(create(corpus[2]!).freshness).toMatchObject({ amount: 2, unit: 'HOUR', seconds: 7200 });
  });

  it.each([
    ["CREATE MATERIALIZED TABLE t FRESHNESS = INTERVAL 'soon' SECOND AS SELECT 1", 'FRESHNESS must be a whole number', 1, 50],
    ["CREATE MATERIALIZED TABLE t FRESHNESS = INTERVAL '5' WEEK AS SELECT 1", 'SECOND, MINUTE, HOUR or DAY', 1, 54],
    ["CREATE MATERIALIZED TABLE t AS SELECT 1", 'syntax error at or near "AS"', 1, 29],
    ["CREATE MATERIALIZED TABLE t FRESHNESS = INTERVAL '5' SECOND REFRESH_MODE = SOMETIMES AS SELECT 1", 'CONTINUOUS or FULL', 1, 76],
    ["CREATE MATERIALIZED TABLE t PARTITIONED BY (a) FRESHNESS = INTERVAL '5' SECOND AS SELECT 1", 'PARTITIONED BY is not supported', 1, 29],
    ["CREATE MATERIALIZED TABLE t (PRIMARY KEY (id)) FRESHNESS = INTERVAL '5' SECOND AS SELECT 1", 'syntax error at or near ")"', 1, 46],
    ['ALTER MATERIALIZED TABLE t STOP', 'syntax error at or near "STOP"', 1, 28],
    ['ALTER MATERIALIZED TABLE t REFRESH PARTITION (a = 1)', 'REFRESH PARTITION is not supported', 1, 36],
    ['DROP MATERIALIZED TABLE', 'syntax error at end of input', 1, 24],
    ['SHOW MATERIALIZED TABLES FROM s', 'syntax error at or near "FROM"', 1, 26],
  ])('%s: 42601 at the offending token', (sql, message, line, column) => {
    const error = parseError(sql);
    expect(error.sqlstate).toBe('42601');
    expect(error.message).toContain(message);
    expect(error.position).toMatchObject({ line, column });
  });
});

describe('incremental queries', () => {
  const shape = (query: string) => {
    const sql = `CREATE MATERIALIZED TABLE t FRESHNESS = INTERVAL '1' SECOND AS ${query}`;
    return incrementalShape(create(sql), sql);
  };

  it.each([
    'SELECT id, label FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))',
    'SELECT p.id, upper(p.label) AS l FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body)) AS p WHERE p.stars > 1 AND (p.label IS NOT NULL)',
    'SELECT * FROM TABLE(ML_PREDICT(TABLE s.src, MODEL m$2, DESCRIPTOR(a, b), MAP[\'timeout\', \'5s\'])) p',
  ])('%s is incremental', (query) => {
    expect(shape(query)).toHaveProperty('call');
  });

  it.each([
    ['SELECT count(*) FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))', '"count" in the projection'],
    ['SELECT DISTINCT label FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))', 'DISTINCT'],
    ['SELECT id FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body)) p JOIN other o ON o.id = p.id', '"JOIN" after ML_PREDICT'],
    ['SELECT id FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body)) ORDER BY id', '"ORDER" after ML_PREDICT'],
    ['SELECT id FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body)) WHERE id IN (SELECT id FROM other)', 'reads other rows'],
    ['SELECT id FROM ML_PREDICT(TABLE (SELECT * FROM src), MODEL m, DESCRIPTOR(body))', 'subquery'],
    ['SELECT id FROM src', '0 ML calls'],
    ['SELECT a.id FROM other a, ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))', 'only item of the FROM clause'],
    ['SELECT id, rank() OVER (ORDER BY id) FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))', '"OVER" in the projection'],
  ])('%s is not: %s', (query, reason) => {
    const result = shape(query);
    expect(result).toHaveProperty('reason');
    expect((result as { reason: string }).reason).toContain(reason);
  });

  it('finds the key columns the result carries unchanged', () => {
    const items = (query: string) => (shape(query) as Exclude<ReturnType<typeof shape>, { reason: string }>).items;
    expect(carriesColumn(items('SELECT id, label FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))'), 'id')).toBe(true);
    expect(carriesColumn(items('SELECT p.id AS id FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body)) p'), 'id')).toBe(true);
    expect(carriesColumn(items('SELECT p.* FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body)) p'), 'id')).toBe(true);
    expect(carriesColumn(items('SELECT id + 1 AS id FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))'), 'id')).toBe(false);
    expect(carriesColumn(items('SELECT id AS key FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))'), 'id')).toBe(false);
  });

  it('finds the names the query reads around its call, or that it may read the whole row', () => {
    const reads = (query: string) => {
      const r = (shape(query) as Exclude<ReturnType<typeof shape>, { reason: string }>).reads;
      return r === 'all' ? r : [...r].sort();
    };
    expect(reads('SELECT id, label FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))')).toEqual(['id', 'label']);
    expect(reads('SELECT p.id, upper("Title") AS t, price * 2 FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body)) AS p WHERE p.score > 0.5')).toEqual(['as', 'id', 'p', 'price', 'score', 't', 'title', 'upper', 'where']);
    for (const query of [
      'SELECT * FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))',
      'SELECT id, p.* FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body)) p',
      'SELECT id, to_jsonb(p) FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body)) AS p',
      'SELECT id FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body)) AS "P" WHERE "P" IS NOT NULL',
      'SELECT id, row(p.*) FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body)) AS p',
      "SELECT id, COLUMNS('^x') FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))",
      'SELECT * EXCLUDE (body) FROM ML_PREDICT(TABLE src, MODEL m, DESCRIPTOR(body))',
    ]) expect([query, reads(query)]).toEqual([query, 'all']);
  });
});
