/**
 * Key words that decide how a token after a name reads: Postgres's reserved key words and
 * those that can only be a function or type name
 * (https://www.postgresql.org/docs/current/sql-keywords-appendix.html). DuckDB's grammar
 * is derived from Postgres's and reserves the same words.
 */
import type { Token } from './lexer.js';

/** Words that never name a column or alias without quotes. */
export const RESERVED_WORDS: ReadonlySet<string> = new Set(
  (
    'all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate collation column concurrently ' +
    'constraint create cross current_catalog current_date current_role current_schema current_time current_timestamp current_user default ' +
    'deferrable desc distinct do else end except false fetch for foreign freeze from full grant group having ilike in initially inner ' +
    'intersect into is isnull join lateral leading left like limit localtime localtimestamp natural not notnull null offset on only or ' +
    'order outer overlaps placing primary references returning right select session_user similar some symmetric system_user table ' +
    'tablesample then to trailing true union unique user using variadic verbose when where window with'
  ).split(' '),
);

/** Whether `token` can be a name where no AS precedes it: a plain identifier that is not reserved, or a `"quoted"` one. */
export function isBareName(token: Token | undefined): token is Token {
  return (token?.kind === 'identifier' && !RESERVED_WORDS.has(token.value)) || (token?.kind === 'quoted-identifier' && token.text.startsWith('"'));
}
