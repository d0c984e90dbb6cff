import { isStatementComplete, leadingTokens, scan, splitStatements, tokenize } from '../../../core/sql/lexer.js';
import { SqlSyntaxError } from '../../../core/errors.js';

function catchError(fn: () => unknown): SqlSyntaxError {
  try {
    fn();
  } catch (error) {
    return error as SqlSyntaxError;
  }
  throw new Error('expected an error');
}

const kinds = (sql: string): string[] => tokenize(sql).map((t) => `${t.kind}:${t.value}`);

describe('tokenize', () => {
  it('folds plain identifiers and keeps quoted ones', () => {
    expect(kinds('SELECT Foo, "Bar", `Baz`')).toEqual([
      'identifier:select',
      'identifier:foo',
      'punctuation:,',
      'quoted-identifier:Bar',
      'punctuation:,',
      'quoted-identifier:Baz',
    ]);
  });

  it('undoes "" and `` escapes in quoted identifiers', () => {
    expect(tokenize('"a""b" `c``d`').map((t) => t.value)).toEqual(['a"b', 'c`d']);
  });

  it("reads '' escapes in strings and keeps the source text", () => {
    const [t] = tokenize("'it''s'");
    expect(t).toMatchObject({ kind: 'string', value: "it's", text: "'it''s'", span: { start: 0, end: 7 } });
  });

  it("reads E'..' backslash escapes", () => {
    expect(tokenize("E'a\\nb\\'c\\\\d\\x41\\u00e9\\101'")[0]!.value).toBe("a\nb'c\\dAéA");
    expect(tokenize("e'it''s'")[0]!.value).toBe("it's");
  });

  it("with standard_conforming_strings off, reads backslash escapes in '..' and N'..' too", () => {
    const text = "SELECT 'x\\' , (SELECT 1 FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a))) --'";
    // On (the default): the string ends at the second quote, and the ML call is outside it.
    expect(tokenize(text).map((t) => t.kind)).toContain('punctuation');
    expect(tokenize(text)[1]!.value).toBe('x\\');
    // Off: one string to the end, as Postgres reads it.
    const off = tokenize(text, { standardConformingStrings: false });
    expect(off.map((t) => t.kind)).toEqual(['identifier', 'string']);
    expect(off[1]!.value).toBe("x' , (SELECT 1 FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a))) --");
    expect(tokenize("N'a\\'b'", { standardConformingStrings: false })[0]!.value).toBe("a'b");
    // A statement boundary inside what Postgres reads as one string, with the setting off.
    const script = "SELECT 'a\\'; SELECT 'b'; SELECT 3";
    expect(splitStatements(script).map((s) => s.text)).toEqual(["SELECT 'a\\'", "SELECT 'b'", 'SELECT 3']);
    expect(scan(script, { standardConformingStrings: false }).unterminated).toEqual({ what: 'quoted string', start: 21 });
    // Bit strings and dollar bodies keep backslashes as they are.
    expect(tokenize("X'1\\' $$a\\$$", { standardConformingStrings: false }).map((t) => t.value)).toEqual(['1\\', 'a\\']);
  });

  it('reads a string and a quoted identifier of 64 MiB each, escapes at both ends, in one pass', () => {
    // Built a character at a time with +=, such a value took about 35 bytes a character
    // (2.3 GB here) and seconds; built from slices it is one flat copy.
    const n = 64 * 1024 * 1024;
    const body = 'x'.repeat(n);
    const [s, e, q] = tokenize(`'''${body}''' E'\\n${body}\\t' "a""${body}"`);
    expect(s!.value.length).toBe(n + 2);
    expect(s!.value.startsWith("'x") && s!.value.endsWith("x'")).toBe(true);
    expect(e!.value.length).toBe(n + 2);
    expect(e!.value.startsWith('\nx') && e!.value.endsWith('x\t')).toBe(true);
    expect(q).toMatchObject({ kind: 'quoted-identifier' });
    expect(q!.value.length).toBe(n + 2);
    expect(q!.value.startsWith('a"x')).toBe(true);
  }, 60_000);

  it('reads $$ and $tag$ bodies, leaving $1 and m$2 alone', () => {
    expect(kinds("$$a;'b$$ $fn$ x $$ y $fn$ $1 m$2 $name")).toEqual([
      "string:a;'b",
      'string: x $$ y ',
      'parameter:$1',
      'identifier:m$2',
      'parameter:$name',
    ]);
  });

  it('skips line comments and nested block comments', () => {
    expect(kinds('a -- x ; y\n/* 1 /* 2 */ still ; comment */ b')).toEqual(['identifier:a', 'identifier:b']);
  });

  it('reads numbers', () => {
    expect(kinds('1 1.5 .5 1e-3 2E+10 0x1F 1_000 3.')).toEqual([
      'number:1',
      'number:1.5',
      'number:.5',
      'number:1e-3',
      'number:2E+10',
      'number:0x1F',
      'number:1_000',
      'number:3.',
    ]);
  });

  it('reads operators and parameters', () => {
    expect(kinds('a=>b c::int <> <= >= != || ? ?1 -> ->> a=-1 :=')).toEqual([
      'identifier:a',
      'operator:=>',
      'identifier:b',
      'identifier:c',
      'operator:::',
      'identifier:int',
      'operator:<>',
      'operator:<=',
      'operator:>=',
      'operator:!=',
      'operator:||',
      'parameter:?',
      'parameter:?1',
      'operator:->',
      'operator:->>',
      'identifier:a',
      'operator:=',
      'operator:-',
      'number:1',
      'operator::=',
    ]);
  });

  it('stops an operator before a comment', () => {
    expect(kinds('a +-- c\n b')).toEqual(['identifier:a', 'operator:+', 'identifier:b']);
  });

  it('gives each token its line and column', () => {
    const tokens = tokenize('select\n  a,\n\tb');
    expect(tokens.map((t) => [t.line, t.column])).toEqual([
      [1, 1],
      [2, 3],
      [2, 4],
      [3, 2],
    ]);
  });

  it('reports unterminated strings and comments the way Postgres does', () => {
    expect(() => tokenize("select 'abc")).toThrow(SqlSyntaxError);
    expect(() => tokenize("select 'abc")).toThrow('unterminated quoted string at or near "\'abc"');
    expect(() => tokenize('select /* x')).toThrow('unterminated /* comment');
    expect(() => tokenize('select "x')).toThrow('unterminated quoted identifier');
    expect(() => tokenize('select $a$ x')).toThrow('unterminated dollar-quoted string');
    const error = catchError(() => tokenize("select 1;\nselect\n  'oops"));
    expect(error.position).toEqual({ offset: 19, line: 3, column: 3 });
    expect(error.sqlstate).toBe('42601');
  });

  it('scan() does not throw and says what is open', () => {
    expect(scan("select 'a").unterminated).toEqual({ what: 'quoted string', start: 7 });
  });
});

describe('leadingTokens', () => {
  const long = (head: string) => `${head} ${'x + '.repeat(400)}1`;

  it('gives the first tokens of a long text as tokenize does', () => {
    for (const text of [long('CREATE OR REPLACE TABLE r AS SELECT'), long('/* ' + 'c'.repeat(300) + ' */ BEGIN;'), long(`SELECT '${'s'.repeat(1000)}',`)]) {
      expect(leadingTokens(text, 3)).toEqual(tokenize(text).slice(0, 3));
    }
  });

  it('never returns a token the cut could have shortened', () => {
    const text = `${' '.repeat(250)}begin_a_rather_long_identifier, x`;
    expect(leadingTokens(text, 1).map((t) => t.value)).toEqual(['begin_a_rather_long_identifier']);
  });

  it('gives fewer tokens for a short or unterminated text, without throwing', () => {
    expect(leadingTokens('commit', 2).map((t) => t.value)).toEqual(['commit']);
    expect(leadingTokens("select 'a", 3).map((t) => t.value)).toEqual(['select']);
  });
});

describe('splitStatements', () => {
  it('splits on top-level semicolons only', () => {
    const sql = "select ';' ; select $$;$$;; /* ; */ select (1;2); -- ;\n";
    expect(splitStatements(sql).map((s) => s.text)).toEqual(["select ';'", 'select $$;$$', '/* ; */ select (1;2)']);
  });

  it('gives spans into the script', () => {
    const sql = '  a ;\n b';
    const parts = splitStatements(sql);
    expect(parts.map((p) => sql.slice(p.span.start, p.span.end))).toEqual(['a', 'b']);
  });
});

describe('isStatementComplete', () => {
  it.each([
    ['select 1;', true],
    ['select 1; -- done', true],
    ['select 1;  /* c */  ', true],
    ['select 1', false],
    ["select ';", false],
    ['select $$ ; ', false],
    ['select $$ ; $$;', true],
    ['select /* ; ', false],
    ['select (1;', false],
    ['select "a;', false],
    ['select 1; select 2', false],
    ['', false],
    ['-- ;', false],
  ])('%j → %s', (sql, complete) => {
    expect(isStatementComplete(sql)).toBe(complete);
  });
});
