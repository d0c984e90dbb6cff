/**
 * Which statements may write one ML_PREDICT's rows straight into their own table, skipping
 * the copy of the stage's result (`HostStage.into`). Pure token work; the executor
 * (core/execution/model-stage.ts) runs the write. Exactly these shapes qualify, every other one takes the general path:
 *
 * ```sql
 * CREATE [[GLOBAL | LOCAL] TEMP | TEMPORARY | UNLOGGED] TABLE [IF NOT EXISTS] name [(names)]
 *   [USING ...] [WITH (...)] [ON COMMIT ...] [TABLESPACE ...]
 *   AS SELECT <columns> FROM <call> [[AS] alias]
 * INSERT INTO name [(columns)] SELECT <columns> FROM <call> [[AS] alias]
 * ```
 *
 * - `<call>` is the statement's only ML call (its input may hold more), `ML_PREDICT(...)` or
 *   `TABLE(ML_PREDICT(...))`; nothing follows it but its alias (no WHERE, GROUP BY, JOIN,
 *   ORDER BY, LIMIT, `WITH [NO] DATA`, ON CONFLICT, RETURNING, a column alias list, ...).
 * - `<columns>` is a plain projection: `*`, `alias.*`, `column`, `alias.column`, each but the
 *   stars with an optional `AS label` (and, in CREATE TABLE AS, a bare label). No
 *   expressions, no DISTINCT; INSERT takes no leading WITH and no OVERRIDING.
 */
import type { MlCall, QueryStatement } from '../sql/ast.js';
import { isBareName } from '../sql/keywords.js';
import { isSymbol, isWord, tokenize, type Token } from '../sql/lexer.js';

/** One item of the projection: `*`, or a column of the call's result. */
export type ProjectionItem = { readonly kind: 'star' } | { readonly kind: 'column'; readonly name: string };

/** A statement that qualifies (see the module doc). Spans index into the script. */
export interface DirectWriteShape {
  readonly kind: 'create' | 'insert';
  readonly call: MlCall;
  /** The target's name parts, resolved (plain identifiers folded to lower case). */
  readonly table: readonly string[];
  readonly temporary: boolean;
  readonly ifNotExists: boolean;
  /** INSERT's column list, resolved, when written. */
  readonly columns?: readonly string[];
  readonly projection: readonly ProjectionItem[];
}

/**
 * The shape of `statement` when it may write straight into its table, else undefined.
 *
 * @example
 * directWriteShape(parseScript(sql)[0], sql)
 * // for 'CREATE TABLE r AS SELECT id, p.price FROM ML_PREDICT(...) p':
 * // { kind: 'create', table: ['r'], projection: [{ kind: 'column', name: 'id' }, { kind: 'column', name: 'price' }], ... }
 */
export function directWriteShape(statement: QueryStatement, text: string): DirectWriteShape | undefined {
  if (statement.calls.length !== 1 || statement.calls[0]!.function !== 'ML_PREDICT') return undefined;
  const call = statement.calls[0]!;
  const tokens = tokenize(text.slice(statement.span.start, statement.span.end)).map((t) => ({
    ...t,
    span: { start: t.span.start + statement.span.start, end: t.span.end + statement.span.start },
  }));
  const c = new Cursor(tokens);
  const head = c.word('create') ? createHead(c) : c.word('insert') && c.word('into') ? insertHead(c) : undefined;
  if (!head || !c.word('select')) return undefined;
  const projection = projectionItems(c, head.kind === 'create');
  // FROM <call>, at its exact span, then an optional alias, then the end.
  if (!projection || c.peek()?.span.start !== call.span.start) return undefined;
  while (c.peek() && c.peek()!.span.end <= call.span.end) c.next();
  const alias = c.word('as') ? c.name() : c.peek() ? c.name() : undefined;
  if (!c.atEnd()) return undefined;
  const resolved = resolveQualifiers(projection.items, alias);
  return resolved && { ...head, call, projection: resolved };
}

/** After CREATE: the target and its options, up to and including `AS`. */
function createHead(c: Cursor): Omit<DirectWriteShape, 'call' | 'projection'> | undefined {
  if (c.word('global') || c.word('local')) {
    if (!c.peekWord('temp') && !c.peekWord('temporary')) return undefined;
  }
  const temporary = c.word('temp') || c.word('temporary');
  if (!temporary) c.word('unlogged');
  if (!c.word('table')) return undefined;
  const ifNotExists = c.word('if');
  if (ifNotExists && !(c.word('not') && c.word('exists'))) return undefined;
  const table = c.qualifiedName();
  if (!table) return undefined;
  // Column names and the options (USING, WITH (...), ON COMMIT, TABLESPACE) are Postgres's to
  // read: the host runs this part of the statement itself. Skip to the top-level AS.
  let depth = 0;
  for (let t = c.next(); t; t = c.next()) {
    if (isSymbol(t, '(')) depth++;
    else if (isSymbol(t, ')')) depth--;
    else if (depth === 0 && isWord(t, 'as')) return { kind: 'create', table, temporary, ifNotExists };
  }
  return undefined;
}

/** After INSERT INTO: the target and its column list. */
function insertHead(c: Cursor): Omit<DirectWriteShape, 'call' | 'projection'> | undefined {
  const table = c.qualifiedName();
  if (!table) return undefined;
  if (!isSymbol(c.peek(), '(')) return { kind: 'insert', table, temporary: false, ifNotExists: false };
  c.next();
  const columns: string[] = [];
  do {
    const name = c.name();
    if (name === undefined) return undefined;
    columns.push(name);
  } while (c.symbol(','));
  return c.symbol(')') ? { kind: 'insert', table, temporary: false, ifNotExists: false, columns } : undefined;
}

/**
 * The select list up to and including FROM. Labels are Postgres's to read in CREATE TABLE AS
 * (it runs that text); INSERT ignores them, so there only `AS label` is taken, which
 * Postgres accepts with any word.
 */
function projectionItems(c: Cursor, bareLabels: boolean): { items: { qualifier?: string; item: ProjectionItem }[] } | undefined {
  const items: { qualifier?: string; item: ProjectionItem }[] = [];
  for (;;) {
    let qualifier: string | undefined;
    if (!isSymbol(c.peek(), '*') && isSymbol(c.peek(1), '.')) {
      qualifier = c.name();
      if (qualifier === undefined) return undefined;
      c.next();
    }
    if (c.symbol('*')) {
      items.push({ qualifier, item: { kind: 'star' } });
    } else {
      const name = c.name();
      if (name === undefined) return undefined;
      items.push({ qualifier, item: { kind: 'column', name } });
      if (c.word('as')) {
        if (!c.label()) return undefined;
      } else if (!c.peekWord('from') && !isSymbol(c.peek(), ',') && (!bareLabels || c.name() === undefined)) {
        return undefined;
      }
    }
    if (c.word('from')) return { items };
    if (!c.symbol(',')) return undefined;
  }
}

/** Drops qualifiers that name the call's alias; any other qualifier disqualifies. */
function resolveQualifiers(items: readonly { qualifier?: string; item: ProjectionItem }[], alias: string | undefined): ProjectionItem[] | undefined {
  if (items.some((i) => i.qualifier !== undefined && i.qualifier !== alias)) return undefined;
  return items.map((i) => i.item);
}

/**
 * The position in the call's result (input columns, then output columns, named `names`) of
 * each column the projection yields; undefined when a name is missing or ambiguous (the
 * general path reports it).
 */
export function projectionSources(projection: readonly ProjectionItem[], names: readonly string[]): number[] | undefined {
  const sources: number[] = [];
  for (const item of projection) {
    if (item.kind === 'star') {
      sources.push(...names.keys());
      continue;
    }
    const found = names.flatMap((name, i) => (name === item.name ? [i] : []));
    if (found.length !== 1) return undefined;
    sources.push(found[0]!);
  }
  return sources;
}

/** A read position over one statement's tokens, with the few matchers the shapes need. */
class Cursor {
  private i = 0;

  constructor(private readonly tokens: readonly Token[]) {}

  peek(ahead = 0): Token | undefined {
    return this.tokens[this.i + ahead];
  }

  next(): Token | undefined {
    return this.tokens[this.i++];
  }

  atEnd(): boolean {
    return this.i >= this.tokens.length;
  }

  peekWord(word: string): boolean {
    return isWord(this.peek(), word);
  }

  /** Consumes the plain word `word` if it is next. */
  word(word: string): boolean {
    if (!this.peekWord(word)) return false;
    this.i++;
    return true;
  }

  /** Consumes the symbol `text` if it is next. */
  symbol(text: string): boolean {
    if (!isSymbol(this.peek(), text)) return false;
    this.i++;
    return true;
  }

  /** Consumes a name, resolved: a plain identifier that is not a reserved word, or a `"quoted"` one. */
  name(): string | undefined {
    const t = this.peek();
    if (!isBareName(t)) return undefined;
    this.i++;
    return t.value;
  }

  /** Consumes a label after AS: any identifier, key words included. */
  label(): boolean {
    const t = this.peek();
    if (!(t?.kind === 'identifier' || (t?.kind === 'quoted-identifier' && t.text.startsWith('"')))) return false;
    this.i++;
    return true;
  }

  /** Consumes `name`, `schema.name` or `catalog.schema.name`. */
  qualifiedName(): string[] | undefined {
    const parts: string[] = [];
    do {
      const part = this.name();
      if (part === undefined) return undefined;
      parts.push(part);
    } while (parts.length < 3 && this.symbol('.'));
    return parts;
  }
}
