/**
 * SQL lexer shared by the model-SQL parser, the statement splitter and the interactive
 * shell. It understands every lexical form of Postgres and DuckDB that could otherwise
 * hide a `;` or an `ML_PREDICT(` from the parser: strings (`'..'`, `E'..'`, `$tag$..$tag$`),
 * quoted identifiers (`".."`, `` `..` ``), line and nested block comments.
 *
 * Lexical rules follow https://www.postgresql.org/docs/current/sql-syntax-lexical.html
 * (plus Flink's backtick identifiers and DuckDB's `?` parameters).
 */
import { positionAt, SqlSyntaxError } from '../errors.js';
import type { Span } from './ast.js';

/** What a token is. Comments and whitespace never become tokens. */
export type TokenKind =
  /** A plain identifier or key word: `select`, `m$2`. Its value is folded to lower case. */
  | 'identifier'
  /** `"Quoted"` or `` `backtick` `` identifier; its value keeps its case, escapes undone. */
  | 'quoted-identifier'
  /** `'..'`, `E'..'`, `$$..$$`, `X'..'`, `B'..'`, `N'..'`; its value is the unescaped content. */
  | 'string'
  /** `42`, `1.5`, `.5`, `1e-3`, `0x1F`, `1_000`. */
  | 'number'
  /** `$1`, `$name`, `?`, `?1`. */
  | 'parameter'
  /** `=`, `=>`, `::`, `<>`, `||`, `->>` ... */
  | 'operator'
  /** `(`, `)`, `[`, `]`, `{`, `}`, `,`, `;`, `.`, `:`. */
  | 'punctuation';

/** One token. `text` is the exact source slice; `value` is its meaning (see {@link TokenKind}). */
export interface Token {
  readonly kind: TokenKind;
  readonly text: string;
  readonly value: string;
  readonly span: Span;
  /** 1-based line of `span.start`. */
  readonly line: number;
  /** 1-based column of `span.start`. */
  readonly column: number;
}

/** The kind and start of a string, quoted identifier or comment that never ends. */
export interface Unterminated {
  readonly what: 'quoted string' | 'dollar-quoted string' | 'quoted identifier' | '/* comment';
  readonly start: number;
}

/** The result of {@link scan}: every token, and whether the text stops inside a quote or comment. */
export interface ScanResult {
  readonly tokens: readonly Token[];
  readonly unterminated?: Unterminated;
}

const OPERATOR_CHARS = '+-*/<>=~!@#%^&|?';
/** Characters that allow a multi-character operator to end in `+` or `-` (Postgres rule). */
const OPERATOR_SPECIAL = '~!@#%^&|`?';

function isDigit(c: string): boolean {
  return c >= '0' && c <= '9';
}

function isIdentStart(c: string): boolean {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c === '_' || c > '\x7f';
}

function isIdentPart(c: string): boolean {
  return isIdentStart(c) || isDigit(c) || c === '$';
}

/** Scanner state: a tiny class so each lexical form is its own small method. */
class Scanner {
  private pos = 0;
  private line = 1;
  private lineStart = 0;
  private lineScanned = 0;
  readonly tokens: Token[] = [];
  unterminated?: Unterminated;

  constructor(
    private readonly text: string,
    /** `standard_conforming_strings = off`: backslash escapes in plain `'..'` strings too. */
    private readonly plainBackslashes: boolean,
  ) {}

  run(): void {
    const text = this.text;
    while (this.pos < text.length && this.unterminated === undefined) {
      const c = text[this.pos]!;
      const n = text[this.pos + 1] ?? '';
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v') this.pos++;
      else if (c === '-' && n === '-') this.lineComment();
      else if (c === '/' && n === '*') this.blockComment();
      else if (c === "'") this.quotedString(this.pos, this.pos, this.plainBackslashes);
      else if ((c === 'e' || c === 'E') && n === "'") this.quotedString(this.pos, this.pos + 1, true);
      else if ((c === 'n' || c === 'N') && n === "'") this.quotedString(this.pos, this.pos + 1, this.plainBackslashes);
      else if ('xXbB'.includes(c) && n === "'") this.quotedString(this.pos, this.pos + 1, false);
      else if ((c === 'u' || c === 'U') && n === '&' && (text[this.pos + 2] === "'" || text[this.pos + 2] === '"')) this.unicodeQuoted();
      else if (c === '"' || c === '`') this.quotedIdentifier(this.pos, c);
      else if (c === '$') this.dollar();
      else if (isDigit(c) || (c === '.' && isDigit(n))) this.number();
      else if (isIdentStart(c)) this.identifier();
      else if (c === ':' && (n === ':' || n === '=')) this.push('operator', this.pos, this.pos + 2);
      else if (OPERATOR_CHARS.includes(c)) this.operator();
      else this.push('punctuation', this.pos, this.pos + 1);
    }
  }

  private push(kind: TokenKind, start: number, end: number, value?: string): void {
    const text = this.text.slice(start, end);
    const normalized = value ?? (kind === 'identifier' ? text.toLowerCase() : text);
    for (let i = this.lineScanned; i < start; i++) {
      if (this.text.charCodeAt(i) === 10) {
        this.line++;
        this.lineStart = i + 1;
      }
    }
    this.lineScanned = start;
    this.tokens.push(Object.freeze({ kind, text, value: normalized, span: Object.freeze({ start, end }), line: this.line, column: start - this.lineStart + 1 }));
    this.pos = end;
  }

  private lineComment(): void {
    const end = this.text.indexOf('\n', this.pos);
    this.pos = end < 0 ? this.text.length : end + 1;
  }

  /** Block comments nest, as in Postgres and DuckDB. */
  private blockComment(): void {
    const start = this.pos;
    let depth = 0;
    let i = this.pos;
    while (i < this.text.length) {
      if (this.text.startsWith('/*', i)) {
        depth++;
        i += 2;
      } else if (this.text.startsWith('*/', i)) {
        depth--;
        i += 2;
        if (depth === 0) {
          this.pos = i;
          return;
        }
      } else i++;
    }
    this.pos = this.text.length;
    this.unterminated = { what: '/* comment', start };
  }

  /**
   * `'..'` with `''` escapes; with `backslashes`, also C-style escapes (`E'..'`). The value
   * is built from runs of plain text (`slice`), not a character at a time: a string of many
   * megabytes built with `+=` per character costs tens of bytes per character.
   */
  private quotedString(start: number, quote: number, backslashes: boolean): void {
    const parts: string[] = [];
    let i = quote + 1;
    let run = i;
    const text = this.text;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 39 /* ' */) {
        parts.push(text.slice(run, i));
        if (text.charCodeAt(i + 1) === 39) {
          parts.push("'");
          i += 2;
          run = i;
          continue;
        }
        this.push('string', start, i + 1, parts.join(''));
        return;
      }
      if (backslashes && c === 92 /* \ */ && i + 1 < text.length) {
        parts.push(text.slice(run, i));
        const [decoded, length] = decodeBackslash(text, i);
        parts.push(decoded);
        i += length;
        run = i;
        continue;
      }
      i++;
    }
    this.pos = text.length;
    this.unterminated = { what: 'quoted string', start };
  }

  /** `U&'..'` and `U&".."`: kept with their escapes as written (rare; the host decodes them). */
  private unicodeQuoted(): void {
    const start = this.pos;
    const quote = this.text[start + 2]!;
    if (quote === "'") this.quotedString(start, start + 2, false);
    else this.quotedIdentifier(start, '"', start + 2);
  }

  /** `".."` or `` `..` `` with doubled-quote escapes; the value built from runs, as in {@link quotedString}. */
  private quotedIdentifier(start: number, quote: string, open = start): void {
    const parts: string[] = [];
    let i = open + 1;
    let run = i;
    const text = this.text;
    while (i < text.length) {
      if (text[i] === quote) {
        parts.push(text.slice(run, i));
        if (text[i + 1] === quote) {
          parts.push(quote);
          i += 2;
          run = i;
          continue;
        }
        this.push('quoted-identifier', start, i + 1, parts.join(''));
        return;
      }
      i++;
    }
    this.pos = text.length;
    this.unterminated = { what: 'quoted identifier', start };
  }

  /** `$1` and `$name` parameters, or a `$tag$ .. $tag$` string. */
  private dollar(): void {
    const start = this.pos;
    const text = this.text;
    let i = start + 1;
    if (isDigit(text[i] ?? '')) {
      while (isDigit(text[i] ?? '')) i++;
      this.push('parameter', start, i);
      return;
    }
    while (i < text.length && isIdentPart(text[i]!) && text[i] !== '$') i++;
    if (text[i] === '$' && (i === start + 1 || isIdentStart(text[start + 1]!))) {
      const tag = text.slice(start, i + 1);
      const close = text.indexOf(tag, i + 1);
      if (close < 0) {
        this.pos = text.length;
        this.unterminated = { what: 'dollar-quoted string', start };
        return;
      }
      this.push('string', start, close + tag.length, text.slice(i + 1, close));
      return;
    }
    if (i > start + 1) this.push('parameter', start, i);
    else this.push('punctuation', start, start + 1);
  }

  private number(): void {
    const text = this.text;
    let i = this.pos;
    if (text[i] === '0' && 'xXoObB'.includes(text[i + 1] ?? '') && /[0-9a-fA-F]/.test(text[i + 2] ?? '')) {
      i += 2;
      while (/[0-9a-fA-F_]/.test(text[i] ?? '')) i++;
      this.push('number', this.pos, i);
      return;
    }
    const digits = (): void => {
      while (isDigit(text[i] ?? '') || (text[i] === '_' && isDigit(text[i + 1] ?? ''))) i++;
    };
    digits();
    if (text[i] === '.' && text[i + 1] !== '.') {
      i++;
      digits();
    }
    if ((text[i] === 'e' || text[i] === 'E') && (isDigit(text[i + 1] ?? '') || ('+-'.includes(text[i + 1] ?? '') && isDigit(text[i + 2] ?? '')))) {
      i += 2;
      digits();
    }
    this.push('number', this.pos, i);
  }

  private identifier(): void {
    let i = this.pos + 1;
    while (i < this.text.length && isIdentPart(this.text[i]!)) i++;
    this.push('identifier', this.pos, i);
  }

  /**
   * An operator is the longest run of operator characters, cut before `--` or `/*`; a
   * multi-character operator may end in `+`/`-` only if it holds one of `~!@#%^&|?`.
   * A lone `?` is a parameter.
   */
  private operator(): void {
    const text = this.text;
    const start = this.pos;
    let end = start;
    while (end < text.length && OPERATOR_CHARS.includes(text[end]!) && !(end > start && (text.startsWith('--', end) || text.startsWith('/*', end)))) end++;
    while (end - start > 1 && '+-'.includes(text[end - 1]!) && ![...text.slice(start, end)].some((c) => OPERATOR_SPECIAL.includes(c))) end--;
    if (end === start + 1 && text[start] === '?') {
      let i = end;
      while (isDigit(text[i] ?? '')) i++;
      this.push('parameter', start, i);
      return;
    }
    this.push('operator', start, end);
  }
}

/** Decodes one backslash escape of an `E'..'` string at `i`; returns the text and the length consumed. */
function decodeBackslash(text: string, i: number): [string, number] {
  const c = text[i + 1]!;
  const simple: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
  if (simple[c] !== undefined) return [simple[c]!, 2];
  const hexRun = (from: number, max: number): string => {
    let j = from;
    while (j < from + max && /[0-9a-fA-F]/.test(text[j] ?? '')) j++;
    return text.slice(from, j);
  };
  if (c === 'x') {
    const hex = hexRun(i + 2, 2);
    if (hex.length > 0) return [String.fromCodePoint(parseInt(hex, 16)), 2 + hex.length];
  }
  if (c === 'u' || c === 'U') {
    const want = c === 'u' ? 4 : 8;
    const hex = hexRun(i + 2, want);
    if (hex.length === want) return [String.fromCodePoint(parseInt(hex, 16)), 2 + want];
  }
  if (c >= '0' && c <= '7') {
    let j = i + 1;
    while (j < i + 4 && text[j]! >= '0' && text[j]! <= '7') j++;
    return [String.fromCodePoint(parseInt(text.slice(i + 1, j), 8)), j - i];
  }
  return [c, 2];
}

/** How the host reads string literals. */
export interface LexOptions {
  /**
   * Postgres's `standard_conforming_strings`
   * (https://www.postgresql.org/docs/current/runtime-config-compatible.html#GUC-STANDARD-CONFORMING-STRINGS):
   * when false, a backslash escapes the next character in `'..'` strings too, as in
   * `E'..'`, so `'a\'b'` is one string. Default true (Postgres's default, and DuckDB's only reading).
   */
  readonly standardConformingStrings?: boolean;
}

/**
 * Lexes `text` without throwing: an unterminated string, quoted identifier or comment
 * is reported in `unterminated` (the shell uses it to keep reading lines).
 */
export function scan(text: string, options: LexOptions = {}): ScanResult {
  const scanner = new Scanner(text, options.standardConformingStrings === false);
  scanner.run();
  return { tokens: Object.freeze(scanner.tokens), unterminated: scanner.unterminated };
}

/**
 * Lexes `text` into tokens (comments and whitespace dropped).
 *
 * @throws SqlSyntaxError (42601) for an unterminated string, quoted identifier or comment,
 *   worded as Postgres does: `unterminated quoted string at or near "'abc"`.
 * @example tokenize("select 'a''b'")  // [identifier select, string a'b]
 */
export function tokenize(text: string, options: LexOptions = {}): readonly Token[] {
  const result = scan(text, options);
  if (result.unterminated) {
    const { what, start } = result.unterminated;
    throw new SqlSyntaxError(`unterminated ${what} at or near "${text.slice(start)}"`, positionAt(text, start), text);
  }
  return result.tokens;
}

/** True when `token` is the plain (unquoted) identifier `word`, compared case-insensitively. */
export function isWord(token: Token | undefined, word: string): boolean {
  return token !== undefined && token.kind === 'identifier' && token.value === word.toLowerCase();
}

/** True when `token` is the punctuation or operator `text`. */
export function isSymbol(token: Token | undefined, text: string): boolean {
  return token !== undefined && (token.kind === 'punctuation' || token.kind === 'operator') && token.text === text;
}

/** A statement found by {@link splitStatements}: its token range and source slice. */
export interface StatementRange {
  /** Index of the first token, and one past the last, in the token array. */
  readonly first: number;
  readonly end: number;
  /** The `;` token that ends the statement, if any. */
  readonly terminator?: Token;
  /**
   * Source slice between the separators, whitespace trimmed: leading and trailing comments
   * stay with the statement (so the text may end in a `-- comment`).
   */
  readonly span: Span;
}

/**
 * Splits a token array on `;` outside parentheses. Empty statements (no tokens, only
 * comments) are skipped. A statement's span is everything between its separators with
 * surrounding whitespace trimmed, comments included (an optimizer hint stays with it).
 */
export function splitTokens(text: string, tokens: readonly Token[]): StatementRange[] {
  const ranges: StatementRange[] = [];
  let depth = 0;
  let first = 0;
  let sliceStart = 0;
  const close = (end: number, terminator?: Token): void => {
    if (end > first) {
      let start = sliceStart;
      while (start < tokens[first]!.span.start && /\s/.test(text[start]!)) start++;
      let stop = terminator ? terminator.span.start : text.length;
      while (stop > tokens[end - 1]!.span.end && /\s/.test(text[stop - 1]!)) stop--;
      ranges.push(Object.freeze({ first, end, terminator, span: Object.freeze({ start, end: stop }) }));
    }
  };
  tokens.forEach((token, i) => {
    if (isSymbol(token, '(')) depth++;
    else if (isSymbol(token, ')')) depth = Math.max(0, depth - 1);
    else if (isSymbol(token, ';') && depth === 0) {
      close(i, token);
      first = i + 1;
      sliceStart = token.span.end;
    }
  });
  close(tokens.length);
  return ranges;
}

/**
 * Splits a script into statement texts on top-level `;` (outside strings, comments,
 * quoted identifiers, dollar bodies and parentheses). Empty statements are skipped.
 *
 * @example splitStatements("select ';'; select 2;")  // ["select ';'", "select 2"]
 */
export function splitStatements(text: string): { readonly text: string; readonly span: Span }[] {
  return splitTokens(text, tokenize(text)).map((r) => ({ text: text.slice(r.span.start, r.span.end), span: r.span }));
}

/**
 * True when `text` ends with a top-level `;` (trailing whitespace and comments allowed)
 * and nothing is left open: no unterminated string, quoted identifier, dollar body or
 * block comment, no unclosed parenthesis. The interactive shell sends the buffer then.
 */
export function isStatementComplete(text: string): boolean {
  const { tokens, unterminated } = scan(text);
  if (unterminated || tokens.length === 0) return false;
  if (!isSymbol(tokens[tokens.length - 1], ';')) return false;
  let depth = 0;
  for (const token of tokens) {
    if (isSymbol(token, '(')) depth++;
    else if (isSymbol(token, ')')) depth = Math.max(0, depth - 1);
  }
  return depth === 0;
}

/**
 * A read position over the tokens of one statement, with the error helpers every
 * grammar rule needs. Errors are worded as Postgres words them and carry the position
 * in, and the text of, the whole script.
 */
export class TokenCursor {
  /** Index of the next token. */
  index: number;
  /**
   * `>` characters still owed by a `>>` token that closed two nested type brackets
   * (`ARRAY<ARRAY<INT>>`).
   */
  pendingGreater = 0;

  /**
   * @param sqlText the whole script (positions refer to it)
   * @param tokens all tokens of the script
   * @param first index of the statement's first token
   * @param end one past the statement's last token
   * @param terminator the `;` ending the statement, for "at or near ";"" messages
   */
  constructor(
    readonly sqlText: string,
    readonly tokens: readonly Token[],
    first: number,
    readonly end: number,
    readonly terminator?: Token,
  ) {
    this.index = first;
  }

  /** The token `k` ahead, or undefined past the statement's end. */
  peek(k = 0): Token | undefined {
    return this.index + k < this.end ? this.tokens[this.index + k] : undefined;
  }

  /** The token before the next one. */
  previous(): Token | undefined {
    return this.tokens[this.index - 1];
  }

  /** True when every token of the statement has been consumed. */
  atEnd(): boolean {
    return this.index >= this.end;
  }

  /** Consumes and returns the next token; a syntax error at the end of the statement. */
  next(): Token {
    const token = this.peek();
    if (token === undefined) throw this.error();
    this.index++;
    return token;
  }

  /** True when the token `k` ahead is the plain word `word`. */
  isWord(word: string, k = 0): boolean {
    return isWord(this.peek(k), word);
  }

  /** Consumes the next token when it is the plain word `word`. */
  acceptWord(word: string): boolean {
    if (!this.isWord(word)) return false;
    this.index++;
    return true;
  }

  /** Consumes the plain word `word` or throws a syntax error at the next token. */
  expectWord(word: string): Token {
    if (!this.isWord(word)) throw this.error(this.peek());
    return this.next();
  }

  /** True when the token `k` ahead is the punctuation or operator `text`. */
  isSymbol(text: string, k = 0): boolean {
    return isSymbol(this.peek(k), text);
  }

  /** Consumes the next token when it is the punctuation or operator `text`. */
  acceptSymbol(text: string): boolean {
    if (!this.isSymbol(text)) return false;
    this.index++;
    return true;
  }

  /** Consumes the punctuation or operator `text` or throws a syntax error at the next token. */
  expectSymbol(text: string): Token {
    if (!this.isSymbol(text)) throw this.error(this.peek());
    return this.next();
  }

  /** Throws unless the statement has been fully consumed. */
  expectEnd(): void {
    if (!this.atEnd()) throw this.error(this.peek());
  }

  /** Span from `startToken` to the last consumed token. */
  spanFrom(startToken: Token): Span {
    return Object.freeze({ start: startToken.span.start, end: Math.max(startToken.span.end, this.previous()!.span.end) });
  }

  /**
   * A syntax error at `token` (`syntax error at or near "X"`), or, without a token, at
   * the statement's end: at or near its `;`, or `syntax error at end of input`.
   */
  error(token?: Token, message?: string): SqlSyntaxError {
    const at = token ?? this.terminator;
    if (at) return new SqlSyntaxError(message ?? `syntax error at or near "${at.text}"`, positionAt(this.sqlText, at.span.start), this.sqlText);
    return new SqlSyntaxError(message ?? 'syntax error at end of input', positionAt(this.sqlText, this.sqlText.length), this.sqlText);
  }

  /** A syntax error with a specific message at a span's start. */
  errorAt(span: Span, message: string): SqlSyntaxError {
    return new SqlSyntaxError(message, positionAt(this.sqlText, span.start), this.sqlText);
  }
}

/**
 * The first `count` tokens of `text` (fewer when it has fewer), lexing only as much of it
 * as they need: a long statement is not lexed to its end to read its first key words. Never
 * throws; an unterminated string or comment ends the tokens.
 *
 * @example leadingTokens('BEGIN; SELECT 1', 1)[0]!.value // 'begin'
 */
export function leadingTokens(text: string, count: number): readonly Token[] {
  for (let length = 256; ; length *= 4) {
    const prefix = text.slice(0, length);
    const tokens = scan(prefix).tokens;
    // A token that ends before the cut was lexed whole; the one touching it may go on past it.
    const whole = prefix.length === text.length ? tokens : tokens.filter((t) => t.span.end < prefix.length);
    if (whole.length >= count || prefix.length === text.length) return whole.slice(0, count);
  }
}
