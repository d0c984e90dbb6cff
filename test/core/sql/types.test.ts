import { formatType, formatTypeAsWritten, isAssignable, parseDataType, typeCategory } from '../../../core/sql/types.js';
import { SqlSyntaxError } from '../../../core/errors.js';

const canonical = (text: string): string => formatType(parseDataType(text));

describe('parseDataType and formatType', () => {
  it.each([
    ['INT', 'INT'],
    ['integer', 'INT'],
    ['INT4', 'INT'],
    ['BIGINT', 'BIGINT'],
    ['int8', 'BIGINT'],
    ['SMALLINT', 'SMALLINT'],
    ['TINYINT', 'TINYINT'],
    ['FLOAT', 'FLOAT'],
    ['REAL', 'FLOAT'],
    ['float4', 'FLOAT'],
    ['DOUBLE', 'DOUBLE'],
    ['FLOAT8', 'DOUBLE'],
    ['double precision', 'DOUBLE'],
    ['DECIMAL(18,3)', 'DECIMAL(18, 3)'],
    ['numeric(10,2)', 'DECIMAL(10, 2)'],
    ['NUMERIC', 'DECIMAL'],
    ['BOOLEAN', 'BOOLEAN'],
    ['bool', 'BOOLEAN'],
    ['STRING', 'STRING'],
    ['VARCHAR', 'STRING'],
    ['text', 'STRING'],
    ['VARCHAR(20)', 'VARCHAR(20)'],
    ['character varying(10)', 'VARCHAR(10)'],
    ['CHAR(3)', 'CHAR(3)'],
    ['BYTES', 'BYTES'],
    ['BLOB', 'BYTES'],
    ['bytea', 'BYTES'],
    ['DATE', 'DATE'],
    ['TIMESTAMP', 'TIMESTAMP'],
    ['TIMESTAMP(3)', 'TIMESTAMP(3)'],
    ['TIMESTAMP WITH TIME ZONE', 'TIMESTAMP_LTZ'],
    ['timestamp without time zone', 'TIMESTAMP'],
    ['TIMESTAMP(3) WITH LOCAL TIME ZONE', 'TIMESTAMP_LTZ(3)'],
    ['TIMESTAMP_MS', 'TIMESTAMP(3)'],
    ['HUGEINT', 'DECIMAL(38, 0)'],
    ['UBIGINT', 'DECIMAL(20, 0)'],
    ['UINTEGER', 'BIGINT'],
    ['FLOAT[]', 'ARRAY<FLOAT>'],
    ['DOUBLE[3]', 'ARRAY<DOUBLE>'],
    ['integer[]', 'ARRAY<INT>'],
    ['INTEGER[][]', 'ARRAY<ARRAY<INT>>'],
    ['ARRAY<FLOAT>', 'ARRAY<FLOAT>'],
    ['ARRAY<ARRAY<DOUBLE>>', 'ARRAY<ARRAY<DOUBLE>>'],
    ['MAP<STRING, INT>', 'MAP<STRING, INT>'],
    ['MAP(VARCHAR, INTEGER)', 'MAP<STRING, INT>'],
    ['MAP<STRING,MAP<STRING,ARRAY<INT>>>', 'MAP<STRING, MAP<STRING, ARRAY<INT>>>'],
    ['STRUCT(a INTEGER, b VARCHAR)', 'ROW<a INT, b STRING>'],
    ['STRUCT("A b" INTEGER)', 'ROW<"A b" INT>'],
    ['ROW<x INT, y ARRAY<FLOAT>>', 'ROW<x INT, y ARRAY<FLOAT>>'],
    ['ROW(x INT)', 'ROW<x INT>'],
    ['VARCHAR(2147483647)', 'STRING'],
    ['INT NOT NULL', 'INT NOT NULL'],
    ['ARRAY<INT NOT NULL> NOT NULL', 'ARRAY<INT NOT NULL> NOT NULL'],
    ['UUID', 'UUID'],
    ['JSON', 'JSON'],
    ["ENUM('a', 'b')", 'ENUM'],
  ])('%s → %s', (text, expected) => {
    expect(canonical(text)).toBe(expected);
  });

  it('keeps the written form in the node', () => {
    const t = parseDataType('DOUBLE[3]');
    expect(t).toMatchObject({ name: 'ARRAY', params: [3], elements: [{ name: 'DOUBLE' }], notNull: false });
    expect(parseDataType('character varying(10)')).toMatchObject({ name: 'CHARACTER VARYING', params: [10] });
    expect(parseDataType('TIMESTAMP(3) WITH TIME ZONE')).toMatchObject({ name: 'TIMESTAMP WITH TIME ZONE', params: [3] });
  });

  it.each(['INTEGER', 'DOUBLE[3]', 'STRUCT(a INTEGER, "B" VARCHAR(3))', 'TIMESTAMP(3) WITH TIME ZONE', 'MAP<STRING, ARRAY<INT>> NOT NULL', 'ROW<`x y` INT>'])(
    'formatTypeAsWritten(%s) parses back to the same node',
    (text) => {
      const strip = (value: unknown): unknown =>
        JSON.parse(JSON.stringify(value, (k, v: unknown) => (k === 'span' ? undefined : v)));
      expect(strip(parseDataType(formatTypeAsWritten(parseDataType(text))))).toEqual(strip(parseDataType(text)));
    },
  );

  it.each(['', 'ARRAY<INT', 'DECIMAL(a)', 'INT INT', 'MAP(INT)', 'ARRAY<INT>>'])('rejects %j', (text) => {
    expect(() => parseDataType(text)).toThrow(SqlSyntaxError);
  });
});

describe('typeCategory', () => {
  it.each([
    ['INT', 'integer'],
    ['HUGEINT', 'integer'],
    ['REAL', 'float'],
    ['numeric(3,1)', 'decimal'],
    ['bool', 'boolean'],
    ['character varying', 'string'],
    ['BLOB', 'bytes'],
    ['TIMESTAMPTZ', 'temporal'],
    ['FLOAT[]', 'array'],
    ['MAP(INT, INT)', 'map'],
    ['STRUCT(a INT)', 'row'],
    ['UUID', 'other'],
  ])('%s → %s', (text, category) => {
    expect(typeCategory(parseDataType(text))).toBe(category);
  });
});

describe('isAssignable', () => {
  it.each([
    ['TINYINT', 'SMALLINT', true],
    ['SMALLINT', 'INT', true],
    ['INTEGER', 'BIGINT', true],
    ['INT', 'INT', true],
    ['BIGINT', 'INT', false],
    ['INT', 'TINYINT', false],
    ['INT', 'DOUBLE', true],
    ['BIGINT', 'FLOAT', true],
    ['INT', 'DECIMAL(10, 2)', true],
    ['FLOAT', 'DOUBLE', true],
    ['REAL', 'FLOAT8', true],
    ['DOUBLE', 'FLOAT', false],
    ['DECIMAL(10, 2)', 'DOUBLE', true],
    ['DECIMAL(10, 2)', 'DECIMAL(12, 3)', true],
    ['DECIMAL(10, 2)', 'DECIMAL(10, 3)', false],
    ['DOUBLE', 'DECIMAL(10, 2)', false],
    ['DOUBLE', 'INT', false],
    ['VARCHAR(10)', 'STRING', true],
    ['CHAR(3)', 'STRING', true],
    ['text', 'STRING', true],
    ['VARCHAR(10)', 'VARCHAR(20)', true],
    ['VARCHAR(20)', 'VARCHAR(10)', false],
    ['STRING', 'VARCHAR(10)', false],
    ['INT', 'STRING', false],
    ['BLOB', 'BYTES', true],
    ['INT NOT NULL', 'INT', true],
    ['INT', 'INT NOT NULL', false],
    ['FLOAT[]', 'ARRAY<DOUBLE>', true],
    ['DOUBLE[]', 'ARRAY<FLOAT>', false],
    ['DOUBLE[3]', 'ARRAY<DOUBLE>', true],
    ['MAP(VARCHAR, INTEGER)', 'MAP<STRING, BIGINT>', true],
    ['STRUCT(a INT)', 'ROW<b BIGINT>', true],
    ['STRUCT(a INT, b INT)', 'ROW<a INT>', false],
    ['DATE', 'TIMESTAMP', true],
    ['TIMESTAMP(3)', 'TIMESTAMP', true],
    ['TIMESTAMP', 'TIMESTAMP(3)', false],
    ['TIMESTAMP', 'DATE', false],
    ['BOOLEAN', 'bool', true],
    ['BOOLEAN', 'INT', false],
    ['UUID', 'UUID', true],
  ])('%s → %s: %s', (from, to, expected) => {
    expect(isAssignable(parseDataType(from), parseDataType(to))).toBe(expected);
  });
});
