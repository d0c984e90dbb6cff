/**
 * The model-SQL parser. It owns only model syntax (ARCHITECTURE seam 4): model DDL is
 * parsed fully; any other statement is scanned for `ML_PREDICT(` / `ML_EVALUATE(` calls,
 * which are parsed, and is otherwise passed through byte for byte.
 */
import type {
  AlterMaterializedTableAction,
  AlterModelAction,
  ColumnDef,
  CreateModelStatement,
  Freshness,
  Identifier,
  MlArgValue,
  MlArgument,
  MlCall,
  ModelName,
  OptionEntry,
  RefreshMode,
  Span,
  Statement,
} from './ast.js';
import { isSymbol, isWord, splitTokens, tokenize, TokenCursor } from './lexer.js';
import { isBareName } from './keywords.js';
import type { LexOptions, StatementRange, Token } from './lexer.js';
import { parseTypeAt } from './types.js';

type Base = { readonly text: string; readonly span: Span };

/** Recursively freezes a freshly built node tree. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as object)) deepFreeze(child);
  }
  return value;
}

function isName(token: Token | undefined): token is Token {
  return token !== undefined && (token.kind === 'identifier' || token.kind === 'quoted-identifier');
}

function identifier(token: Token): Identifier {
  return { kind: 'identifier', value: token.value, quoted: token.kind === 'quoted-identifier', span: token.span };
}

function spanOf(first: Token, last: Token): Span {
  return { start: first.span.start, end: last.span.end };
}

/**
 * Parses a script into statements, split on top-level `;` (empty statements skipped).
 * Each statement's `text` is its exact source slice, without the `;`. `options` say how
 * the host reads strings (`standard_conforming_strings`).
 *
 * @throws SqlSyntaxError (42601) with `position` and `sqlText` (the whole script).
 * @example parseScript("DROP MODEL m; SELECT 1")  // [drop-model, host]
 */
export function parseScript(text: string, options: LexOptions = {}): Statement[] {
  const tokens = tokenize(text, options);
  return splitTokens(text, tokens).map((range) => deepFreeze(parseStatement(text, tokens, range)));
}

/**
 * The statements of `text` after offset `after`, at their offsets in `text`: the script
 * re-read from there, as when a statement of it changed how the host reads strings
 * (`SET standard_conforming_strings`) and the rest must be split as the host will read it.
 * Whatever lies before `after` is blanked (line breaks kept, so lines and columns hold).
 *
 * @example parseScriptAfter("SET x = 1; SELECT 2", 9) // [host "SELECT 2" at 11]
 */
export function parseScriptAfter(text: string, after: number, options: LexOptions = {}): Statement[] {
  return parseScript(text.slice(0, after).replace(/[^\n]/g, ' ') + text.slice(after), options);
}

function parseStatement(text: string, tokens: readonly Token[], range: StatementRange): Statement {
  const base: Base = { text: text.slice(range.span.start, range.span.end), span: range.span };
  const cursor = new TokenCursor(text, tokens, range.first, range.end, range.terminator);
  const model = parseModelStatement(cursor, base);
  if (model) return model;
  const calls = findCalls(text, tokens, range.first, range.end, range.terminator);
  return calls.length > 0 ? { kind: 'query', ...base, calls } : { kind: 'host', ...base };
}

/** Dispatches on the leading key words; undefined when the statement is not model DDL. */
function parseModelStatement(c: TokenCursor, base: Base): Statement | undefined {
  const materialized = parseMaterializedStatement(c, base);
  if (materialized) return materialized;
  if (c.isWord('create')) {
    let k = 1;
    if (c.isWord('or', k) && c.isWord('replace', k + 1)) k += 2;
    if (c.isWord('temporary', k) || c.isWord('temp', k)) k++;
    return c.isWord('model', k) ? parseCreate(c, base) : undefined;
  }
  if (c.isWord('alter') && c.isWord('model', 1)) return parseAlter(c, base);
  if (c.isWord('drop')) {
    const k = c.isWord('temporary', 1) || c.isWord('temp', 1) ? 2 : 1;
    return c.isWord('model', k) ? parseDrop(c, base) : undefined;
  }
  if (c.isWord('show')) {
    if (c.isWord('models', 1)) return parseShowModels(c, base);
    if (c.isWord('create', 1) && c.isWord('model', 2)) return parseSimple(c, base, 'show-create-model', 3, true);
    if (c.isWord('model', 1) && c.isWord('versions', 2)) return parseSimple(c, base, 'show-model-versions', 3, false);
    return undefined;
  }
  if ((c.isWord('describe') || c.isWord('desc')) && c.isWord('model', 1) && isName(c.peek(2))) return parseDescribe(c, base);
  if ((c.isWord('grant') || c.isWord('revoke')) && c.isWord('usage', 1) && c.isWord('on', 2) && c.isWord('model', 3)) return parseGrant(c, base);
  return undefined;
}

/**
 * Parses `name`, `schema.name`, `catalog.schema.name`, each part plain or quoted, with an
 * optional `$N` version (`m$2`, `"M"$2`). Where `allowVersion` is false a version is an error.
 */
function parseModelName(c: TokenCursor, allowVersion: boolean): ModelName {
  const parts: Identifier[] = [];
  let version: number | undefined;
  let versionToken: Token | undefined;
  const first = c.peek();
  if (!isName(first)) throw c.error(first);
  for (;;) {
    const token = c.next();
    if (!isName(token)) throw c.error(token);
    const dollar = token.kind === 'identifier' ? token.value.lastIndexOf('$') : -1;
    if (dollar > 0 && /^\d+$/.test(token.value.slice(dollar + 1))) {
      parts.push({ kind: 'identifier', value: token.value.slice(0, dollar), quoted: false, span: { start: token.span.start, end: token.span.start + dollar } });
      version = Number(token.value.slice(dollar + 1));
      versionToken = token;
    } else {
      parts.push(identifier(token));
      const next = c.peek();
      if (token.kind === 'quoted-identifier' && next?.kind === 'parameter' && /^\$\d+$/.test(next.text) && next.span.start === token.span.end) {
        c.index++;
        version = Number(next.text.slice(1));
        versionToken = next;
      }
    }
    if (!c.isSymbol('.') || version !== undefined) break;
    if (parts.length === 3) throw c.error(c.peek());
    c.index++;
  }
  if (version !== undefined && versionToken) {
    if (!allowVersion) throw c.errorAt(versionToken.span, `a model version is not allowed here: "${versionToken.text}"`);
    if (version < 1) throw c.errorAt(versionToken.span, `model versions start at 1: "${versionToken.text}"`);
  }
  return { kind: 'model-name', parts, ...(version !== undefined ? { version } : {}), span: c.spanFrom(first) };
}

/** A string literal token's value, or a syntax error saying what was expected. */
function expectString(c: TokenCursor, what: string): Token {
  const token = c.peek();
  if (token?.kind !== 'string') {
    throw token ? c.error(token, `syntax error at or near "${token.text}": ${what} must be a string literal`) : c.error();
  }
  return c.next();
}

/** `( 'k' = 'v', ... )`, rejecting duplicate keys; may return an empty list (callers reject it). */
function parseOptionList(c: TokenCursor): { options: OptionEntry[]; open: Token; close: Token } {
  const open = c.expectSymbol('(');
  const options: OptionEntry[] = [];
  if (!c.isSymbol(')')) {
    do {
      const key = expectString(c, 'an option key');
      c.expectSymbol('=');
      const value = expectString(c, 'an option value');
      if (options.some((o) => o.key === key.value)) throw c.errorAt(key.span, `duplicate option key '${key.value}'`);
      options.push({ kind: 'option', key: key.value, value: value.value, keySpan: key.span, valueSpan: value.span });
    } while (c.acceptSymbol(','));
  }
  return { options, open, close: c.expectSymbol(')') };
}

/** `(col type [COMMENT 'text'], ...)` of INPUT / OUTPUT. */
function parseColumns(c: TokenCursor): ColumnDef[] {
  c.expectSymbol('(');
  const columns: ColumnDef[] = [];
  do {
    const name = c.peek();
    if (!isName(name)) throw c.error(name);
    c.index++;
    const type = parseTypeAt(c);
    if (c.pendingGreater > 0) throw c.error(c.previous());
    let comment: string | undefined;
    if (c.acceptWord('comment')) comment = expectString(c, 'a column comment').value;
    columns.push({ kind: 'column', name: identifier(name), type, ...(comment !== undefined ? { comment } : {}), span: c.spanFrom(name) });
  } while (c.acceptSymbol(','));
  c.expectSymbol(')');
  return columns;
}

function parseCreate(c: TokenCursor, base: Base): CreateModelStatement {
  c.expectWord('create');
  const orReplace = c.acceptWord('or') && c.expectWord('replace') !== undefined;
  const temporary = c.acceptWord('temporary') || c.acceptWord('temp');
  c.expectWord('model');
  const ifNotExists = c.isWord('if') && c.isWord('not', 1) && c.isWord('exists', 2);
  if (ifNotExists) c.index += 3;
  const name = parseModelName(c, false);
  const inputToken = c.isWord('input') ? c.next() : undefined;
  const input = inputToken ? parseColumns(c) : undefined;
  const outputToken = c.isWord('output') ? c.next() : undefined;
  const output = outputToken ? parseColumns(c) : undefined;
  if (inputToken && !outputToken) throw c.errorAt(inputToken.span, 'CREATE MODEL with INPUT must also declare OUTPUT');
  if (outputToken && !inputToken) throw c.errorAt(outputToken.span, 'CREATE MODEL with OUTPUT must also declare INPUT');
  const comment = c.acceptWord('comment') ? expectString(c, 'a model comment').value : undefined;
  c.expectWord('with');
  const { options, close } = parseOptionList(c);
  if (options.length === 0) throw c.errorAt(close.span, 'CREATE MODEL requires at least one option in WITH (...)');
  let asQuery: CreateModelStatement['asQuery'];
  const asToken = c.isWord('as') ? c.next() : undefined;
  if (asToken) {
    if (inputToken) throw c.errorAt(inputToken.span, 'CREATE MODEL ... AS query takes neither INPUT nor OUTPUT');
    const first = c.next();
    const last = c.tokens[c.end - 1]!;
    const span = spanOf(first, last);
    asQuery = { text: c.sqlText.slice(span.start, span.end), span };
    c.index = c.end;
  }
  c.expectEnd();
  return {
    kind: 'create-model',
    ...base,
    orReplace,
    temporary,
    ifNotExists,
    name,
    ...(input ? { input } : {}),
    ...(output ? { output } : {}),
    ...(comment !== undefined ? { comment } : {}),
    options,
    ...(asQuery ? { asQuery } : {}),
  };
}

function parseAlter(c: TokenCursor, base: Base): Statement {
  c.expectWord('alter');
  c.expectWord('model');
  const ifExists = c.isWord('if') && c.isWord('exists', 1);
  if (ifExists) c.index += 2;
  const name = parseModelName(c, true);
  let action: AlterModelAction;
  if (c.acceptWord('set')) {
    const { options, close } = parseOptionList(c);
    if (options.length === 0) throw c.errorAt(close.span, 'ALTER MODEL ... SET requires at least one option');
    action = { kind: 'set', options };
  } else if (c.acceptWord('reset')) {
    action = { kind: 'reset', keys: parseResetKeys(c) };
  } else if (c.acceptWord('rename')) {
    c.expectWord('to');
    action = { kind: 'rename', newName: parseModelName(c, false) };
  } else throw c.error(c.peek());
  c.expectEnd();
  return { kind: 'alter-model', ...base, ifExists, name, action };
}

function parseResetKeys(c: TokenCursor): { key: string; span: Span }[] {
  c.expectSymbol('(');
  const keys: { key: string; span: Span }[] = [];
  if (c.isSymbol(')')) throw c.errorAt(c.peek()!.span, 'ALTER MODEL ... RESET requires at least one option key');
  do {
    const key = expectString(c, 'an option key');
    if (keys.some((k) => k.key === key.value)) throw c.errorAt(key.span, `duplicate option key '${key.value}'`);
    keys.push({ key: key.value, span: key.span });
  } while (c.acceptSymbol(','));
  c.expectSymbol(')');
  return keys;
}

function parseDrop(c: TokenCursor, base: Base): Statement {
  c.expectWord('drop');
  const temporary = c.acceptWord('temporary') || c.acceptWord('temp');
  c.expectWord('model');
  const ifExists = c.isWord('if') && c.isWord('exists', 1);
  if (ifExists) c.index += 2;
  const name = parseModelName(c, true);
  c.expectEnd();
  return { kind: 'drop-model', ...base, temporary, ifExists, name };
}

function parseShowModels(c: TokenCursor, base: Base): Statement {
  c.index += 2;
  let schema: Identifier[] | undefined;
  if (c.acceptWord('from') || c.acceptWord('in')) {
    schema = [];
    do {
      const token = c.next();
      if (!isName(token) || schema.length === 2) throw c.error(token);
      schema.push(identifier(token));
    } while (c.acceptSymbol('.'));
  }
  let like: { pattern: string; not: boolean; caseInsensitive?: true } | undefined;
  const not = c.isWord('not') && (c.isWord('like', 1) || c.isWord('ilike', 1));
  if (not) c.index++;
  if (c.acceptWord('like')) like = { pattern: expectString(c, 'a LIKE pattern').value, not };
  else if (c.acceptWord('ilike')) like = { pattern: expectString(c, 'an ILIKE pattern').value, not, caseInsensitive: true };
  c.expectEnd();
  return { kind: 'show-models', ...base, ...(schema ? { schema } : {}), ...(like ? { like } : {}) };
}

function parseSimple(c: TokenCursor, base: Base, kind: 'show-create-model' | 'show-model-versions', skip: number, allowVersion: boolean): Statement {
  c.index += skip;
  const name = parseModelName(c, allowVersion);
  c.expectEnd();
  return { kind, ...base, name };
}

function parseDescribe(c: TokenCursor, base: Base): Statement {
  c.index += 2;
  const extended = c.isWord('extended') && isName(c.peek(1));
  if (extended) c.index++;
  const name = parseModelName(c, true);
  c.expectEnd();
  return { kind: 'describe-model', ...base, extended, name };
}

function parseGrant(c: TokenCursor, base: Base): Statement {
  const grant = c.isWord('grant');
  c.index += 4;
  const name = parseModelName(c, false);
  c.expectWord(grant ? 'to' : 'from');
  const role = c.next();
  if (!isName(role)) throw c.error(role);
  c.expectEnd();
  return { kind: grant ? 'grant-model' : 'revoke-model', ...base, name, role: identifier(role) };
}

// ---------------------------------------------------------------------------------------
// Materialized tables (Flink 1.20, FLIP-435)

/** Dispatches the materialized-table statements; undefined for anything else (a Postgres `MATERIALIZED VIEW` included). */
function parseMaterializedStatement(c: TokenCursor, base: Base): Statement | undefined {
  const table = (k: number) => c.isWord('materialized', k) && c.isWord('table', k + 1);
  if (c.isWord('create') && table(1)) return parseCreateMaterialized(c, base);
  if (c.isWord('alter') && table(1)) return parseAlterMaterialized(c, base);
  if (c.isWord('drop') && table(1)) {
    c.index += 3;
    const ifExists = c.isWord('if') && c.isWord('exists', 1);
    if (ifExists) c.index += 2;
    const { table: name, span } = parseTableName(c);
    c.expectEnd();
    return { kind: 'drop-materialized-table', ...base, ifExists, table: name, tableSpan: span };
  }
  if (c.isWord('show') && c.isWord('materialized', 1) && c.isWord('tables', 2)) {
    c.index += 3;
    c.expectEnd();
    return { kind: 'show-materialized-tables', ...base };
  }
  if ((c.isWord('describe') || c.isWord('desc')) && table(1)) {
    c.index += 3;
    const { table: name, span } = parseTableName(c);
    c.expectEnd();
    return { kind: 'describe-materialized-table', ...base, table: name, tableSpan: span };
  }
  return undefined;
}

/** `[catalog.][schema.]table`, each part plain or quoted. */
function parseTableName(c: TokenCursor): { table: Identifier[]; span: Span } {
  const first = c.peek();
  const table: Identifier[] = [];
  do {
    const token = c.next();
    if (!isName(token) || table.length === 3) throw c.error(token);
    table.push(identifier(token));
  } while (c.acceptSymbol('.'));
  return { table, span: c.spanFrom(first!) };
}

/** Seconds per unit of `FRESHNESS = INTERVAL 'n' unit`. */
const FRESHNESS_UNITS = { SECOND: 1, MINUTE: 60, HOUR: 3600, DAY: 86400 } as const;

/** `INTERVAL 'n' SECOND | MINUTE | HOUR | DAY` after `FRESHNESS =`: n a whole number (its range is checked where it is used). */
function parseFreshness(c: TokenCursor): Freshness {
  const start = c.expectWord('interval');
  const amount = expectString(c, 'the FRESHNESS interval');
  if (!/^\s*[0-9]+\s*$/.test(amount.value)) throw c.errorAt(amount.span, `FRESHNESS must be a whole number of units, found '${amount.value}'`);
  const unitToken = c.next();
  const unit = unitToken.kind === 'identifier' ? unitToken.value.toUpperCase().replace(/S$/, '') : '';
  if (!(unit in FRESHNESS_UNITS)) throw c.error(unitToken, `syntax error at or near "${unitToken.text}": FRESHNESS takes SECOND, MINUTE, HOUR or DAY`);
  const n = Number(amount.value);
  const u = unit as Freshness['unit'];
  return { kind: 'freshness', amount: n, unit: u, seconds: n * FRESHNESS_UNITS[u], span: c.spanFrom(start) };
}

/** `= CONTINUOUS | FULL` after REFRESH_MODE. */
function parseRefreshMode(c: TokenCursor): { mode: RefreshMode; span: Span } {
  c.expectSymbol('=');
  const token = c.next();
  if (!isWord(token, 'continuous') && !isWord(token, 'full')) throw c.error(token, `syntax error at or near "${token.text}": REFRESH_MODE is CONTINUOUS or FULL`);
  return { mode: token.value.toUpperCase() as RefreshMode, span: token.span };
}

function parseCreateMaterialized(c: TokenCursor, base: Base): Statement {
  c.index += 3;
  const { table, span: tableSpan } = parseTableName(c);
  let primaryKey: Identifier[] | undefined;
  if (c.acceptSymbol('(')) {
    if (c.acceptWord('constraint')) {
      const name = c.next();
      if (!isName(name)) throw c.error(name);
    }
    c.expectWord('primary');
    c.expectWord('key');
    c.expectSymbol('(');
    primaryKey = [];
    do {
      const token = c.next();
      if (!isName(token)) throw c.error(token);
      primaryKey.push(identifier(token));
    } while (c.acceptSymbol(','));
    c.expectSymbol(')');
    c.expectWord('not');
    c.expectWord('enforced');
    c.expectSymbol(')');
  }
  const comment = c.acceptWord('comment') ? expectString(c, 'a table comment').value : undefined;
  if (c.isWord('partitioned')) throw c.errorAt(c.peek()!.span, 'PARTITIONED BY is not supported for materialized tables');
  const options = c.acceptWord('with') ? parseOptionList(c).options : [];
  c.expectWord('freshness');
  c.expectSymbol('=');
  const freshness = parseFreshness(c);
  const refreshMode = c.acceptWord('refresh_mode') ? parseRefreshMode(c) : undefined;
  c.expectWord('as');
  const first = c.next();
  const last = c.tokens[c.end - 1]!;
  const span = spanOf(first, last);
  const calls = findCalls(c.sqlText, c.tokens, c.index - 1, c.end, c.terminator);
  c.index = c.end;
  return {
    kind: 'create-materialized-table',
    ...base,
    table,
    tableSpan,
    ...(primaryKey ? { primaryKey } : {}),
    ...(comment !== undefined ? { comment } : {}),
    options,
    freshness,
    ...(refreshMode ? { refreshMode } : {}),
    asQuery: { text: c.sqlText.slice(span.start, span.end), span, calls },
  };
}

function parseAlterMaterialized(c: TokenCursor, base: Base): Statement {
  c.index += 3;
  const { table, span: tableSpan } = parseTableName(c);
  let action: AlterMaterializedTableAction;
  if (c.acceptWord('suspend')) action = { kind: 'suspend' };
  else if (c.acceptWord('resume')) action = { kind: 'resume', options: c.acceptWord('with') ? parseOptionList(c).options : [] };
  else if (c.acceptWord('refresh')) {
    if (c.isWord('partition')) throw c.errorAt(c.peek()!.span, 'REFRESH PARTITION is not supported: materialized tables here have no partitions');
    action = { kind: 'refresh' };
  } else if (c.acceptWord('set')) {
    if (c.acceptWord('freshness')) {
      c.expectSymbol('=');
      action = { kind: 'set-freshness', freshness: parseFreshness(c) };
    } else {
      c.expectWord('refresh_mode');
      action = { kind: 'set-refresh-mode', ...parseRefreshMode(c) };
    }
  } else throw c.error(c.peek());
  c.expectEnd();
  return { kind: 'alter-materialized-table', ...base, table, tableSpan, action };
}

// ---------------------------------------------------------------------------------------
// ML calls inside host statements

const ML_FUNCTIONS = ['ml_predict', 'ml_evaluate', 'vector_search'] as const;
/**
 * Words after which `ml_predict(` names an object being defined or referenced (a function,
 * a table with a column list, an index target...), not a call.
 */
const DEFINING_WORDS = ['function', 'macro', 'procedure', 'exists', 'table', 'into', 'view', 'type', 'references', 'on', 'copy'];

/** Index of the token closing the bracket opened at `open` (`(` or `[`), or -1. */
function matchingClose(tokens: readonly Token[], open: number, end: number): number {
  let depth = 0;
  for (let i = open; i < end; i++) {
    const t = tokens[i]!;
    if (isSymbol(t, '(') || isSymbol(t, '[')) depth++;
    else if (isSymbol(t, ')') || isSymbol(t, ']')) {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** Splits `[from, to)` on commas at bracket depth 0. */
function splitOnCommas(tokens: readonly Token[], from: number, to: number): [number, number][] {
  const ranges: [number, number][] = [];
  let depth = 0;
  let start = from;
  for (let i = from; i < to; i++) {
    const t = tokens[i]!;
    if (isSymbol(t, '(') || isSymbol(t, '[')) depth++;
    else if (isSymbol(t, ')') || isSymbol(t, ']')) depth--;
    else if (depth === 0 && isSymbol(t, ',')) {
      ranges.push([start, i]);
      start = i + 1;
    }
  }
  ranges.push([start, to]);
  return ranges;
}

function isCallStart(tokens: readonly Token[], i: number, to: number): boolean {
  const t = tokens[i]!;
  if (t.kind !== 'identifier' || !(ML_FUNCTIONS as readonly string[]).includes(t.value)) return false;
  if (i + 1 >= to || !isSymbol(tokens[i + 1], '(')) return false;
  const before = tokens[i - 1];
  return !isSymbol(before, '.') && !DEFINING_WORDS.some((w) => isWord(before, w));
}

/**
 * Finds the outermost ML_PREDICT / ML_EVALUATE calls among tokens `[from, to)`. The
 * `terminator` (token at `to`, if any) words "at or near" errors at the range's end.
 */
function findCalls(text: string, tokens: readonly Token[], from: number, to: number, terminator?: Token): MlCall[] {
  const calls: MlCall[] = [];
  for (let i = from; i < to; i++) {
    if (!isCallStart(tokens, i, to)) continue;
    const close = matchingClose(tokens, i + 1, to);
    if (close < 0) throw new TokenCursor(text, tokens, to, to, terminator).error();
    const call = parseCall(text, tokens, i, close);
    const wrapped = i - 2 >= from && isWord(tokens[i - 2], 'table') && isSymbol(tokens[i - 1], '(') && close + 1 < to && isSymbol(tokens[close + 1], ')');
    const last = wrapped ? close + 1 : close;
    const next = last + 1 < to ? tokens[last + 1] : undefined;
    calls.push({ ...call, span: spanOf(tokens[wrapped ? i - 2 : i]!, tokens[last]!), aliased: isWord(next, 'as') || isBareName(next) });
    i = last;
  }
  return calls;
}

/** Parses the call whose name is at `nameIndex` and whose `)` is at `close`. */
function parseCall(text: string, tokens: readonly Token[], nameIndex: number, close: number): Omit<MlCall, 'aliased'> {
  const nameToken = tokens[nameIndex]!;
  const fn = nameToken.value.toUpperCase() as MlCall['function'];
  const args: MlArgument[] = [];
  if (close > nameIndex + 2) {
    for (const [s, e] of splitOnCommas(tokens, nameIndex + 2, close)) {
      const arg = parseArgument(text, tokens, s, e);
      if (arg.value.kind === 'other') refuseNestedCall(text, tokens, s, e, fn);
      args.push(arg);
    }
  }
  const firstNamed = args[0]?.name !== undefined;
  const mixed = args.find((a) => (a.name !== undefined) !== firstNamed);
  if (mixed) {
    throw new TokenCursor(text, tokens, 0, 0).errorAt(mixed.span, `cannot mix positional and named arguments in ${fn}`);
  }
  return { kind: 'ml-call', function: fn, args, span: spanOf(nameToken, tokens[close]!), nameSpan: nameToken.span };
}

/**
 * An ML call inside an argument that is an expression (VECTOR_SEARCH's query vector or
 * TOP_K) would reach the host as written, where it means nothing: only a `TABLE (query)`
 * argument is planned with the calls inside it.
 */
function refuseNestedCall(text: string, tokens: readonly Token[], s: number, e: number, fn: string): void {
  for (let i = s; i < e; i++) {
    if (!isCallStart(tokens, i, e)) continue;
    const name = tokens[i]!.value.toUpperCase();
    throw new TokenCursor(text, tokens, s, e).errorAt(
      tokens[i]!.span,
      `${name} may stand only in a TABLE (subquery) argument of ${fn}, not inside another argument: call it in the FROM clause and pass its column, as in FROM ML_PREDICT(...) AS q, LATERAL TABLE(VECTOR_SEARCH(TABLE docs, q.embedding, DESCRIPTOR(embedding), 3))`,
    );
  }
}

/** One argument in tokens `[s, e)`: `NAME => value` or a value. */
function parseArgument(text: string, tokens: readonly Token[], s: number, e: number): MlArgument {
  const c = new TokenCursor(text, tokens, s, e, tokens[e]);
  if (c.atEnd()) throw c.error();
  let name: string | undefined;
  if (isName(c.peek()) && c.isSymbol('=>', 1)) {
    name = c.next().value.toUpperCase();
    c.index++;
    if (c.atEnd()) throw c.error();
  }
  const value = parseArgValue(c);
  return { kind: 'argument', ...(name !== undefined ? { name } : {}), value, span: spanOf(tokens[s]!, tokens[e - 1]!) };
}

function parseArgValue(c: TokenCursor): MlArgValue {
  const start = c.peek()!;
  if (c.isWord('table') && c.isSymbol('(', 1)) return parseSubqueryArg(c);
  if (c.isWord('table')) {
    c.index++;
    const parts: Identifier[] = [];
    do {
      const token = c.next();
      if (!isName(token) || parts.length === 3) throw c.error(token);
      parts.push(identifier(token));
    } while (c.acceptSymbol('.'));
    c.expectEnd();
    return { kind: 'table', name: parts, span: c.spanFrom(start) };
  }
  if (c.isWord('model') && isName(c.peek(1))) {
    c.index++;
    const name = parseModelName(c, true);
    c.expectEnd();
    return { kind: 'model', name, span: c.spanFrom(start) };
  }
  if (c.isWord('descriptor') && c.isSymbol('(', 1)) return parseDescriptor(c);
  if (c.isWord('map') && c.isSymbol('[', 1)) return parseMap(c);
  const last = c.tokens[c.end - 1]!;
  if (c.index === c.end - 1 && start.kind === 'string') return { kind: 'string', value: start.value, span: start.span };
  const span = spanOf(start, last);
  return { kind: 'other', text: c.sqlText.slice(span.start, span.end), span };
}

/** `TABLE (query)`: the query's own ML calls are found recursively. */
function parseSubqueryArg(c: TokenCursor): MlArgValue {
  const open = c.index + 1;
  const close = matchingClose(c.tokens, open, c.end);
  if (close < 0) {
    c.index = c.end;
    throw c.error();
  }
  if (close === open + 1) throw c.error(c.tokens[close]);
  c.index = close + 1;
  c.expectEnd();
  const span = spanOf(c.tokens[open + 1]!, c.tokens[close - 1]!);
  const calls = findCalls(c.sqlText, c.tokens, open + 1, close, c.tokens[close]);
  return { kind: 'subquery', text: c.sqlText.slice(span.start, span.end), span, calls };
}

function parseDescriptor(c: TokenCursor): MlArgValue {
  const start = c.next();
  c.expectSymbol('(');
  const columns: Identifier[] = [];
  do {
    const token = c.next();
    if (!isName(token)) throw c.error(token);
    if (c.isSymbol('.')) throw c.errorAt(token.span, `DESCRIPTOR columns must be unqualified column names, found "${c.sqlText.slice(token.span.start, (c.peek(1) ?? token).span.end)}"`);
    columns.push(identifier(token));
  } while (c.acceptSymbol(','));
  c.expectSymbol(')');
  c.expectEnd();
  return { kind: 'descriptor', columns, span: c.spanFrom(start) };
}

function parseMap(c: TokenCursor): MlArgValue {
  const start = c.next();
  const open = c.index;
  const close = matchingClose(c.tokens, open, c.end);
  if (close < 0) {
    c.index = c.end;
    throw c.error();
  }
  const items = close === open + 1 ? [] : splitOnCommas(c.tokens, open + 1, close);
  const values = items.map(([s, e]) => {
    if (s === e) throw c.error(c.tokens[e]);
    const first = c.tokens[s]!;
    const span = spanOf(first, c.tokens[e - 1]!);
    const literal = e === s + 1 && first.kind === 'string';
    return { text: literal ? first.value : c.sqlText.slice(span.start, span.end), literal, span };
  });
  if (values.length % 2 !== 0) throw c.errorAt(start.span, 'MAP needs an even number of elements (key, value pairs)');
  const entries = [];
  for (let k = 0; k < values.length; k += 2) {
    const key = values[k]!;
    const value = values[k + 1]!;
    if (!key.literal) throw c.errorAt(key.span, `MAP keys must be string literals, found ${key.text}`);
    entries.push({ key: key.text, value: value.text, literal: value.literal, keySpan: key.span, valueSpan: value.span });
  }
  c.index = close + 1;
  c.expectEnd();
  return { kind: 'map', entries, span: c.spanFrom(start) };
}
