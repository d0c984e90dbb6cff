import { readFileSync } from 'node:fs';
import { parseScript } from '../../../core/sql/parser.js';
import { parseError } from '../../support/expect-error.js';
import { formatCreateModel, formatModelName, formatQualifiedName, formatStatement, quoteIdentifier, quoteString } from '../../../core/sql/format.js';
import { formatType } from '../../../core/sql/types.js';
import { formatError } from '../../../core/errors.js';
import type { CreateModelStatement, MlCall, QueryStatement, Statement } from '../../../core/sql/ast.js';

const corpus = (name: string): string[] =>
  readFileSync(new URL(`./corpus/${name}`, import.meta.url), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '');

/** Drops positions and statement text so that nodes from different texts compare equal. */
function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (['span', 'keySpan', 'valueSpan', 'nameSpan'].includes(k)) continue;
    out[k] = strip(v);
  }
  return out;
}

function one(sql: string): Statement {
  const statements = parseScript(sql);
  expect(statements).toHaveLength(1);
  return statements[0]!;
}

const slice = (sql: string, span: { start: number; end: number }): string => sql.slice(span.start, span.end);

describe('model statement corpus round-trips', () => {
  it.each(corpus('model-statements.sql'))('%s', (line) => {
    const first = one(line);
    expect(['host', 'query']).not.toContain(first.kind);
    expect(line.startsWith(first.text) || line.includes(first.text)).toBe(true);
    const formatted = formatStatement(first);
    const second = one(formatted);
    const { text: _a, ...a } = strip(first) as Record<string, unknown>;
    const { text: _b, ...b } = strip(second) as Record<string, unknown>;
    expect(b).toEqual(a);
    expect(formatStatement(second)).toBe(formatted);
  });

  it('covers every model statement kind', () => {
    const kinds = new Set(corpus('model-statements.sql').map((line) => one(line).kind));
    expect([...kinds].sort()).toEqual(
      ['alter-model', 'create-model', 'describe-model', 'drop-model', 'grant-model', 'revoke-model', 'show-create-model', 'show-model-versions', 'show-models'].sort(),
    );
  });
});

describe('host statement corpus passes through byte for byte', () => {
  it.each(corpus('host-statements.sql'))('%s', (line) => {
    const stmt = one(line);
    expect(stmt.kind).toBe('host');
    expect(stmt.text).toBe(line.replace(/;\s*$/, ''));
    expect(slice(line, stmt.span)).toBe(stmt.text);
  });

  it('keeps a whole script intact, statement by statement', () => {
    const script = corpus('host-statements.sql').join('\n');
    const statements = parseScript(script);
    expect(statements.every((s) => s.kind === 'host')).toBe(true);
    expect(statements.map((s) => s.text)).toEqual(corpus('host-statements.sql').map((l) => l.replace(/;\s*$/, '')));
  });
});

describe('CREATE MODEL', () => {
  it('builds the full node', () => {
    const sql = "CREATE OR REPLACE TEMP MODEL IF NOT EXISTS s.\"M\" INPUT (a INT COMMENT 'x', b ARRAY<FLOAT>) OUTPUT (y DOUBLE NOT NULL) COMMENT 'c' WITH ('k' = 'v')";
    const stmt = one(sql) as CreateModelStatement;
    expect(strip(stmt)).toEqual({
      kind: 'create-model',
      text: sql,
      orReplace: true,
      temporary: true,
      ifNotExists: true,
      name: {
        kind: 'model-name',
        parts: [
          { kind: 'identifier', value: 's', quoted: false },
          { kind: 'identifier', value: 'M', quoted: true },
        ],
      },
      input: [
        { kind: 'column', name: { kind: 'identifier', value: 'a', quoted: false }, type: { kind: 'type', name: 'INT', params: [], notNull: false }, comment: 'x' },
        {
          kind: 'column',
          name: { kind: 'identifier', value: 'b', quoted: false },
          type: { kind: 'type', name: 'ARRAY', params: [], elements: [{ kind: 'type', name: 'FLOAT', params: [], notNull: false }], notNull: false },
        },
      ],
      output: [{ kind: 'column', name: { kind: 'identifier', value: 'y', quoted: false }, type: { kind: 'type', name: 'DOUBLE', params: [], notNull: true } }],
      comment: 'c',
      options: [{ kind: 'option', key: 'k', value: 'v' }],
    });
    expect(slice(sql, stmt.name.span)).toBe('s."M"');
    expect(slice(sql, stmt.options[0]!.keySpan)).toBe("'k'");
    expect(slice(sql, stmt.options[0]!.valueSpan)).toBe("'v'");
    expect(slice(sql, stmt.input![1]!.span)).toBe('b ARRAY<FLOAT>');
    expect(slice(sql, stmt.input![1]!.type.span)).toBe('ARRAY<FLOAT>');
    expect(Object.isFrozen(stmt)).toBe(true);
    expect(Object.isFrozen(stmt.input![0]!.type)).toBe(true);
  });

  it('keeps the AS query verbatim with its span', () => {
    const sql = "select 1;\nCREATE MODEL m WITH ('a'='b') AS\n  SELECT $q$;$q$ AS x FROM t;";
    const stmt = parseScript(sql)[1] as CreateModelStatement;
    expect(stmt.asQuery!.text).toBe('SELECT $q$;$q$ AS x FROM t');
    expect(slice(sql, stmt.asQuery!.span)).toBe(stmt.asQuery!.text);
  });

  it('splits name$N into a name and a version', () => {
    const stmt = one('DROP MODEL s.m$12');
    expect(stmt.kind === 'drop-model' && stmt.name.version).toBe(12);
    expect(stmt.kind === 'drop-model' && stmt.name.parts.map((p) => p.value)).toEqual(['s', 'm']);
    expect(stmt.kind === 'drop-model' && slice('DROP MODEL s.m$12', stmt.name.parts[1]!.span)).toBe('m');
  });

  it('parses nested generic types with >> closers', () => {
    const stmt = one('CREATE MODEL m INPUT (a MAP<STRING, ARRAY<ARRAY<INT>>>) OUTPUT (b ROW<x ARRAY<INT>>) WITH (\'a\'=\'b\')') as CreateModelStatement;
    expect(stmt.input![0]!.type.elements![1]!.elements![0]!.elements![0]!.name).toBe('INT');
    expect(stmt.output![0]!.type.fields![0]!.type.name).toBe('ARRAY');
  });
});

describe('statement recognition', () => {
  it.each([
    ['DESCRIBE model', 'host'],
    ['DESC model', 'host'],
    ['DESC some_table', 'host'],
    ['DESCRIBE MODEL m', 'describe-model'],
    ['describe model extended', 'describe-model'],
    ['SHOW MODEL VERSIONS m', 'show-model-versions'],
    ['SHOW model', 'host'],
    ['CREATE TABLE model (a int)', 'host'],
    ['CREATE OR REPLACE VIEW v AS SELECT 1', 'host'],
    ['DROP TABLE m', 'host'],
    ['GRANT SELECT ON TABLE t TO r', 'host'],
    ['GRANT USAGE ON SCHEMA s TO r', 'host'],
    ['GRANT USAGE ON MODEL m TO r', 'grant-model'],
  ])('%s → %s', (sql, kind) => {
    expect(one(sql).kind).toBe(kind);
  });

  it('reads DESCRIBE MODEL EXTENDED without a name as the model "extended"', () => {
    const stmt = one('describe model extended');
    expect(stmt.kind === 'describe-model' && [stmt.extended, stmt.name.parts[0]!.value]).toEqual([false, 'extended']);
  });

  it('skips empty statements and keeps leading comments with the statement', () => {
    const sql = ';; /*+ hint */ select 1 ; ; drop model m ;';
    const statements = parseScript(sql);
    expect(statements.map((s) => [s.kind, s.text])).toEqual([
      ['host', '/*+ hint */ select 1'],
      ['drop-model', 'drop model m'],
    ]);
  });
});

function calls(sql: string): readonly MlCall[] {
  const stmt = one(sql);
  expect(stmt.kind).toBe('query');
  return (stmt as QueryStatement).calls;
}

describe('ML calls in host statements', () => {
  const predict = 'ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a, b))';

  it.each([
    ['plain FROM', `SELECT * FROM ${predict}`],
    ['join', `SELECT * FROM u JOIN ${predict} p ON p.a = u.a`],
    ['CTE', `WITH p AS (SELECT * FROM ${predict}) SELECT * FROM p`],
    ['subquery', `SELECT count(*) FROM (SELECT * FROM ${predict}) x`],
    ['INSERT SELECT', `INSERT INTO out SELECT a, score FROM ${predict}`],
    ['CREATE TABLE AS', `CREATE TABLE out AS SELECT * FROM ${predict}`],
    ['lower case', `select * from ${predict.toLowerCase()}`],
    ['multi-line', `SELECT *\nFROM\n  ${predict}\nWHERE a > 1`],
  ])('%s', (_name, sql) => {
    const found = calls(sql);
    expect(found).toHaveLength(1);
    expect(slice(sql, found[0]!.span).toUpperCase()).toBe(predict.toUpperCase());
    expect(slice(sql, found[0]!.nameSpan).toUpperCase()).toBe('ML_PREDICT');
    expect(found[0]!.function).toBe('ML_PREDICT');
  });

  it('finds two calls in one statement, in text order', () => {
    const sql = `SELECT * FROM ML_PREDICT(TABLE a, MODEL m1, DESCRIPTOR(x)) JOIN ML_EVALUATE(TABLE b, MODEL m2, DESCRIPTOR(y), DESCRIPTOR(x)) ON true`;
    const found = calls(sql);
    expect(found.map((c) => c.function)).toEqual(['ML_PREDICT', 'ML_EVALUATE']);
    expect(slice(sql, found[1]!.span)).toBe('ML_EVALUATE(TABLE b, MODEL m2, DESCRIPTOR(y), DESCRIPTOR(x))');
  });

  it("covers the whole TABLE(...) of Flink's form", () => {
    const sql = `SELECT * FROM TABLE(${predict}) AS p`;
    const [call] = calls(sql);
    expect(slice(sql, call!.span)).toBe(`TABLE(${predict})`);
    expect(slice(sql, call!.nameSpan)).toBe('ML_PREDICT');
  });

  it('reads every kind of argument value', () => {
    const sql = "SELECT * FROM ML_PREDICT(TABLE cat.s.t, MODEL s.m$2, DESCRIPTOR(a, \"B\"), MAP['async', 'true', 'timeout', 10], 'task', 1 + 2)";
    const [call] = calls(sql);
    expect(strip(call!.args.map((a) => a.value))).toEqual([
      {
        kind: 'table',
        name: [
          { kind: 'identifier', value: 'cat', quoted: false },
          { kind: 'identifier', value: 's', quoted: false },
          { kind: 'identifier', value: 't', quoted: false },
        ],
      },
      {
        kind: 'model',
        name: {
          kind: 'model-name',
          parts: [
            { kind: 'identifier', value: 's', quoted: false },
            { kind: 'identifier', value: 'm', quoted: false },
          ],
          version: 2,
        },
      },
      {
        kind: 'descriptor',
        columns: [
          { kind: 'identifier', value: 'a', quoted: false },
          { kind: 'identifier', value: 'B', quoted: true },
        ],
      },
      {
        kind: 'map',
        entries: [
          { key: 'async', value: 'true', literal: true },
          { key: 'timeout', value: '10', literal: false },
        ],
      },
      { kind: 'string', value: 'task' },
      { kind: 'other', text: '1 + 2' },
    ]);
    expect(call!.args.map((a) => slice(sql, a.span))).toEqual([
      'TABLE cat.s.t',
      'MODEL s.m$2',
      'DESCRIPTOR(a, "B")',
      "MAP['async', 'true', 'timeout', 10]",
      "'task'",
      '1 + 2',
    ]);
  });

  it('reads named arguments in any order, case-insensitively', () => {
    const sql = "SELECT * FROM ML_PREDICT(config => MAP['async','true'], Args => DESCRIPTOR(a), MODEL => MODEL m, INPUT => TABLE t)";
    const [call] = calls(sql);
    expect(call!.args.map((a) => a.name)).toEqual(['CONFIG', 'ARGS', 'MODEL', 'INPUT']);
    expect(call!.args.map((a) => a.value.kind)).toEqual(['map', 'descriptor', 'model', 'table']);
    expect(slice(sql, call!.args[3]!.span)).toBe('INPUT => TABLE t');
  });

  it('finds calls inside a TABLE (subquery) input, recursively', () => {
    const inner = 'ML_PREDICT(TABLE t, MODEL a, DESCRIPTOR(x))';
    const sub = `SELECT * FROM ${inner} WHERE y > 0`;
    const sql = `SELECT * FROM ML_PREDICT(TABLE (${sub}), MODEL b, DESCRIPTOR(y))`;
    const [outer] = calls(sql);
    const input = outer!.args[0]!.value;
    expect(input.kind).toBe('subquery');
    if (input.kind !== 'subquery') return;
    expect(input.text).toBe(sub);
    expect(slice(sql, input.span)).toBe(sub);
    expect(input.calls).toHaveLength(1);
    expect(slice(sql, input.calls[0]!.span)).toBe(inner);
    expect(slice(sql, outer!.span)).toBe(sql.slice('SELECT * FROM '.length));
  });

  it('treats TABLE(ML_PREDICT(...)) as an argument as a subquery holding the call', () => {
    const inner = 'ML_PREDICT(TABLE t, MODEL a, DESCRIPTOR(x))';
    const sql = `SELECT * FROM ML_PREDICT(TABLE(${inner}), MODEL b, DESCRIPTOR(y))`;
    const [outer] = calls(sql);
    const input = outer!.args[0]!.value;
    expect(input.kind === 'subquery' && slice(sql, input.calls[0]!.span)).toBe(inner);
  });

  it('ignores qualified and quoted names, strings and comments', () => {
    expect(one("SELECT x.ml_predict(1), \"ML_PREDICT\"(2), 'ML_PREDICT(3)' /* ML_PREDICT(4) */").kind).toBe('host');
  });

  it('gives spans into the whole script', () => {
    const sql = `select 1;\n\nSELECT * FROM ${predict};`;
    const stmt = parseScript(sql)[1] as QueryStatement;
    expect(slice(sql, stmt.span)).toBe(stmt.text);
    expect(slice(sql, stmt.calls[0]!.span)).toBe(predict);
  });
});

describe('syntax errors', () => {
  it('reports position, SQLSTATE and caret', () => {
    const sql = 'CREATE MODEL m WITH (\'a\' = \'b\') garbage';
    const error = parseError(sql);
    expect(error.sqlstate).toBe('42601');
    expect(error.message).toBe('syntax error at or near "garbage"');
    expect(error.position).toEqual({ offset: 32, line: 1, column: 33 });
    expect(error.sqlText).toBe(sql);
    expect(formatError(error)).toBe(
      ['ERROR:  42601: syntax error at or near "garbage"', `LINE 1: ${sql}`, `${' '.repeat('LINE 1: '.length + 32)}^`].join('\n'),
    );
  });

  it('points at line 3 of a multi-line script', () => {
    const sql = "SELECT 1;\nDROP MODEL m;\nALTER MODEL m SETT ('a' = 'b');";
    const error = parseError(sql);
    expect(error.message).toBe('syntax error at or near "SETT"');
    expect(error.position).toEqual({ offset: 38, line: 3, column: 15 });
    expect(formatError(error)).toBe("ERROR:  42601: syntax error at or near \"SETT\"\nLINE 3: ALTER MODEL m SETT ('a' = 'b');\n                      ^");
  });

  it('reports the end of input, or the ; that ends the statement', () => {
    const atEnd = parseError('DROP MODEL');
    expect(atEnd.message).toBe('syntax error at end of input');
    expect(atEnd.position).toEqual({ offset: 10, line: 1, column: 11 });
    const atSemicolon = parseError('DROP MODEL;\nSELECT 1');
    expect(atSemicolon.message).toBe('syntax error at or near ";"');
    expect(atSemicolon.position?.column).toBe(11);
  });

  it.each([
    ["CREATE MODEL m INPUT (a INT) WITH ('a'='b')", 'CREATE MODEL with INPUT must also declare OUTPUT', 16],
    ["CREATE MODEL m OUTPUT (a INT) WITH ('a'='b')", 'CREATE MODEL with OUTPUT must also declare INPUT', 16],
    ['CREATE MODEL m WITH ()', 'CREATE MODEL requires at least one option in WITH (...)', 22],
    ["CREATE MODEL m INPUT (a INT) OUTPUT (b INT) WITH ('a'='b') AS SELECT 1", 'CREATE MODEL ... AS query takes neither INPUT nor OUTPUT', 16],
    ["CREATE MODEL m WITH ('a'='b', 'a'='c')", "duplicate option key 'a'", 31],
    ['ALTER MODEL m SET ()', 'ALTER MODEL ... SET requires at least one option', 20],
    ['ALTER MODEL m RESET ()', 'ALTER MODEL ... RESET requires at least one option key', 22],
    ["CREATE MODEL m$2 WITH ('a'='b')", 'a model version is not allowed here: "m$2"', 14],
    ["CREATE MODEL m WITH ('a' = 5)", 'syntax error at or near "5": an option value must be a string literal', 28],
    ['SELECT * FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(t.a))', 'DESCRIPTOR columns must be unqualified column names, found "t.a"', 55],
    ["SELECT * FROM ML_PREDICT(TABLE t, MODEL => MODEL m)", 'cannot mix positional and named arguments in ML_PREDICT', 35],
    ["SELECT * FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a), MAP['k'])", 'MAP needs an even number of elements (key, value pairs)', 59],
    ['SELECT * FROM ML_PREDICT(TABLE t, , MODEL m)', 'syntax error at or near ","', 35],
    ['SELECT * FROM ML_PREDICT(TABLE t, MODEL m', 'syntax error at end of input', 42],
    ['SELECT * FROM ML_PREDICT(TABLE, MODEL m)', 'syntax error at or near ","', 31],
    ["CREATE MODEL m INPUT (a ARRAY<INT) OUTPUT (b INT) WITH ('a'='b')", 'syntax error at or near ")"', 34],
    ['GRANT USAGE ON MODEL m$2 TO analyst', 'a model version is not allowed here: "m$2"', 22],
    ['GRANT USAGE ON MODEL m FROM analyst', 'syntax error at or near "FROM"', 24],
    ['REVOKE USAGE ON MODEL m TO analyst', 'syntax error at or near "TO"', 25],
    ['GRANT USAGE ON MODEL m TO', 'syntax error at end of input', 26],
    ['GRANT USAGE ON MODEL m TO a, b', 'syntax error at or near ","', 28],
    ["GRANT USAGE ON MODEL m TO 'analyst'", `syntax error at or near "'analyst'"`, 27],
  ])('%s', (sql, message, column) => {
    const error = parseError(sql);
    expect(error.sqlstate).toBe('42601');
    expect(error.message).toBe(message);
    expect(error.position?.column).toBe(column);
    expect(error.sqlText).toBe(sql);
  });
});

describe('format', () => {
  it.each([
    ['sales', 'sales'],
    ['Sales', '"Sales"'],
    ['a b', '"a b"'],
    ['say "hi"', '"say ""hi"""'],
    ['select', '"select"'],
    ['model', '"model"'],
    ['m$1', 'm$1'],
    ['1abc', '"1abc"'],
  ])('quoteIdentifier(%j) = %s', (value, quoted) => {
    expect(quoteIdentifier(value)).toBe(quoted);
  });

  it('quotes strings', () => {
    expect(quoteString("it's")).toBe("'it''s'");
  });

  it('formats names with versions', () => {
    expect(formatQualifiedName(['s', 'My Model'], 3)).toBe('s."My Model"$3');
    const stmt = one('DROP MODEL S."M"$2');
    expect(stmt.kind === 'drop-model' && formatModelName(stmt.name)).toBe('s."M"$2');
  });

  it('formatCreateModel writes a statement that parses back to the same content', () => {
    const text = formatCreateModel({
      name: formatQualifiedName(['s', 'Sentiment']),
      orReplace: true,
      temporary: true,
      input: [
        { name: 'text', type: 'STRING', comment: "user's text" },
        { name: 'Weights', type: 'ARRAY<FLOAT>' },
      ],
      output: [
        { name: 'label', type: 'STRING' },
        { name: 'score', type: 'DOUBLE NOT NULL' },
      ],
      comment: 'classifies',
      options: [
        ['provider', 'openai'],
        ['api-key', "sk-'x'"],
      ],
    });
    expect(text).toBe(
      [
        'CREATE OR REPLACE TEMPORARY MODEL s."Sentiment"',
        'INPUT (',
        "  text STRING COMMENT 'user''s text',",
        '  "Weights" ARRAY<FLOAT>',
        ')',
        'OUTPUT (',
        '  label STRING,',
        '  score DOUBLE NOT NULL',
        ')',
        "COMMENT 'classifies'",
        'WITH (',
        "  'provider' = 'openai',",
        "  'api-key' = 'sk-''x'''",
        ')',
      ].join('\n'),
    );
    const stmt = one(text) as CreateModelStatement;
    expect(stmt.orReplace && stmt.temporary).toBe(true);
    expect(stmt.name.parts.map((p) => p.value)).toEqual(['s', 'Sentiment']);
    expect(stmt.input!.map((c) => [c.name.value, formatType(c.type), c.comment])).toEqual([
      ['text', 'STRING', "user's text"],
      ['Weights', 'ARRAY<FLOAT>', undefined],
    ]);
    expect(stmt.output!.map((c) => formatType(c.type))).toEqual(['STRING', 'DOUBLE NOT NULL']);
    expect(stmt.comment).toBe('classifies');
    expect(stmt.options.map((o) => [o.key, o.value])).toEqual([
      ['provider', 'openai'],
      ['api-key', "sk-'x'"],
    ]);
  });

  it('formatCreateModel keeps an AS query', () => {
    const text = formatCreateModel({ name: 'm', ifNotExists: true, options: [['provider', 'internal']], asQuery: 'SELECT $$a;b$$ AS x' });
    const stmt = one(text) as CreateModelStatement;
    expect(stmt.ifNotExists).toBe(true);
    expect(stmt.asQuery!.text).toBe('SELECT $$a;b$$ AS x');
  });
});
