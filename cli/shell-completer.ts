/**
 * Tab completion for the interactive shell (node:readline's `completer`): SQL and model SQL
 * key words, model names, table and view names, column names (all columns, or those of
 * `table.` before the cursor), the shell's dot commands and their arguments, and file names
 * after `.read` / `.open`.
 *
 * Names come from the database: `SHOW MODELS` and `information_schema.columns` (present on
 * DuckDB and Postgres alike), read on the first Tab and again after each statement the
 * shell runs (a statement may create or drop them).
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Session } from '../core/session/session.js';

/** Key words offered by completion: common SQL, and the model SQL of FLIP-437. */
export const COMPLETION_KEYWORDS: readonly string[] = [
  'ALTER', 'AND', 'AS', 'ASC', 'BETWEEN', 'BY', 'CASE', 'CAST', 'COMMENT', 'COPY', 'COUNT', 'CREATE', 'CROSS', 'DELETE',
  'DESC', 'DESCRIBE', 'DESCRIPTOR', 'DISTINCT', 'DROP', 'ELSE', 'END', 'EXCEPT', 'EXISTS', 'EXPLAIN', 'EXTENDED',
  'FALSE', 'FROM', 'FULL', 'GRANT', 'GROUP', 'HAVING', 'IF', 'IN', 'INNER', 'INPUT', 'INSERT', 'INTERSECT', 'INTO',
  'IS', 'JOIN', 'LATERAL', 'LEFT', 'LIKE', 'LIMIT', 'MAP', 'MATERIALIZED', 'ML_EVALUATE', 'ML_PREDICT', 'MODEL',
  'MODELS', 'NOT', 'NULL', 'OFFSET', 'ON', 'OR', 'ORDER', 'OUTER', 'OUTPUT', 'OVER', 'PARTITION', 'RENAME', 'REPLACE',
  'RESET', 'REVOKE', 'RIGHT', 'SELECT', 'SET', 'SHOW', 'TABLE', 'TABLES', 'TEMPORARY', 'THEN', 'TO', 'TRUE', 'UNION',
  'UPDATE', 'USAGE', 'USING', 'VALUES', 'VECTOR_SEARCH', 'VERSIONS', 'VIEW', 'WHEN', 'WHERE', 'WITH',
];

/** The shell's commands and the words each takes (`undefined`: a file name). */
export type ShellCommandArgs = ReadonlyMap<string, readonly string[] | undefined>;

/** Names the completer offers, read from the database. */
interface Names {
  readonly models: readonly string[];
  readonly tables: readonly string[];
  /** Column names by lower-case table name. */
  readonly columns: ReadonlyMap<string, readonly string[]>;
}

const NO_NAMES: Names = { models: [], tables: [], columns: new Map() };

/** The tables and views of the user's schemas, with their columns (compared as text: see shell.ts's `TABLES_SQL`). */
const COLUMNS_SQL = `SELECT table_name, column_name FROM information_schema.columns
 WHERE CAST(table_schema AS TEXT) NOT IN ('information_schema', 'pg_catalog', 'ml_catalog') ORDER BY table_name, ordinal_position`;

/** Reads the names the completer offers; a failure (e.g. a host without SHOW MODELS rights) offers none of that kind. */
async function readNames(session: Session): Promise<Names> {
  const columns = new Map<string, string[]>();
  const tables: string[] = [];
  try {
    for (const [table, column] of (await session.sql(COLUMNS_SQL)).rows) {
      const key = String(table).toLowerCase();
      if (!columns.has(key)) {
        columns.set(key, []);
        tables.push(String(table));
      }
      columns.get(key)!.push(String(column));
    }
  } catch {
    // no table names
  }
  let models: string[] = [];
  try {
    const result = await session.sql('SHOW MODELS');
    const at = result.columns.findIndex((c) => c.name === 'model_name');
    models = result.rows.map((row) => String(row[at]));
  } catch {
    // no model names
  }
  return { models, tables, columns };
}

/** Matches `candidates` that start with `prefix` (case-insensitive), written in the case the user typed. */
function matching(candidates: Iterable<string>, prefix: string, keywordCase = false): string[] {
  const lower = prefix.toLowerCase();
  const upper = keywordCase && prefix !== '' && prefix === prefix.toUpperCase() && /[A-Z]/.test(prefix);
  const out = new Set<string>();
  for (const c of candidates) {
    if (!c.toLowerCase().startsWith(lower)) continue;
    out.add(keywordCase ? (upper ? c.toUpperCase() : c.toLowerCase()) : c);
  }
  return [...out].sort();
}

/** File names starting with `partial` (directories end with `/`). */
function fileNames(partial: string, cwd: string): string[] {
  const dir = partial.endsWith('/') ? partial : dirname(partial) === '.' && !partial.startsWith('./') ? '' : `${dirname(partial)}/`;
  const base = partial.slice(dir.length);
  try {
    return readdirSync(join(cwd, dir || '.'))
      .filter((name) => name.startsWith(base) && (base.startsWith('.') || !name.startsWith('.')))
      .map((name) => {
        let isDir = false;
        try {
          isDir = statSync(join(cwd, dir, name)).isDirectory();
        } catch {
          // a dangling link: offered as a file
        }
        return `${dir}${name}${isDir ? '/' : ''}`;
      })
      .sort();
  } catch {
    return [];
  }
}

/**
 * The shell's completer. `complete(line)` answers readline: the candidates and the part of
 * the line they replace. `invalidate()` forgets the names read from the database.
 */
export class ShellCompleter {
  private names: Names | undefined;
  private reading: Promise<Names> | undefined;

  /**
   * @param session the database, or a function returning the current one (`.open` changes it).
   * @param commands the shell commands (`.mode` → its formats) that complete at the start of a line.
   * @param busy while it returns true (a statement is running) no query is sent: names read before are used.
   */
  constructor(
    private readonly session: () => Session,
    private readonly commands: ShellCommandArgs,
    private readonly busy: () => boolean = () => false,
    private readonly cwd: () => string = () => process.cwd(),
  ) {}

  /** Resolves once no query of the completer is running (the shell runs statements after it, not beside it). */
  async idle(): Promise<void> {
    await this.reading?.catch(() => undefined);
  }

  /** Forgets the names read so far; the next Tab reads them again. */
  invalidate(): void {
    this.names = undefined;
  }

  private async currentNames(): Promise<Names> {
    if (this.names) return this.names;
    if (this.busy()) return NO_NAMES;
    this.reading ??= readNames(this.session()).finally(() => (this.reading = undefined));
    this.names = await this.reading;
    return this.names;
  }

  /**
   * Completes the text before the cursor, as readline's completer: resolves to the
   * candidates and the substring they complete.
   *
   * @example
   * await completer.complete('select * from hou') // [['houses'], 'hou']
   */
  async complete(line: string): Promise<[string[], string]> {
    const command = /^\s*([.\\]\S*)(\s+(\S*))?$/.exec(line);
    if (command) {
      const [, word = '', gap, arg = ''] = command;
      if (gap === undefined) return [matching(this.commands.keys(), word), word];
      if (!this.commands.has(word.toLowerCase())) return [[], arg];
      const args = this.commands.get(word.toLowerCase());
      return [args === undefined ? fileNames(arg, this.cwd()) : matching(args, arg), arg];
    }
    const qualified = /([A-Za-z_][\w$]*)\.([A-Za-z_][\w$]*)?$/.exec(line);
    if (qualified) {
      const [, table = '', partial = ''] = qualified;
      const names = await this.currentNames();
      const columns = names.columns.get(table.toLowerCase()) ?? [];
      return [matching(columns, partial), partial];
    }
    const word = /[A-Za-z_][\w$]*$/.exec(line)?.[0] ?? '';
    const names = await this.currentNames();
    const allColumns = [...names.columns.values()].flat();
    const found = [
      ...matching(names.models, word),
      ...matching(names.tables, word),
      ...matching(allColumns, word),
      ...matching(COMPLETION_KEYWORDS, word, true),
    ];
    return [[...new Set(found)], word];
  }
}
