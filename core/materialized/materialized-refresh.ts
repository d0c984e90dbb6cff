/**
 * Refreshing one materialized table.
 *
 * CONTINUOUS (an incremental query, incremental-query.ts): the table's state
 * `ml_catalog.mt_<id>_state` holds, per source key, a digest of the model's inputs, a digest
 * of the whole source row and the model's outputs. A refresh
 *  1. compares the source with the state (on hosts with change capture, only the keys the
 *     triggers recorded): new rows and rows whose inputs changed are to be predicted, rows
 *     whose other columns changed only rewritten, rows gone deleted;
 *  2. runs ML_PREDICT over the rows to predict, outside any transaction, so that each
 *     answer of a remote model lands in the prediction cache as it comes (a refresh that
 *     dies here asks the provider again only for rows it had no answer for);
 *  3. in ONE transaction: writes the predictions into the state, deletes and rewrites the
 *     result rows of every changed key from the source joined with the state, consumes the
 *     change records it read and adds its figures to the catalog row.
 * A crash before 3 commits leaves table, state and change records as they were.
 *
 * FULL: the query runs whole into a temporary table, and one transaction replaces the
 * result's rows with it.
 */
import { randomUUID } from 'node:crypto';
import type { Host } from '../host.js';
import type { Identifier } from '../sql/ast.js';
import { parseScript } from '../sql/parser.js';
import { ModelSqlError } from '../errors.js';
import { outputColumnNames } from '../planner/output-columns.js';
import { incrementalShape, type IncrementalShape } from './incremental-query.js';
import { MaterializedStore, type MaterializedTable, type RefreshOutcome } from './materialized-store.js';
import type { QueryResult } from '../model-types.js';

/** The state table's column holding the digest of the model inputs a prediction was made from. */
export const INPUT_DIGEST = '__input_hash';
/** The state table's column holding the digest of the whole source row its result row was written from. */
export const ROW_DIGEST = '__row_hash';

/** What a refresh needs from the session. */
export interface RefreshContext {
  readonly host: Host;
  readonly store: MaterializedStore;
  /** Runs model SQL (ML_PREDICT inside) through the session. */
  readonly run: (sql: string) => Promise<QueryResult>;
  /** The version ML_PREDICT would use now for the model the definition names. */
  readonly modelVersion: (table: MaterializedTable) => Promise<number>;
  /** A session-private table name for `role`. */
  readonly tempName: (role: string) => string;
}

/** The names of a materialized table's private objects, quoted and qualified. */
export function privateNames(host: Host, id: number): { state: string; changes: string; prefix: string; stateKeyIndex: string } {
  const q = (name: string) => `ml_catalog.${host.dialect.quoteIdentifier(name)}`;
  return { state: q(`mt_${id}_state`), changes: q(`mt_${id}_changes`), prefix: `ml_catalog.mt_${id}`, stateKeyIndex: host.dialect.quoteIdentifier(`mt_${id}_state_key`) };
}

/** The definition's parsed CREATE statement and, for CONTINUOUS, its incremental shape. */
export function definitionShape(table: Pick<MaterializedTable, 'definition'>): IncrementalShape {
  const [statement] = parseScript(table.definition);
  if (statement?.kind !== 'create-materialized-table') throw new ModelSqlError('XX000', 'internal error: a materialized table definition is not a CREATE MATERIALIZED TABLE statement');
  const shape = incrementalShape(statement, table.definition);
  if (!('call' in shape)) throw new ModelSqlError('XX000', `internal error: a CONTINUOUS materialized table's query is not incremental: ${shape.reason}`);
  return shape;
}

/** Quoted, qualified source name. */
function sourceName(host: Host, table: MaterializedTable): string {
  return `${host.dialect.quoteIdentifier(table.source!.schema)}.${host.dialect.quoteIdentifier(table.source!.name)}`;
}

/** `a.k1 = b.k1 AND a.k2 = b.k2` */
function keyJoin(host: Host, keys: readonly string[], a: string, b: string): string {
  return keys.map((k) => `${a}.${host.dialect.quoteIdentifier(k)} = ${b}.${host.dialect.quoteIdentifier(k)}`).join(' AND ');
}

/**
 * The query of a CONTINUOUS table's rows whose source key is in `keysTable` (all rows when
 * undefined): the definition's query with its ML_PREDICT call replaced by the source joined
 * with the state (its outputs named as ML_PREDICT names them).
 */
export function stateQuery(host: Host, table: MaterializedTable, shape: IncrementalShape, outputs: readonly string[], keysTable: string | undefined): string {
  const d = host.dialect;
  const keys = table.sourceKey!;
  const filter = keysTable === undefined ? '' : ` WHERE EXISTS (SELECT 1 FROM ${d.quoteIdentifier(keysTable)} AS k WHERE ${keyJoin(host, keys, 'k', 's')})`;
  const relation = `(SELECT s.*, ${outputs.map((o) => `st.${d.quoteIdentifier(o)}`).join(', ')} FROM ${sourceName(host, table)} AS s JOIN ${privateNames(host, table.id).state} AS st ON ${keyJoin(host, keys, 's', 'st')}${filter})${shape.aliased ? '' : ' AS __modelsql_mt'}`;
  const text = table.definition;
  const q = shape.call.span;
  const query = parseScript(text)[0] as { asQuery: { span: { start: number; end: number } } };
  return text.slice(query.asQuery.span.start, q.start) + relation + text.slice(q.end, query.asQuery.span.end);
}

/** The OUTPUT column names of the call over the source (input names first: clashes get suffixes). */
export async function outputNames(host: Host, table: MaterializedTable, modelOutputs: readonly string[]): Promise<string[]> {
  const columns = await host.describe(`SELECT * FROM ${sourceName(host, table)}`);
  return outputColumnNames(columns.map((c) => c.name), modelOutputs);
}

/**
 * Refreshes a CONTINUOUS table. `everything` re-predicts every source row (a new model
 * version, a first refresh). Rows are predicted `chunkRows` at a time, one statement each
 * (a remote model's answers are stored in the prediction cache as each ends). The caller
 * holds the table's refresh lock.
 */
export async function refreshContinuous(ctx: RefreshContext, table: MaterializedTable, modelOutputs: readonly string[], everything: boolean, chunkRows = Infinity): Promise<RefreshOutcome> {
  const { host } = ctx;
  const d = host.dialect;
  const started = Date.now();
  const shape = definitionShape(table);
  const keys = table.sourceKey!;
  const names = privateNames(host, table.id);
  const version = await ctx.modelVersion(table);
  const full = everything || version !== table.modelVersion;
  const outputs = await outputNames(host, table, modelOutputs);
  const source = sourceName(host, table);
  const qk = keys.map((k) => d.quoteIdentifier(k));
  const capture = d.changeCapture;
  const temps: string[] = [];
  const temp = (role: string) => {
    const name = ctx.tempName(role);
    temps.push(name);
    return name;
  };
  try {
    // The change records this refresh consumes (a snapshot: later ones wait for the next refresh).
    let restrict = (_alias: string) => 'TRUE';
    let consumed: string | undefined;
    let oldest: number | undefined;
    if (capture) {
      consumed = temp('changes');
      await host.execute(`CREATE TEMP TABLE ${d.quoteIdentifier(consumed)} AS SELECT * FROM ${names.changes}`);
      await host.execute(`ANALYZE ${d.quoteIdentifier(consumed)}`);
      const r = await host.execute(`SELECT count(*), CAST(extract(epoch FROM min(changed_at)) AS DOUBLE PRECISION) * CAST(1000 AS DOUBLE PRECISION), count(*) FILTER (WHERE ${qk.map((k) => `${k} IS NULL`).join(' AND ')}) FROM ${d.quoteIdentifier(consumed)}`);
      const [count, min, truncated] = r.rows[0]!;
      if (Number(count) === 0 && !full) return { durationMs: Date.now() - started, rowsRefreshed: 0, rowsPredicted: 0, rowsDeleted: 0, providerRows: 0 };
      oldest = min === null ? undefined : Number(min);
      if (Number(truncated) === 0 && !full) restrict = (alias) => `EXISTS (SELECT 1 FROM ${d.quoteIdentifier(consumed!)} AS c WHERE ${keyJoin(host, keys, 'c', alias)})`;
    }
    // 1. What changed.
    const diff = temp('diff');
    const sourceColumns = (await host.describe(`SELECT * FROM ${source}`)).map((c) => c.name);
    const inputs = shape.binding.columns.map((id) => columnName(id, sourceColumns));
    const inputDigest = d.valuesDigest(inputs.map((c) => `s.${d.quoteIdentifier(c)}`));
    const rowDigest = d.rowDigest('s');
    const st = (c: string) => `st.${d.quoteIdentifier(c)}`;
    await host.execute(
      `CREATE TEMP TABLE ${d.quoteIdentifier(diff)} AS ` +
        `SELECT ${qk.map((k) => `s.${k}`).join(', ')}, ${rowDigest} AS __rh, CASE WHEN ${full ? 'TRUE' : `${st(INPUT_DIGEST)} IS NULL`} THEN ${full ? "'p'" : "'n'"} WHEN ${st(INPUT_DIGEST)} <> ${inputDigest} THEN 'p' ELSE 'r' END AS __op ` +
        `FROM ${source} AS s LEFT JOIN ${names.state} AS st ON ${keyJoin(host, keys, 's', 'st')} WHERE ${restrict('s')} AND (${full ? 'TRUE' : `${st(ROW_DIGEST)} IS NULL OR ${st(ROW_DIGEST)} <> ${rowDigest}`}) ` +
        `UNION ALL SELECT ${qk.map((k) => `st.${k}`).join(', ')}, NULL, 'd' FROM ${names.state} AS st WHERE ${restrict('st')} AND NOT EXISTS (SELECT 1 FROM ${source} AS s WHERE ${keyJoin(host, keys, 's', 'st')})`,
    );
    await host.execute(`ANALYZE ${d.quoteIdentifier(diff)}`);
    const counts = new Map((await host.execute(`SELECT __op, count(*) FROM ${d.quoteIdentifier(diff)} GROUP BY __op`)).rows.map((r) => [String(r[0]), Number(r[1])]));
    // n: new keys (no state, no result row yet); p: inputs changed; r: other columns changed; d: gone.
    const count = (op: string) => counts.get(op) ?? 0;
    const toPredict = count('n') + count('p');
    // 2. Predictions, outside any transaction (answers reach the prediction cache as they come).
    let predicted: string | undefined;
    let providerRows = 0;
    if (toPredict > 0) {
      predicted = temp('predicted');
      const numbered = temp('numbered');
      await host.execute(`CREATE TEMP TABLE ${d.quoteIdentifier(numbered)} AS SELECT ${qk.join(', ')}, row_number() OVER () AS __n FROM ${d.quoteIdentifier(diff)} WHERE __op IN ('n', 'p')`);
      await host.execute(`ANALYZE ${d.quoteIdentifier(numbered)}`);
      const carried = [...keys, ...inputs.filter((c) => !keys.includes(c))];
      const text = table.definition;
      const args = shape.call.args.map((a) => a.value).filter((v) => v.kind === 'model' || v.kind === 'descriptor' || v.kind === 'map');
      const callOutputs = outputColumnNames([...carried, '__modelsql_ih'], modelOutputs);
      const columns = `${[...keys, '__modelsql_ih'].map((c) => d.quoteIdentifier(c)).join(', ')}, ${callOutputs.map((c, i) => `${d.quoteIdentifier(c)} AS ${d.quoteIdentifier(outputs[i]!)}`).join(', ')}`;
      // Chunks of `chunkRows`: each its own statement, whose end stores its answers in the prediction cache.
      for (let from = 0; from < toPredict; from += chunkRows) {
        const input = `SELECT /* modelsql refresh ${randomUUID()} */ ${carried.map((c) => `s.${d.quoteIdentifier(c)}`).join(', ')}, ${inputDigest} AS __modelsql_ih FROM ${source} AS s JOIN ${d.quoteIdentifier(numbered)} AS n ON ${keyJoin(host, keys, 's', 'n')} WHERE n.__n > ${from}${Number.isFinite(chunkRows) ? ` AND n.__n <= ${from + chunkRows}` : ''}`;
        const call = `ML_PREDICT(TABLE (${input}), ${args.map((v) => text.slice(v.span.start, v.span.end)).join(', ')})`;
        await ctx.run(from === 0 ? `CREATE TEMP TABLE ${d.quoteIdentifier(predicted)} AS SELECT ${columns} FROM ${call}` : `INSERT INTO ${d.quoteIdentifier(predicted)} SELECT ${columns} FROM ${call}`);
        providerRows += await askedRows(host, input);
      }
      await host.execute(`ANALYZE ${d.quoteIdentifier(predicted)}`);
    }
    // 3. Apply, in one transaction.
    const rows = await host.transaction(async () => {
      const P = predicted === undefined ? undefined : d.quoteIdentifier(predicted);
      const D = d.quoteIdentifier(diff);
      // Keys new to the state have neither state nor result rows: only the others are deleted first.
      const exists = (ops: string, target: string) => `EXISTS (SELECT 1 FROM ${D} AS dd WHERE dd.__op IN (${ops}) AND ${keyJoin(host, keys, 'dd', target)})`;
      if (count('p') > 0 || (full && P)) await host.execute(`DELETE FROM ${names.state} WHERE ${exists("'p'", names.state)}`);
      if (P) {
        await host.execute(
          `INSERT INTO ${names.state} (${[...qk, INPUT_DIGEST, ROW_DIGEST, ...outputs.map((o) => d.quoteIdentifier(o))].join(', ')}) ` +
            `SELECT ${[...qk.map((k) => `p.${k}`), 'p.__modelsql_ih', 'dd.__rh', ...outputs.map((o) => `p.${d.quoteIdentifier(o)}`)].join(', ')} FROM ${P} AS p JOIN ${D} AS dd ON ${keyJoin(host, keys, 'p', 'dd')}`,
        );
      }
      if (count('d') > 0) await host.execute(`DELETE FROM ${names.state} WHERE ${exists("'d'", names.state)}`);
      if (count('r') > 0) await host.execute(`UPDATE ${names.state} SET ${ROW_DIGEST} = dd.__rh FROM ${D} AS dd WHERE dd.__op = 'r' AND ${keyJoin(host, keys, 'dd', names.state)}`);
      const result = resultName(host, table);
      if (count('p') + count('r') + count('d') > 0) await host.execute(`DELETE FROM ${result} WHERE ${exists("'p', 'r', 'd'", result)}`);
      await host.execute(`INSERT INTO ${result} SELECT * FROM (${stateQuery(host, table, shape, outputs, diff)}) AS q`);
      if (consumed) await host.execute(`DELETE FROM ${names.changes} WHERE seq IN (SELECT seq FROM ${d.quoteIdentifier(consumed)})`);
      const outcome: RefreshOutcome = {
        durationMs: Date.now() - started,
        ...(oldest !== undefined ? { lagMs: Math.max(0, Date.now() - oldest) } : {}),
        rowsRefreshed: [...counts.values()].reduce((a, b) => a + b, 0),
        rowsPredicted: toPredict,
        rowsDeleted: count('d'),
        providerRows,
        modelVersion: version,
      };
      await ctx.store.recordRefresh(table.id, outcome, new Date());
      return outcome;
    });
    return rows;
  } finally {
    for (const t of temps.reverse()) await host.dropTempTable(t).catch(() => undefined);
  }
}

/** Refreshes a FULL table: the query runs whole, and one transaction replaces the rows. */
export async function refreshFull(ctx: RefreshContext, table: MaterializedTable): Promise<RefreshOutcome> {
  const { host } = ctx;
  const started = Date.now();
  const staged = ctx.tempName('full');
  try {
    await ctx.run(`CREATE TEMP TABLE ${host.dialect.quoteIdentifier(staged)} AS ${table.query}`);
    return await host.transaction(async () => {
      const result = resultName(host, table);
      const before = Number((await host.execute(`SELECT count(*) FROM ${result}`)).rows[0]![0]);
      await host.execute(`DELETE FROM ${result}`);
      await host.execute(`INSERT INTO ${result} SELECT * FROM ${host.dialect.quoteIdentifier(staged)}`);
      const after = Number((await host.execute(`SELECT count(*) FROM ${result}`)).rows[0]![0]);
      const outcome: RefreshOutcome = { durationMs: Date.now() - started, rowsRefreshed: before + after, rowsPredicted: after, rowsDeleted: before, providerRows: 0 };
      await ctx.store.recordRefresh(table.id, outcome, new Date());
      return outcome;
    });
  } finally {
    await host.dropTempTable(staged).catch(() => undefined);
  }
}

/** The result table, quoted and qualified. */
export function resultName(host: Host, table: Pick<MaterializedTable, 'schema' | 'name'>): string {
  return `${host.dialect.quoteIdentifier(table.schema)}.${host.dialect.quoteIdentifier(table.name)}`;
}

/** A descriptor column's name as the source spells it (plain identifiers match case-insensitively). */
export function columnName(id: Identifier, columns: readonly string[]): string {
  const found = id.quoted ? columns.find((c) => c === id.value) : columns.find((c) => c.toLowerCase() === id.value.toLowerCase());
  if (found === undefined) throw new ModelSqlError('42703', `column "${id.value}" of the materialized table's DESCRIPTOR does not exist in its source`);
  return found;
}

/** Rows of the prediction run over `input` that were not answered from the prediction cache (the lineage log, prediction_runs). */
async function askedRows(host: Host, input: string): Promise<number> {
  const r = await host.execute('SELECT sum(row_count - coalesce(cache_hits, 0)) FROM ml_catalog.prediction_runs WHERE input_relation = $1', [input]);
  return Number(r.rows[0]?.[0] ?? 0);
}
