/**
 * Which client statements are model statements, for the proxy's relay: a cheap test on the
 * message's bytes (or the text's characters) first, since every model statement and ML call
 * contains `model`, `ml_` or `vector_search`, every materialized-table statement `materialized`; then the
 * scanner and parser decide. No regular expression reads the SQL. Statements without model
 * syntax go to Postgres as written.
 */
import type { Statement } from '../../../core/sql/ast.js';
import { scan, type LexOptions } from '../../../core/sql/lexer.js';
import { parseScript } from '../../../core/sql/parser.js';
import { parseQuery } from './message-readers.js';

/** Key words whose presence makes a statement that does not parse a broken model statement (the proxy reports it). */
const MODEL_WORDS: ReadonlySet<string> = new Set(['model', 'models', 'ml_predict', 'ml_evaluate', 'vector_search']);

/**
 * Whether `text` may hold model syntax: every model statement and ML call contains `model`,
 * `ml_` or `vector_search`, every materialized-table statement `materialized` (a necessary condition only;
 * the parser decides: Postgres's own `MATERIALIZED VIEW` statements stay host SQL).
 */
export function mayHoldModelSyntax(text: string): boolean {
  // Latin-1 keeps ASCII as is (other characters only add candidates for the parser to reject).
  return bytesMayHoldModelSyntax(Buffer.from(text, 'latin1'));
}

/** `aterialized`, the rest of `materialized` after its `m`. */
const ATERIALIZED = Buffer.from('aterialized');
/** `ector_search`, the rest of `vector_search` after its `v`. */
const ECTOR_SEARCH = Buffer.from('ector_search');

/**
 * The same test on a message's UTF-8 bytes, `bytes[start, end)`, without decoding them (the
 * hot path of plain traffic): `m` followed by `odel`, `l_` or `aterialized`, or `v` followed
 * by `ector_search`, any case.
 */
export function bytesMayHoldModelSyntax(bytes: Buffer, start = 0, end = bytes.length): boolean {
  for (let i = start; i < end - 2; i++) {
    const b0 = bytes[i]! | 0x20;
    if (b0 === 0x76 && i + ECTOR_SEARCH.length < end && ECTOR_SEARCH.every((c, k) => (bytes[i + 1 + k]! | (c === 0x5f ? 0 : 0x20)) === c)) return true;
    if (b0 !== 0x6d) continue;
    const b1 = bytes[i + 1]! | 0x20;
    if (b1 === 0x6c && bytes[i + 2] === 0x5f) return true;
    if (b1 === 0x6f && i + 4 < end && (bytes[i + 2]! | 0x20) === 0x64 && (bytes[i + 3]! | 0x20) === 0x65 && (bytes[i + 4]! | 0x20) === 0x6c) return true;
    if (b1 === 0x61 && i + ATERIALIZED.length < end && ATERIALIZED.every((c, k) => (bytes[i + 1 + k]! | 0x20) === c)) return true;
  }
  return false;
}

/**
 * The statements of `text` when at least one holds model syntax; undefined when all are host
 * SQL. `options` say how the upstream session reads strings (`standard_conforming_strings`),
 * so that the proxy and Postgres agree on where each string ends.
 *
 * @throws the parser's error for text that does not parse and names a model key word
 *   (`MODEL`, `ML_PREDICT`, ... as a word, not inside a string or comment).
 */
export function modelStatements(text: string, options: LexOptions): Statement[] | undefined {
  if (!mayHoldModelSyntax(text)) return undefined;
  let statements: Statement[];
  try {
    statements = parseScript(text, options);
  } catch (error) {
    // A broken model statement: the proxy reports the parser's error. Anything else
    // (an unterminated string in plain SQL) is Postgres's to report.
    const tokens = scan(text, options).tokens;
    const named = (i: number) => tokens[i]?.kind === 'identifier' && tokens[i]!.value;
    if (tokens.some((t, i) => t.kind === 'identifier' && (MODEL_WORDS.has(t.value) || (t.value === 'materialized' && ['table', 'tables'].includes(String(named(i + 1))))))) throw error;
    return undefined;
  }
  return statements.some((s) => s.kind !== 'host') ? statements : undefined;
}

/** `modelStatements`, but a parse error counts as "has model syntax" (the proxy reports it). */
export function modelStatementsSafe(text: string, options: LexOptions): boolean {
  try {
    return modelStatements(text, options) !== undefined;
  } catch {
    return true;
  }
}

/** Whether a Query message (its payload) is for the proxy: it holds a model statement, or a broken one. */
export function queryHoldsModelSyntax(payload: Buffer, options: LexOptions): boolean {
  return bytesMayHoldModelSyntax(payload) && modelStatementsSafe(parseQuery(payload), options);
}

/** Whether a Parse message (its payload, and its decoded `text`) prepares a model statement, or a broken one. */
export function parseHoldsModelSyntax(payload: Buffer, text: string, options: LexOptions): boolean {
  return bytesMayHoldModelSyntax(payload) && modelStatementsSafe(text, options);
}
