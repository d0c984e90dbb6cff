import { cellText, formatCsv, formatJson, formatResult, formatTable, ResultPrinter, rowCountFooter, toJsonValue, uniqueKeys } from '../../cli/format.js';
import Table from 'cli-table3';
import type { QueryResult } from '../../core/model-types.js';

const result = (columns: readonly string[], rows: readonly (readonly unknown[])[], command = 'SELECT'): QueryResult => ({
  command,
  columns: columns.map((name) => ({ name, type: 'VARCHAR' })),
  rows,
});

describe('toJsonValue', () => {
  it('keeps safe bigints as numbers and turns others into strings', () => {
    expect(toJsonValue(12n)).toBe(12);
    expect(toJsonValue(-9007199254740991n)).toBe(-9007199254740991);
    expect(toJsonValue(9007199254740992n)).toBe('9007199254740992');
    expect(toJsonValue(-(2n ** 63n))).toBe('-9223372036854775808');
  });

  it('converts nested arrays, objects and maps deeply', () => {
    expect(toJsonValue([1n, { a: [2n ** 70n, null] }, new Map([['k', 3n]])])).toEqual([1, { a: ['1180591620717411303424', null] }, { k: 3 }]);
  });

  it('writes non-finite numbers, bytes and dates as strings', () => {
    expect(toJsonValue(Number.NaN)).toBe('NaN');
    expect(toJsonValue(-Infinity)).toBe('-Infinity');
    expect(toJsonValue(new Uint8Array([0, 15, 255]))).toBe('\\x000fff');
    expect(toJsonValue(new Date(Date.UTC(2024, 0, 2)))).toBe('2024-01-02T00:00:00.000Z');
  });

  it('uses the own toString of driver value objects', () => {
    class Decimal {
      toString(): string {
        return '12.50';
      }
    }
    expect(toJsonValue(new Decimal())).toBe('12.50');
  });
});

describe('cellText', () => {
  it('prints values in full', () => {
    expect(cellText(2n ** 64n, 'NULL')).toBe('18446744073709551616');
    expect(cellText(true, 'NULL')).toBe('true');
    expect(cellText(0.5, 'NULL')).toBe('0.5');
    expect(cellText(null, 'NULL')).toBe('NULL');
    expect(cellText(undefined, '')).toBe('');
    expect(cellText({ a: [1, 'x'] }, '')).toBe('{"a":[1,"x"]}');
  });
});

describe('formatTable', () => {
  it('draws a table of 150,000 rows (cli-table3 alone overflows the stack past about 120,000)', () => {
    const rows = Array.from({ length: 150_000 }, (_, i) => [i + 1, i % 3 === 0 ? 'skipped' : 'imported', i === 123_456 ? 'the widest note: 漢字' : null]);
    const lines = formatTable(result(['line', 'action', 'note'], rows)).split('\n');
    expect(lines.slice(0, 4)).toEqual([
      '┌────────┬──────────┬───────────────────────┐',
      '│  line  │  action  │         note          │',
      '├────────┼──────────┼───────────────────────┤',
      '│      1 │ skipped  │ NULL                  │',
    ]);
    expect(lines[3 + 123_456]).toBe('│ 123457 │ skipped  │ the widest note: 漢字 │');
    expect(lines.slice(-4)).toEqual(['│ 150000 │ imported │ NULL                  │', '└────────┴──────────┴───────────────────────┘', '(150000 rows)', '']);
    expect(lines).toHaveLength(150_000 + 6);
  }, 180_000);

  it('draws a table of more rows than it lays out at once exactly as one cli-table3 table', () => {
    const words = ['a', 'ünïcödé', '漢字テスト', 'x'.repeat(17), '', 'tab\there'];
    const rows = Array.from({ length: 2_500 }, (_, i) => [i, words[i % words.length], i % 7 === 0 ? null : words[(i * 5) % words.length]]);
    const table = new Table({ head: ['n', 'word', 'other'].map((content) => ({ content, hAlign: 'center' })) as unknown as string[], style: { head: [], border: [], compact: true } });
    for (const row of rows) table.push(row.map((v) => ({ content: v === null ? 'NULL' : String(v).replace('\t', '\\t'), hAlign: typeof v === 'number' ? ('right' as const) : ('left' as const) })));
    expect(formatTable(result(['n', 'word', 'other'], rows))).toBe(`${table.toString()}\n(2500 rows)\n`);
  });

  it('draws a table with headers and a row-count footer', () => {
    const text = formatTable(result(['id', 'name'], [[1, 'ann'], [22n, null]]));
    expect(text.split('\n')).toEqual([
      '┌────┬──────┐',
      '│ id │ name │',
      '├────┼──────┤',
      '│  1 │ ann  │',
      '│ 22 │ NULL │',
      '└────┴──────┘',
      '(2 rows)',
      '',
    ]);
  });

  it('says (1 row) and (0 rows)', () => {
    expect(formatTable(result(['x'], [[1]]))).toMatch(/\(1 row\)\n$/);
    expect(formatTable(result(['x'], []))).toMatch(/│ x │\n└───┘\n\(0 rows\)\n$/);
    expect(rowCountFooter(3)).toBe('(3 rows)');
  });

  it('prints the command tag of a statement without result columns', () => {
    expect(formatTable(result([], [], 'CREATE MODEL'))).toBe('CREATE MODEL\n');
  });

  it('sizes columns by display width for wide characters', () => {
    const lines = formatTable(result(['名前'], [['日本語'], ['é']])).split('\n');
    expect(lines[1]).toBe('│  名前  │');
    expect(lines[3]).toBe('│ 日本語 │');
    expect(lines[4]).toBe('│ é      │');
  });

  it('prints nested values as JSON and escapes control characters', () => {
    const text = formatTable(result(['v', 'w'], [[[1n, { a: 'b' }], 'tab\there\x1b[31m']]));
    expect(text).toContain('[1,{"a":"b"}]');
    expect(text).toContain('tab\\there\\x1b[31m');
    expect(text).not.toContain('\x1b');
  });
});

describe('formatCsv', () => {
  it('quotes per RFC 4180 with CRLF line ends', () => {
    const text = formatCsv(result(['a', 'b,c'], [['x,y', 'say "hi"'], ['line\nbreak', 'cr\rhere'], ['plain', ' spaced ']]));
    expect(text).toBe('a,"b,c"\r\n"x,y","say ""hi"""\r\n"line\nbreak","cr\rhere"\r\nplain, spaced \r\n');
  });

  it('writes NULL as an empty field and the empty string as ""', () => {
    expect(formatCsv(result(['a', 'b'], [[null, '']]))).toBe('a,b\r\n,""\r\n');
  });

  it('writes bigints in full, nested values as JSON, unicode as is', () => {
    expect(formatCsv(result(['n', 'j', 'u'], [[2n ** 63n, { k: [1, 2] }, 'žluťoučký 🐎']]))).toBe(
      'n,j,u\r\n9223372036854775808,"{""k"":[1,2]}",žluťoučký 🐎\r\n',
    );
  });

  it('prints nothing for a statement without result columns', () => {
    expect(formatCsv(result([], [], 'CREATE TABLE'))).toBe('');
  });
});

describe('formatJson', () => {
  it('prints one array of row objects on one line', () => {
    expect(formatJson(result(['id', 'name'], [[1, 'ann'], [2n, null]]))).toBe('[{"id":1,"name":"ann"},{"id":2,"name":null}]\n');
    expect(formatJson(result(['x'], []))).toBe('[]\n');
  });

  it('keeps precision of big integers and nests values', () => {
    expect(JSON.parse(formatJson(result(['big', 'arr'], [[2n ** 63n - 1n, [1.5, [2n]]]])))).toEqual([{ big: '9223372036854775807', arr: [1.5, [2]] }]);
  });

  it('makes repeated column names unique', () => {
    expect(uniqueKeys(['a', 'a', 'a_1', 'b'])).toEqual(['a', 'a_1', 'a_1_1', 'b']);
    expect(formatJson(result(['a', 'a'], [[1, 2]]))).toBe('[{"a":1,"a_1":2}]\n');
  });

  it('keeps unicode and escapes what JSON must', () => {
    expect(formatJson(result(['s'], [['日本 "q" \n']]))).toBe('[{"s":"日本 \\"q\\" \\n"}]\n');
  });

  it('prints nothing for a statement without result columns', () => {
    expect(formatJson(result([], [], 'CREATE MODEL'))).toBe('');
  });
});

describe('ResultPrinter', () => {
  it('separates table and csv results by an empty line, json by nothing', () => {
    for (const [format, expected] of [
      ['csv', 'x\r\n1\r\n\nx\r\n2\r\n'],
      ['json', '[{"x":1}]\n[{"x":2}]\n'],
    ] as const) {
      let out = '';
      const printer = new ResultPrinter((s) => (out += s), format);
      printer.print(result(['x'], [[1]]));
      printer.print(result([], [], 'CREATE TABLE'));
      printer.print(result(['x'], [[2]]));
      expect(out).toBe(expected);
    }
    let out = '';
    const printer = new ResultPrinter((s) => (out += s));
    printer.print(result([], [], 'CREATE MODEL'));
    printer.print(result(['x'], [[1]]));
    expect(out).toBe(`CREATE MODEL\n\n${formatResult(result(['x'], [[1]]), 'table')}`);
  });
});
