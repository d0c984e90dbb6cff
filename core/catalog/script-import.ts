/**
 * Imports the models of a SQL script (`modelsql catalog import FILE.sql`): a script from
 * `catalog export --format sql`, or a Flink SQL script. Its CREATE MODEL statements run
 * against the target, as do the ALTER / DROP / GRANT MODEL statements on the models it
 * creates, and its CREATE MATERIALIZED TABLE statements whose source tables exist in the
 * target; every other statement (tables, inserts, `SET`, queries, statements on other
 * models) is listed as skipped with its line. All of it runs in one transaction.
 */
import { DuplicateModelError, ModelSqlError, positionAt } from '../errors.js';
import type { Host } from '../host.js';
import type { CreateMaterializedTableStatement, Identifier, ModelName, Statement } from '../sql/ast.js';
import { formatQualifiedName, formatStatement } from '../sql/format.js';
import { tokenize } from '../sql/lexer.js';
import { parseScript } from '../sql/parser.js';
import { inImportTransaction, type ConflictPolicy } from './catalog-import.js';
import { CatalogStore } from './catalog-store.js';
import type { ModelEntry } from '../model-types.js';

/** The database Flink names `default_catalog.default_database.m` in; models named in it land in the target's default schema. */
const FLINK_DEFAULT_DATABASE = 'default_database';

/** What happened to one statement of the script. */
export interface ScriptStatementReport {
  /** 1-based line where the statement starts. */
  readonly line: number;
  /** The statement's start, on one line. */
  readonly statement: string;
  readonly action: 'imported' | 'skipped';
  /** Why it was skipped, or how it was changed to import it. */
  readonly note?: string;
}

/** What happened to one model the script creates. */
export interface ScriptModelReport {
  /** `name`, or `schema.name` outside the default schema. */
  readonly model: string;
  readonly action: 'create' | 'replace' | 'skip' | 'new-version';
}

/** The outcome of a script import. */
export interface ScriptImportReport {
  readonly dryRun: boolean;
  readonly models: readonly ScriptModelReport[];
  readonly statements: readonly ScriptStatementReport[];
}

/** Runs one statement of a script on the target (a session's `runStatement`). */
export type StatementRunner = (statement: Statement, text: string) => Promise<unknown>;

/** Options of {@link importScript}; every field optional. */
export interface ScriptImportOptions {
  /** Default `error`. */
  readonly onConflict?: ConflictPolicy;
  /** Run everything, then roll back. */
  readonly dryRun?: boolean;
  /** Called after each statement with statements done and total. */
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * Imports the models of `text` into the catalog of `host`, running statements with `run`
 * (which must use the same host connection).
 *
 * @throws SqlSyntaxError when the script does not parse (nothing runs);
 *   DuplicateModelError (42710) for a name clash under the `error` policy; the error of
 *   a failing statement (nothing is kept).
 */
export async function importScript(host: Host, run: StatementRunner, text: string, options: ScriptImportOptions = {}): Promise<ScriptImportReport> {
  const statements = parseScript(text);
  const policy = options.onConflict ?? 'error';
  return inImportTransaction(host, options.dryRun ?? false, async () => {
    const store = new CatalogStore(host);
    await store.ensure();
    const defaultSchema = await host.currentSchema();
    const existing = new Map((await store.list()).map((e) => [JSON.stringify([e.schema, e.name]), e]));
    const keyOf = (name: ModelName) => {
      const parts = name.parts.map((p) => p.value).slice(-2);
      if (parts[0] === FLINK_DEFAULT_DATABASE && parts.length === 2) parts.shift();
      return JSON.stringify(parts.length === 2 ? parts : [defaultSchema, parts[0]]);
    };
    const labelOf = (key: string) => {
      const [schema, name] = JSON.parse(key) as [string, string];
      return formatQualifiedName(schema === defaultSchema ? [name] : [schema, name]);
    };
    const created = [...new Set(statements.flatMap((s) => (s.kind === 'create-model' ? [keyOf(s.name)] : [])))];
    const clashes = created.filter((k) => existing.has(k));
    if (policy === 'error' && clashes.length > 0) {
      throw new DuplicateModelError(
        `${clashes.length === 1 ? 'model' : 'models'} ${clashes.map(labelOf).join(', ')} already ${clashes.length === 1 ? 'exists' : 'exist'} in the target catalog; nothing was imported (choose an on-conflict policy: skip, replace or new-version)`,
      );
    }
    const models = new Set(created);
    const started = new Set<string>();
    const reports: ScriptStatementReport[] = [];
    const lineAt = lineCounter(text);
    for (const [i, statement] of statements.entries()) {
      // The statement's text starts with the comments before it; its line is its first token's.
      const start = statement.span.start + (tokenize(statement.text)[0]?.span.start ?? 0);
      const line = lineAt(start);
      const summary = summarize(text.slice(start, statement.span.end));
      const skip = (note: string) => reports.push({ line, statement: summary, action: 'skipped', note });
      if (statement.kind === 'create-materialized-table') {
        const outcome = await importMaterialized(host, run, statement, text, defaultSchema);
        if (outcome.imported) reports.push({ line, statement: summary, action: 'imported', ...(outcome.note ? { note: outcome.note } : {}) });
        else skip(outcome.note!);
        options.onProgress?.(i + 1, statements.length);
        continue;
      }
      const name = 'name' in statement ? statement.name : undefined;
      const key = name ? keyOf(name) : undefined;
      const before = key === undefined ? undefined : existing.get(key);
      if (!name || !key) skip(statement.kind === 'show-models' ? 'reads the catalog; nothing to import' : 'not a model statement');
      else if (!models.has(key)) skip(`model ${labelOf(key)} is not created by this script`);
      else if (['show-create-model', 'describe-model', 'show-model-versions'].includes(statement.kind)) skip('reads the catalog; nothing to import');
      else if (before && policy === 'skip') skip(`model ${labelOf(key)} exists in the target (on-conflict skip)`);
      else {
        const notes: string[] = [];
        const first = !started.has(key);
        started.add(key);
        if (before && policy === 'replace' && first) {
          await runText(run, `DROP MODEL ${labelOf(key)}`, line);
          notes.push(`replaces the target's model ${labelOf(key)}`);
        }
        const base = before && policy === 'new-version' ? Math.max(...before.versions.map((v) => v.version)) : 0;
        const changed = adapt(statement, { first, base, notes, existed: before !== undefined });
        if (statement.kind === 'alter-model' && statement.action.kind === 'rename') models.add(keyOf(statement.action.newName));
        try {
          if (changed === statement) await run(statement, text);
          else await runText(run, formatStatement(changed), line);
        } catch (error) {
          if (error instanceof ModelSqlError && error.sqlstate === '0A000' && (statement.kind === 'grant-model' || statement.kind === 'revoke-model')) {
            skip(error.message);
            continue;
          }
          throw error;
        }
        reports.push({ line, statement: summary, action: 'imported', ...(notes.length > 0 ? { note: notes.join('; ') } : {}) });
      }
      options.onProgress?.(i + 1, statements.length);
    }
    return {
      dryRun: options.dryRun ?? false,
      models: created.map((k) => ({ model: labelOf(k), action: modelAction(existing.get(k), policy) })),
      statements: reports,
    };
  });
}

function modelAction(before: ModelEntry | undefined, policy: ConflictPolicy): ScriptModelReport['action'] {
  if (!before) return 'create';
  return policy === 'skip' ? 'skip' : policy === 'new-version' ? 'new-version' : 'replace';
}

/** Runs statement text built here; its errors name the script line it stands for. */
async function runText(run: StatementRunner, text: string, line: number): Promise<void> {
  const [statement] = parseScript(text);
  try {
    await run(statement!, text);
  } catch (error) {
    if (error instanceof ModelSqlError) error.message = `${error.message} (statement at line ${line} of the script)`;
    throw error;
  }
}

/**
 * The statement to run for a model the script creates: a catalog part of a Flink name
 * dropped, TEMPORARY made persistent, and under `new-version` the first CREATE turned into
 * CREATE OR REPLACE and version numbers moved past the target's (`base`).
 */
function adapt(statement: Statement, ctx: { readonly first: boolean; readonly base: number; readonly notes: string[]; readonly existed: boolean }): Statement {
  if (!('name' in statement)) return statement;
  let name = statement.name;
  if (name.parts.length === 3) {
    ctx.notes.push(`catalog '${name.parts[0]!.value}' left out of the name`);
    name = { ...name, parts: name.parts.slice(1) };
  }
  if (name.parts.length === 2 && name.parts[0]!.value === FLINK_DEFAULT_DATABASE) {
    ctx.notes.push(`Flink's ${FLINK_DEFAULT_DATABASE} is the default schema`);
    name = { ...name, parts: name.parts.slice(1) };
  }
  if (ctx.base > 0 && name.version !== undefined) name = { ...name, version: name.version + ctx.base };
  switch (statement.kind) {
    case 'create-model': {
      const temporary = statement.temporary;
      if (temporary) ctx.notes.push('TEMPORARY: imported as a persistent model');
      const orReplace = statement.orReplace || (ctx.first && ctx.existed && ctx.base > 0);
      if (orReplace && !statement.orReplace) ctx.notes.push('added as a new version');
      if (name === statement.name && !temporary && orReplace === statement.orReplace) return statement;
      return { ...statement, name, temporary: false, orReplace };
    }
    case 'alter-model': {
      const action =
        ctx.base > 0 && statement.action.kind === 'set'
          ? { ...statement.action, options: statement.action.options.map((o) => (o.key.toLowerCase() === 'default-version' && /^[0-9]+$/.test(o.value) ? { ...o, value: String(Number(o.value) + ctx.base) } : o)) }
          : statement.action;
      return name === statement.name && action === statement.action ? statement : { ...statement, name, action };
    }
    default:
      return name === statement.name ? statement : { ...statement, name };
  }
}

/**
 * A script's `CREATE MATERIALIZED TABLE`: run on the target (Flink's catalog and
 * `default_database` left out of its name) when the tables its query reads exist there;
 * else skipped, saying which is missing (a failed statement would end the import's
 * transaction). Its ML_PREDICT's model may be one the script created before it.
 */
async function importMaterialized(
  host: Host,
  run: StatementRunner,
  statement: CreateMaterializedTableStatement,
  text: string,
  defaultSchema: string,
): Promise<{ imported: boolean; note?: string }> {
  const local = (parts: readonly Identifier[]): Identifier[] => {
    const rest = parts.slice(-2);
    return rest.length === 2 && rest[0]!.value === FLINK_DEFAULT_DATABASE ? rest.slice(1) : rest;
  };
  for (const call of statement.asQuery.calls) {
    for (const arg of call.args) {
      if (arg.value.kind !== 'table') continue;
      const parts = arg.value.name.slice(-2);
      const schema = parts.length === 2 ? parts[0]!.value : defaultSchema;
      const table = parts[parts.length - 1]!.value;
      const eq = (left: string, right: string) => host.dialect.operator(left, '=', right);
      const found = await host.execute(`SELECT 1 FROM information_schema.tables WHERE ${eq('table_schema', '$1')} AND ${eq('table_name', '$2')}`, [schema, table]);
      if (found.rows.length === 0) return { imported: false, note: `its source table ${formatQualifiedName(parts.map((p) => p.value))} does not exist in the target; create it, then run the statement` };
    }
  }
  const name = local(statement.table);
  await run(name.length === statement.table.length ? statement : { ...statement, table: name }, text);
  return { imported: true, ...(name.length !== statement.table.length ? { note: `catalog and ${FLINK_DEFAULT_DATABASE} left out of the name` } : {}) };
}

/**
 * The 1-based line of an offset of `text`, for offsets asked in ascending order: each call
 * counts newlines only from the previous offset on, so a script of a million statements is
 * read once, not once per statement (`positionAt` from the start each time was quadratic).
 */
function lineCounter(text: string): (offset: number) => number {
  let at = 0;
  let line = 1;
  return (offset) => {
    if (offset < at) return positionAt(text, offset).line;
    for (; at < offset; at++) if (text.charCodeAt(at) === 10) line++;
    return line;
  };
}

/** The statement's first line, whitespace collapsed, at most 72 characters. */
function summarize(text: string): string {
  const one = text.split('\n')[0]!.replace(/\s+/g, ' ').trim();
  return one.length > 72 ? `${one.slice(0, 71)}…` : one;
}
