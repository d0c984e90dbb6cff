/**
 * Refreshing one materialized table.
 *
 * CONTINUOUS (an incremental query, incremental-query.ts): the table's state
 * `ml_catalog.mt_<id>_state` holds, per source key, a digest of the model's inputs (the
 * host's `inputHash` where the inputs' types allow it, else `valuesDigest`), without change
 * capture a digest of the whole source row, and the model's outputs. A refresh
 *  1. compares the source with the state (on hosts with change capture, only the keys the
 *     triggers recorded, each rewritten): new rows and rows whose inputs changed are to be
 *     predicted, rows whose other columns changed only rewritten, rows gone deleted; the
 *     comparison keeps the changed rows' values;
 *  2. runs ML_PREDICT over those values (carrying only the key, the model's inputs and the
 *     source columns the definition reads around its call); a remote model's outside any
 *     transaction, so that each answer lands in the prediction cache as it comes (a refresh
 *     that dies here asks the provider again only for rows it had no answer for);
 *  3. in ONE transaction: deletes the state and result rows of changed keys that have them,
 *     writes the state and the result rows of predicted keys from the predictions and the
 *     other changed keys' result rows from the source joined with the state, consumes the
 *     change records it read and adds its figures to the catalog row.
 * A local model's refresh is one transaction from 1 to 3, which takes its change records
 * as their distinct keys in one statement. A crash before 3 commits leaves table, state and
 * change records as they were.
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
/** A refresh's own columns next to a changed row's values: its input digest, row digest, what to do, and its number. */
const IH = '__modelsql_ih';
const RH = '__modelsql_rh';
const OP = '__modelsql_op';
const N = '__modelsql_n';
/** Change records past which a refresh gathers statistics on them before joining (the planner then hashes rather than probes). */
const ANALYZE_ROWS = 5000;

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
function sourceName(host: Host, table: Pick<MaterializedTable, 'source'>): string {
  return `${host.dialect.quoteIdentifier(table.source!.schema)}.${host.dialect.quoteIdentifier(table.source!.name)}`;
}

/** `a.k1 = b.k1 AND a.k2 = b.k2` */
function keyJoin(host: Host, keys: readonly string[], a: string, b: string): string {
  return keys.map((k) => `${a}.${host.dialect.quoteIdentifier(k)} = ${b}.${host.dialect.quoteIdentifier(k)}`).join(' AND ');
}

/**
 * The query of a CONTINUOUS table's rows whose source key is in the relation `keys` (all
 * rows when undefined): the definition's query with its ML_PREDICT call replaced by the
 * source joined with the state (its outputs named as ML_PREDICT names them).
 */
export function stateQuery(host: Host, table: MaterializedTable, shape: IncrementalShape, outputs: readonly string[], keys: string | undefined): string {
  const d = host.dialect;
  const key = table.sourceKey!;
  const filter = keys === undefined ? '' : ` WHERE EXISTS (SELECT 1 FROM ${keys} AS k WHERE ${keyJoin(host, key, 'k', 's')})`;
  return definitionOver(table, shape, `(SELECT s.*, ${outputs.map((o) => `st.${d.quoteIdentifier(o)}`).join(', ')} FROM ${sourceName(host, table)} AS s JOIN ${privateNames(host, table.id).state} AS st ON ${keyJoin(host, key, 's', 'st')}${filter})`);
}

/**
 * The query of a new table's result rows before it has a state: the definition's query
 * over the source with every output NULL of its host type (`outputs`: names as ML_PREDICT
 * names them). Run with `LIMIT 0` it gives the result table's columns.
 */
export function emptyResultQuery(host: Host, table: Pick<MaterializedTable, 'definition' | 'source'>, shape: IncrementalShape, outputs: readonly { readonly name: string; readonly type: string }[]): string {
  const d = host.dialect;
  return definitionOver(table, shape, `(SELECT s.*, ${outputs.map((o) => `CAST(NULL AS ${o.type}) AS ${d.quoteIdentifier(o.name)}`).join(', ')} FROM ${sourceName(host, table)} AS s)`);
}

/** The definition's query with its ML_PREDICT call replaced by `relation` (the source's columns, then the outputs as ML_PREDICT names them). */
function definitionOver(table: Pick<MaterializedTable, 'definition'>, shape: IncrementalShape, relation: string): string {
  const text = table.definition;
  const q = shape.call.span;
  const query = parseScript(text)[0] as { asQuery: { span: { start: number; end: number } } };
  return text.slice(query.asQuery.span.start, q.start) + relation + (shape.aliased ? '' : ' AS __modelsql_mt') + text.slice(q.end, query.asQuery.span.end);
}

/** The OUTPUT column names of the call over the source (input names first: clashes get suffixes). */
export async function outputNames(host: Host, table: Pick<MaterializedTable, 'source'>, modelOutputs: readonly string[]): Promise<string[]> {
  const columns = await host.describe(`SELECT * FROM ${sourceName(host, table)}`);
  return outputColumnNames(columns.map((c) => c.name), modelOutputs);
}

/**
 * Refreshes a CONTINUOUS table. `everything` re-predicts every source row (a new model
 * version, a first refresh). A remote model's rows (`chunkRows` finite) are predicted
 * `chunkRows` at a time, one statement each, outside any transaction (its answers are
 * stored in the prediction cache as each ends), and applied in one transaction after; a
 * local model's whole refresh, from its first read to its last write and the drop of its
 * temporary tables, is one transaction (one commit). The caller holds the table's refresh
 * lock.
 */
export async function refreshContinuous(ctx: RefreshContext, table: MaterializedTable, modelOutputs: readonly string[], everything: boolean, chunkRows = Infinity): Promise<RefreshOutcome> {
  const temps: string[] = [];
  const temp = (role: string) => {
    const name = ctx.tempName(role);
    temps.push(name);
    return name;
  };
  const dropTemps = async () => {
    for (const t of temps.splice(0).reverse()) await ctx.host.dropTempTable(t);
  };
  const steps = () => refreshSteps(ctx, table, modelOutputs, everything, chunkRows, temp);
  try {
    if (Number.isFinite(chunkRows)) return await steps();
    return await ctx.host.transaction(async () => {
      const outcome = await steps();
      await dropTemps();
      return outcome;
    });
  } finally {
    await dropTemps().catch(() => undefined);
  }
}

/** The steps of {@link refreshContinuous}; `temp(role)` names a temporary table its caller drops. */
async function refreshSteps(ctx: RefreshContext, table: MaterializedTable, modelOutputs: readonly string[], everything: boolean, chunkRows: number, temp: (role: string) => string): Promise<RefreshOutcome> {
  const { host } = ctx;
  const d = host.dialect;
  const q = (name: string) => d.quoteIdentifier(name);
  const started = Date.now();
  const shape = definitionShape(table);
  const keys = table.sourceKey!;
  const names = privateNames(host, table.id);
  const version = await ctx.modelVersion(table);
  const full = everything || version !== table.modelVersion;
  const source = sourceName(host, table);
  const qk = keys.map(q);
  const capture = d.changeCapture;
  const local = !Number.isFinite(chunkRows);
  // The change records this refresh consumes (later ones wait for the next refresh), and
  // the keys they name; without change capture (or after a TRUNCATE) every row is compared.
  let changedKeys: string | undefined;
  let consumed: string | undefined;
  let oldest: number | undefined;
  if (capture) {
    consumed = temp('changes');
    // A local model's refresh is one transaction: it takes the records at once, as their
    // distinct keys; a remote one's copies them, and deletes them when it applies.
    if (local) await host.execute(capture.take(names.changes, q(consumed), qk));
    else await host.execute(`CREATE TEMP TABLE ${q(consumed)} AS SELECT * FROM ${names.changes}`);
    const r = await host.execute(`SELECT count(*) AS changes, CAST(extract(epoch FROM min(changed_at)) AS DOUBLE PRECISION) * CAST(1000 AS DOUBLE PRECISION) AS oldest, count(*) FILTER (WHERE ${qk.map((k) => `${k} IS NULL`).join(' AND ')}) AS truncated FROM ${q(consumed)}`);
    const [count, min, truncated] = r.rows[0]!;
    if (Number(count) === 0 && !full) return { durationMs: Date.now() - started, rowsRefreshed: 0, rowsPredicted: 0, rowsDeleted: 0, providerRows: 0 };
    oldest = min === null ? undefined : Number(min);
    if (Number(truncated) === 0 && !full) {
      // Taken keys are distinct already, and the planner sizes a temporary table without
      // statistics by its pages; copied records need their distinct keys, and statistics
      // past a few thousand (so that joins hash rather than probe).
      if (local) changedKeys = q(consumed);
      else {
        if (Number(count) > ANALYZE_ROWS) await host.execute(`ANALYZE ${q(consumed)}`);
        changedKeys = `(SELECT DISTINCT ${qk.join(', ')} FROM ${q(consumed)})`;
      }
    }
  }
  // 1. What changed, with the changed rows' values and the digest of their inputs. With
  // change capture every recorded key is rewritten; without, rows are compared with the
  // state by a digest of the whole row.
  const diff = temp('diff');
  const D = q(diff);
  const columns = await host.describe(`SELECT * FROM ${source}`);
  const sourceColumns = columns.map((c) => c.name);
  const outputs = outputColumnNames(sourceColumns, modelOutputs);
  const inputs = shape.binding.columns.map((id) => columnName(id, sourceColumns));
  // The columns the definition reads around its call (with the keys: the result rows of predicted keys are written from them) and, for the model, its inputs.
  const reads = shape.reads;
  const stored = sourceColumns.filter((c) => keys.includes(c) || reads === 'all' || reads.has(c.toLowerCase()));
  const kept = sourceColumns.filter((c) => stored.includes(c) || inputs.includes(c));
  const inputDigest = inputDigestOf(host, inputs.map((c) => ({ expression: `s.${q(c)}`, type: columns.find((s) => s.name === c)!.type })), await host.serverVersion?.());
  const rowDigest = capture ? undefined : d.rowDigest('s');
  const st = (c: string) => `st.${q(c)}`;
  const present = `s.${qk[0]} IS NOT NULL`;
  const changed = full || rowDigest === undefined ? 'TRUE' : `${st(ROW_DIGEST)} IS NULL OR ${st(ROW_DIGEST)} <> ${rowDigest}`;
  const op = `CASE WHEN NOT (${present}) THEN 'd' WHEN ${full ? 'TRUE' : `${st(INPUT_DIGEST)} IS NULL`} THEN ${full ? "'p'" : "'n'"} WHEN ${st(INPUT_DIGEST)} <> ${inputDigest} THEN 'p' ELSE 'r' END`;
  // Driven by the changed keys when there are some (each looks up its source row and state
  // row), else every key of the source or of the state. A key column is never NULL in either.
  const [from, key] = changedKeys
    ? [`${changedKeys} AS k LEFT JOIN ${source} AS s ON ${keyJoin(host, keys, 'k', 's')} LEFT JOIN ${names.state} AS st ON ${keyJoin(host, keys, 'k', 'st')}`, (c: string) => `k.${q(c)}`]
    : [`${source} AS s FULL JOIN ${names.state} AS st ON ${keyJoin(host, keys, 's', 'st')}`, (c: string) => `coalesce(s.${q(c)}, ${st(c)})`];
  await host.execute(
    `CREATE TEMP TABLE ${D} AS SELECT ${kept.map((c) => (keys.includes(c) ? `${key(c)} AS ${q(c)}` : `s.${q(c)}`)).join(', ')}, ` +
      `${inputDigest} AS ${IH}${rowDigest ? `, ${rowDigest} AS ${RH}` : ''}, ${op} AS ${OP} ` +
      `FROM ${from} WHERE (${present} AND (${changed})) OR (NOT (${present}) AND st.${qk[0]} IS NOT NULL)`,
  );
  const counts = new Map((await host.execute(`SELECT ${OP}, count(*) FROM ${D} GROUP BY ${OP}`)).rows.map((r) => [String(r[0]), Number(r[1])]));
  // n: new keys (no state, no result row yet); p: inputs changed; r: other columns changed; d: gone.
  const count = (op: string) => counts.get(op) ?? 0;
  const toPredict = count('n') + count('p');
  // 2. Predictions of the changed rows as the diff holds them (a remote model's outside any transaction).
  const digests = [IH, ...(rowDigest ? [RH] : [])];
  const carried = [...kept, ...digests];
  const callOutputs = outputColumnNames(carried, modelOutputs);
  // The predictions' table: the stored columns, the digests and the outputs.
  const predictedColumns = [...stored, ...digests, ...callOutputs].map(q).join(', ');
  const text = table.definition;
  const args = shape.call.args.map((a) => a.value).filter((v) => v.kind === 'model' || v.kind === 'descriptor' || v.kind === 'map');
  const call = (input: string) => `ML_PREDICT(TABLE (${input}), ${args.map((v) => text.slice(v.span.start, v.span.end)).join(', ')})`;
  let predicted: string | undefined;
  let providerRows = 0;
  if (toPredict > 0) {
    predicted = temp('predicted');
    let rows = D;
    let where = (_from: number) => `${OP} IN ('n', 'p')`;
    if (Number.isFinite(chunkRows)) {
      // Chunks of `chunkRows`: each its own statement, whose end stores its answers in the prediction cache.
      rows = q(temp('numbered'));
      await host.execute(`CREATE TEMP TABLE ${rows} AS SELECT *, row_number() OVER () AS ${N} FROM ${D} WHERE ${OP} IN ('n', 'p')`);
      where = (from) => `${N} > ${from} AND ${N} <= ${from + chunkRows}`;
    }
    for (let from = 0; from < toPredict; from += chunkRows) {
      const input = `SELECT /* modelsql refresh ${randomUUID()} */ ${carried.map(q).join(', ')} FROM ${rows} WHERE ${where(from)}`;
      const select = `SELECT ${predictedColumns} FROM ${call(input)}`;
      await ctx.run(from === 0 ? `CREATE TEMP TABLE ${q(predicted)} AS ${select}` : `INSERT INTO ${q(predicted)} ${select}`);
      providerRows += await askedRows(host, input);
    }
  }
  // 3. Apply, in one transaction: the state and the result rows of predicted keys from the
  // predictions, the result rows of other changed keys from the source joined with the state.
  return await host.transaction(async () => {
    const exists = (ops: string, target: string) => `EXISTS (SELECT 1 FROM ${D} AS dd WHERE dd.${OP} IN (${ops}) AND ${keyJoin(host, keys, 'dd', target)})`;
    // Keys new to the state have neither state nor result rows: only the others are deleted.
    if (count('p') + count('d') > 0) await host.execute(`DELETE FROM ${names.state} WHERE ${exists("'p', 'd'", names.state)}`);
    const result = resultName(host, table);
    if (count('p') + count('r') + count('d') > 0) await host.execute(`DELETE FROM ${result} WHERE ${exists("'p', 'r', 'd'", result)}`);
    if (predicted) {
      const P = q(predicted);
      await host.execute(
        `INSERT INTO ${names.state} (${[...qk, INPUT_DIGEST, ...(rowDigest ? [ROW_DIGEST] : []), ...outputs.map(q)].join(', ')}) ` +
          `SELECT ${[...qk, IH, ...(rowDigest ? [RH] : []), ...callOutputs.map(q)].join(', ')} FROM ${P}`,
      );
      const relation = `(SELECT ${stored.map(q).join(', ')}, ${callOutputs.map((c, i) => `${q(c)} AS ${q(outputs[i]!)}`).join(', ')} FROM ${P})`;
      await host.execute(await insertByName(host, result, definitionOver(table, shape, relation)));
    }
    if (count('r') > 0) {
      if (rowDigest) await host.execute(`UPDATE ${names.state} SET ${ROW_DIGEST} = dd.${RH} FROM ${D} AS dd WHERE dd.${OP} = 'r' AND ${keyJoin(host, keys, 'dd', names.state)}`);
      await host.execute(await insertByName(host, result, stateQuery(host, table, shape, outputs, `(SELECT * FROM ${D} WHERE ${OP} = 'r')`)));
    }
    if (consumed && !local) await host.execute(`DELETE FROM ${names.changes} WHERE seq IN (SELECT seq FROM ${q(consumed)})`);
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
}

/**
 * The digest of the inputs `columns` (expressions over alias `s`, with their host types),
 * as the state's text column keeps it: the host's cheaper `inputHash` as text when it takes
 * these types (on this server version), else `valuesDigest`. The choice follows the columns'
 * types and the server's version; should they change (ALTER TABLE, an upgrade from Postgres
 * 13), every digest differs once and the rows are predicted again.
 */
function inputDigestOf(host: Host, columns: readonly { expression: string; type: string }[], serverVersion: number | undefined): string {
  const d = host.dialect;
  const hash = d.inputHash?.(columns, serverVersion);
  return hash === undefined ? d.valuesDigest(columns.map((c) => c.expression)) : `CAST(${hash} AS ${d.catalogTypes.text})`;
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
      await host.execute(await insertByName(host, result, `SELECT * FROM ${host.dialect.quoteIdentifier(staged)}`));
      const after = Number((await host.execute(`SELECT count(*) FROM ${result}`)).rows[0]![0]);
      const outcome: RefreshOutcome = { durationMs: Date.now() - started, rowsRefreshed: before + after, rowsPredicted: after, rowsDeleted: before, providerRows: 0 };
      await ctx.store.recordRefresh(table.id, outcome, new Date());
      return outcome;
    });
  } finally {
    await host.dropTempTable(staged).catch(() => undefined);
  }
}

/**
 * `INSERT INTO result (its columns) SELECT those columns FROM (query)`: the rows of `query`
 * go to the result table's columns by name, not by position, so that a query reading the
 * whole source row (`*`) keeps the columns it had at CREATE (as a view's `*` does) when
 * columns are added to the source, and a column it no longer gives (dropped or renamed in
 * the source) fails the refresh (42703) instead of filling another column.
 */
async function insertByName(host: Host, result: string, query: string): Promise<string> {
  const columns = (await host.describe(`SELECT * FROM ${result}`)).map((c) => host.dialect.quoteIdentifier(c.name));
  return `INSERT INTO ${result} (${columns.join(', ')}) SELECT ${columns.map((c) => `q.${c}`).join(', ')} FROM (${query}) AS q`;
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
