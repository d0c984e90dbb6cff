/**
 * The training set as the host sees it: the query of `CREATE MODEL ... AS`, its columns,
 * the deterministic train/test split, and the preprocessing statistics, all computed by
 * SQL aggregates in the host. The Node process only ever holds aggregates.
 */
import { ModelSqlError, QueryCanceledError, type SourcePosition } from '../errors.js';
import type { Host, HostColumn, SqlDialect } from '../host.js';
import { formatType, parseDataType, typeCategory } from '../sql/types.js';
import { expressionBuilder } from '../sql/expression-builder.js';
import { encodeFeatures, rawNumeric } from './compile-sql.js';
import type { ClassValue, FeatureEncoding } from './trained-model.js';
import type { TrainingOptions } from './training-options.js';

/** What training asks of its host: queries, descriptions and session-private tables. */
export type TrainingHost = Pick<Host, 'name' | 'dialect' | 'execute' | 'describe' | 'materialize' | 'dropTempTable'>;

/**
 * `host` for one training run, which sends many statements: once `signal` is aborted (a
 * cancel, a statement timeout), the next statement is not sent but fails with 57014. (The
 * host interrupts a statement in flight; a cancel arriving between two of them would
 * otherwise be lost.) Dropping a working table still runs.
 *
 * @example
 * const data = await prepareTrainingData(cancellableHost(host, signal), query, columns, options, positions);
 */
export function cancellableHost(host: Host, signal: AbortSignal): TrainingHost {
  const checked = <T>(work: () => Promise<T>): Promise<T> => (signal.aborted ? Promise.reject(new QueryCanceledError()) : work());
  return {
    name: host.name,
    dialect: host.dialect,
    execute: (sql, params, options) => checked(() => host.execute(sql, params, options)),
    describe: (sql) => checked(() => host.describe(sql)),
    materialize: (table, query) => checked(() => host.materialize(table, query)),
    dropTempTable: (table) => host.dropTempTable(table),
  };
}

/** 22000 data_exception: the training data cannot train this model. */
export class TrainingDataError extends ModelSqlError {
  constructor(message: string, position?: SourcePosition) {
    super('22000', message, { position });
  }
}

/** The label column. */
export interface LabelColumn {
  readonly name: string;
  /** Flink spelling of its type. */
  readonly type: string;
  /** Quoted reference in the source relation. */
  readonly ref: string;
  readonly numeric: boolean;
  readonly boolean: boolean;
}

/** Everything the fitters need to know about the data. */
export interface TrainingData {
  readonly host: TrainingHost;
  readonly dialect: SqlDialect;
  /** `(query) AS __modelsql_src`. */
  readonly source: string;
  readonly features: readonly FeatureEncoding[];
  /** Quoted references to the feature columns in `source`, in feature order. */
  readonly featureRefs: readonly string[];
  /** Encoded feature expressions over `source`. */
  readonly encoded: readonly string[];
  readonly label?: LabelColumn;
  /** Condition selecting training rows (label not NULL, not held out). */
  readonly trainWhere: string;
  /** Condition selecting held-out rows, when there are any. */
  readonly testWhere?: string;
  readonly trainRows: number;
  readonly testRows: number;
  /** Classes of a classification label, ascending. */
  readonly classes?: readonly ClassValue[];
  /**
   * When there are STRING features and each has fewer distinct training values than
   * `max-categories` (so every value is one of its categories): the product of their
   * category counts, the most combinations of their values the training rows can hold.
   */
  readonly valueCombinations?: number;
  /** Where the training query starts in the statement, for errors about the data. */
  readonly queryPosition?: SourcePosition;
}

/** Where to point errors. */
export interface TrainingPositions {
  readonly query?: SourcePosition;
  readonly option: (key: string) => SourcePosition | undefined;
}

/** Most classes a classifier may have. */
const MAX_CLASSES = 1000;

function isNumericCategory(type: string): boolean {
  const c = typeCategory(parseDataType(type));
  return c === 'integer' || c === 'float' || c === 'decimal';
}

/** Runs one query and returns its single row. */
export async function oneRow(host: TrainingHost, sql: string): Promise<readonly unknown[]> {
  return (await host.execute(sql)).rows[0] ?? [];
}

/** A JS number from a host value (bigint, decimal text, number). */
export function toNumber(value: unknown): number {
  if (value === null || value === undefined) return Number.NaN;
  return typeof value === 'number' ? value : Number(value);
}

/** The columns of the training query (host errors point at the query). */
export async function describeTrainingQuery(host: TrainingHost, query: string, positions: TrainingPositions): Promise<readonly HostColumn[]> {
  let columns: readonly HostColumn[];
  let written: readonly string[];
  try {
    columns = await host.describe(`SELECT * FROM (${query}) AS __modelsql_src`);
    // DuckDB renames a repeated name (any case) in a subquery (`y`, `y_1`): the names as the query writes them tell.
    written = (await host.describe(query)).map((c) => c.name);
  } catch (error) {
    if (error instanceof ModelSqlError) {
      throw new ModelSqlError(error.sqlstate, `${error.message.split(/\n\s*\n/)[0]!.trim()} (in the training query)`, { position: positions.query, cause: error });
    }
    throw error;
  }
  if (new Set(written).size !== written.length || written.some((name, i) => name !== columns[i]?.name)) {
    throw new TrainingDataError(`the training query has two columns of the same name; columns: ${written.join(', ')}`, positions.query);
  }
  return columns;
}

/** Finds the label column: by exact name, else by a unique case-insensitive match. */
export function findLabel(columns: readonly HostColumn[], label: string): HostColumn | undefined {
  return columns.find((c) => c.name === label) ?? unique(columns.filter((c) => c.name.toLowerCase() === label.toLowerCase()));
}

/** Whether a host column type is a number. */
export function isNumericType(type: string): boolean {
  return isNumericCategory(type);
}

/**
 * Preprocessing, computed over the training rows:
 * means and population standard deviations of numeric features, categories (most
 * frequent first, at most `max-categories`) and modes of STRING features, and the
 * classes of a classification label, all over the training rows.
 */
export async function prepareTrainingData(host: TrainingHost, query: string, columns: readonly HostColumn[], options: TrainingOptions, positions: TrainingPositions): Promise<TrainingData> {
  const d = host.dialect;
  const q = (n: string) => d.quoteIdentifier(n);
  const source = `(${query}) AS __modelsql_src`;
  const names = columns.map((c) => c.name);
  if (new Set(names).size !== names.length) throw new TrainingDataError(`the training query has two columns of the same name; columns: ${names.join(', ')}`, positions.query);

  let label: LabelColumn | undefined;
  let labelColumn: HostColumn | undefined;
  if (options.label !== undefined) {
    labelColumn = findLabel(columns, options.label);
    if (!labelColumn) {
      throw new ModelSqlError('42703', `label column "${options.label}" is not a column of the training query; columns: ${names.join(', ')}`, { position: positions.option('label') });
    }
    const type = formatType(parseDataType(labelColumn.type));
    const category = typeCategory(parseDataType(labelColumn.type));
    label = { name: labelColumn.name, type, ref: q(labelColumn.name), numeric: isNumericCategory(labelColumn.type), boolean: category === 'boolean' };
    if (options.task === 'regression' && !label.numeric) {
      throw new ModelSqlError('42804', `a regression label must be numeric; "${label.name}" is ${type}`, { position: positions.option('label') });
    }
    if (options.task === 'classification' && !label.numeric && !label.boolean && category !== 'string') {
      throw new ModelSqlError('42804', `a classification label must be a number, a string or a boolean; "${label.name}" is ${type}`, { position: positions.option('label') });
    }
  }
  const featureColumns = columns.filter((c) => c !== labelColumn);
  if (featureColumns.length === 0) throw new TrainingDataError('the training query has no feature columns (every column but the label is a feature)', positions.query);
  for (const c of featureColumns) {
    const category = typeCategory(parseDataType(c.type));
    if (!['integer', 'float', 'decimal', 'boolean', 'string'].includes(category)) {
      throw new ModelSqlError('42804', `feature column "${c.name}" has type ${formatType(parseDataType(c.type))}; features must be numbers, booleans or strings`, { position: positions.query });
    }
  }

  // The split: a hash of the whole row and the seed, so it does not depend on row order.
  let testCondition: string | undefined;
  if (options.testSplit > 0) {
    if (!d.hashFraction) throw new ModelSqlError('0A000', `'test-split' needs a host that can hash rows; ${host.name} cannot`, { position: positions.option('test-split') });
    testCondition = d.operator(d.hashFraction(columns.map((c) => q(c.name)), options.seed), '<', d.double(options.testSplit));
  }
  const labelPresent = label ? `${label.ref} IS NOT NULL` : 'TRUE';
  const trainWhere = testCondition ? `${labelPresent} AND NOT (${testCondition})` : labelPresent;
  const testWhere = testCondition ? `${labelPresent} AND ${testCondition}` : undefined;

  // One scan for the numeric statistics and the row counts.
  const numeric = featureColumns.filter((c) => typeCategory(parseDataType(c.type)) !== 'string');
  const { fn } = expressionBuilder(d);
  const raw = (c: HostColumn) => rawNumeric(d, { boolean: typeCategory(parseDataType(c.type)) === 'boolean' }, q(c.name));
  // NaN and ±Infinity (DOUBLE values; Postgres numeric too) are refused: both hosts sort NaN
  // above every number, so only finite values lie between ∓DOUBLE's largest value.
  const finite = (e: string) => `${d.operator(e, '>=', d.double(-Number.MAX_VALUE))} AND ${d.operator(e, '<=', d.double(Number.MAX_VALUE))}`;
  const inTrain = (e: string) => `CASE WHEN ${trainWhere} AND ${finite(e)} THEN ${e} END`;
  const present = (c: HostColumn) => `CASE WHEN ${trainWhere} THEN ${q(c.name)} END`;
  const countWhere = (where: string) => fn('sum', `CASE WHEN ${where} THEN 1 ELSE 0 END`);
  const nonFinite = (e: string) => countWhere(`${labelPresent} AND ${e} IS NOT NULL AND NOT (${finite(e)})`);
  const stats = numeric.flatMap((c) => [fn('avg', inTrain(raw(c))), fn('stddev_pop', inTrain(raw(c))), fn('count', present(c)), nonFinite(raw(c))]);
  if (label?.numeric) stats.push(nonFinite(labelValue(d, label)));
  const counts = await oneRow(host, `SELECT ${countWhere(trainWhere)}, ${testWhere ? countWhere(testWhere) : '0'}${stats.map((s) => `, ${s}`).join('')} FROM ${source}`);
  const trainRows = toNumber(counts[0] ?? 0) || 0;
  const testRows = toNumber(counts[1] ?? 0) || 0;
  const refuseNonFinite = (what: string, at: number) => {
    const n = toNumber(counts[at]);
    if (n > 0) throw new TrainingDataError(`${what} is NaN or infinite in ${n} row${n === 1 ? '' : 's'} of the training query; filter them out or make them NULL`, positions.query);
  };
  if (label?.numeric) refuseNonFinite(`the label "${label.name}"`, 2 + numeric.length * 4);
  numeric.forEach((c, i) => refuseNonFinite(`feature column "${c.name}"`, 2 + i * 4 + 3));
  if (trainRows === 0) {
    throw new TrainingDataError(
      options.label !== undefined ? `the training query has no rows with a non-NULL label "${label!.name}" to train on` : 'the training query has no rows to train on',
      positions.query,
    );
  }

  const features: FeatureEncoding[] = [];
  let valueCombinations: number | undefined = 1;
  for (const c of featureColumns) {
    const type = formatType(parseDataType(c.type));
    const category = typeCategory(parseDataType(c.type));
    if (category !== 'string') {
      const i = numeric.indexOf(c) * 4 + 2;
      const mean = toNumber(counts[i]);
      const std = toNumber(counts[i + 1]);
      const present = toNumber(counts[i + 2]);
      if (!(present > 0)) throw new TrainingDataError(`feature column "${c.name}" is NULL in every training row`, positions.query);
      if (!(std > 1e-12 * Math.max(1, Math.abs(mean)))) throw new TrainingDataError(`feature column "${c.name}" is constant in the training rows (every value is ${mean}); leave it out of the query`, positions.query);
      features.push({ kind: 'numeric', name: c.name, type, boolean: category === 'boolean', mean, std });
    } else {
      const r = await host.execute(
        `SELECT ${q(c.name)}, ${fn('count', '*')} AS n FROM ${source} WHERE ${trainWhere} AND ${q(c.name)} IS NOT NULL GROUP BY ${q(c.name)} ORDER BY n DESC, ${q(c.name)} LIMIT ${options.maxCategories}`,
      );
      if (r.rows.length === 0) throw new TrainingDataError(`feature column "${c.name}" is NULL in every training row`, positions.query);
      if (r.rows.length === 1) throw new TrainingDataError(`feature column "${c.name}" is constant in the training rows (every value is '${String(r.rows[0]![0])}'); leave it out of the query`, positions.query);
      const mode = String(r.rows[0]![0]);
      const categories = r.rows.map((row) => String(row[0])).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      valueCombinations = r.rows.length < options.maxCategories && valueCombinations !== undefined ? valueCombinations * r.rows.length : undefined;
      features.push({ kind: 'categorical', name: c.name, type, categories, mode });
    }
  }

  let classes: ClassValue[] | undefined;
  if (options.task === 'classification') {
    const value = label!.numeric ? `CAST(${label!.ref} AS DOUBLE PRECISION)` : label!.ref;
    const r = await host.execute(`SELECT DISTINCT ${value} AS c FROM ${source} WHERE ${trainWhere} ORDER BY c LIMIT ${MAX_CLASSES + 1}`);
    classes = r.rows.map((row) => (label!.numeric ? toNumber(row[0]) : label!.boolean ? Boolean(row[0]) : String(row[0])));
    if (classes.length < 2) throw new TrainingDataError(`the label "${label!.name}" has one class (${String(classes[0])}) in the training rows; a classifier needs at least two`, positions.option('label'));
    if (classes.length > MAX_CLASSES) throw new TrainingDataError(`the label "${label!.name}" has more than ${MAX_CLASSES} classes`, positions.option('label'));
  }

  const featureRefs = features.map((f) => q(f.name));
  return {
    host,
    dialect: d,
    source,
    features,
    featureRefs,
    encoded: encodeFeatures(d, features, featureRefs),
    label,
    trainWhere,
    testWhere,
    trainRows,
    testRows,
    classes,
    queryPosition: positions.query,
    ...(valueCombinations !== undefined && features.some((f) => f.kind === 'categorical') ? { valueCombinations } : {}),
  };
}

function unique<T>(items: readonly T[]): T | undefined {
  return items.length === 1 ? items[0] : undefined;
}

/**
 * Sums of products in one aggregate query: `SELECT sum(e1), sum(e2), ... FROM (SELECT
 * <columns> FROM source WHERE where) AS s`, where each `sums` entry is an expression over
 * the named `columns`. `layers` add SELECT levels over the columns (each may use the ones
 * below).
 */
export async function aggregate(
  data: TrainingData,
  where: string,
  layers: readonly (readonly (readonly [string, string])[])[],
  sums: readonly string[],
): Promise<number[]> {
  checkWidth(data, layers, sums.length);
  const row = await oneRow(data.host, `SELECT ${sums.join(', ')} FROM ${layered(data, where, layers)}`);
  return row.map(toNumber);
}

/**
 * {@link aggregate} per group of the named `keys` (columns of the layers): one entry per
 * group, its key values and its sums.
 */
export async function aggregateGroups(
  data: TrainingData,
  where: string,
  layers: readonly (readonly (readonly [string, string])[])[],
  keys: readonly string[],
  sums: readonly string[],
): Promise<{ readonly keys: readonly unknown[]; readonly sums: number[] }[]> {
  checkWidth(data, layers, keys.length + sums.length);
  const k = keys.map((name) => data.dialect.quoteIdentifier(name));
  const r = await data.host.execute(`SELECT ${[...k, ...sums].join(', ')} FROM ${layered(data, where, layers)} GROUP BY ${k.join(', ')}`);
  return r.rows.map((row) => ({ keys: row.slice(0, k.length), sums: row.slice(k.length).map(toNumber) }));
}

/**
 * Most columns of one SELECT list: Postgres's limit of columns in a result set
 * (https://www.postgresql.org/docs/current/limits.html), held on every host so that the same
 * models train on both. It bounds the sums of one aggregate query (XᵀX, a Hessian), which
 * grow with the square of the encoded features (and of the classes, for logistic regression).
 */
export const MAX_SELECT_COLUMNS = 1664;

/** 54011 program_limit_exceeded unless every SELECT list of {@link aggregate}'s query over `layers` with `results` columns fits. */
function checkWidth(data: TrainingData, layers: readonly (readonly unknown[])[], results: number): void {
  let columns = 0;
  requireColumns(data, Math.max(results, ...layers.map((layer) => (columns += layer.length + 1)))); // each level keeps the ones below, and its fence
}

/**
 * Most parameters one linear or logistic model solves for: the fitters hold their normal
 * equations or Hessian as a dense matrix in Node and factor it there (Cholesky, n³/3
 * operations), whatever the SQL that gathered its sums. 1,664² doubles are 22 MB.
 */
export const MAX_PARAMETERS = 1664;

/**
 * 54011 program_limit_exceeded when a model has more than {@link MAX_PARAMETERS} parameters
 * (an intercept and a weight per encoded feature, per logit): called before any sum is
 * planned, on every path (grouped sums are few columns wide, their matrix is not).
 */
export function requireParameters(data: TrainingData, parameters: number): void {
  if (parameters > MAX_PARAMETERS) throw tooLargeToTrain(data, `it has ${parameters} parameters, more than ${MAX_PARAMETERS}`);
}

/**
 * 54011 program_limit_exceeded when a query of `columns` columns is more than
 * {@link MAX_SELECT_COLUMNS}. Fitters call it with a count known before they plan their sums
 * (whose number grows with its square), then {@link aggregate} with the exact one.
 */
export function requireColumns(data: TrainingData, widest: number): void {
  if (widest > MAX_SELECT_COLUMNS) throw tooLargeToTrain(data, `one of its aggregate queries needs ${widest} columns, more than ${MAX_SELECT_COLUMNS} (Postgres's limit, held on every host)`);
}

/** 54011 for a linear or logistic model past one of the limits above (`why`), with its size and what to do. */
function tooLargeToTrain(data: TrainingData, why: string): ModelSqlError {
  const classes = data.classes && data.classes.length > 2 ? ` and ${data.classes.length} classes` : '';
  return new ModelSqlError(
    '54011',
    `the model is too large to train: ${why}; it has ${data.encoded.length} encoded features${classes} (a STRING feature has one per category): lower 'max-categories', leave features out, or use a tree model`,
    { position: data.queryPosition },
  );
}

/** The training rows `where` selects under the SELECT levels of `layers`, each behind the dialect's layer fence. */
function layered(data: TrainingData, where: string, layers: readonly (readonly (readonly [string, string])[])[]): string {
  const d = data.dialect;
  let from = '';
  layers.forEach((layer, i) => {
    const items = layer.map(([name, e]) => `${e} AS ${d.quoteIdentifier(name)}`).join(', ');
    const fence = d.layerFence(`__modelsql_fence${i}`); // each level's columns computed once per row, not once per reference above
    from = i === 0 ? `(SELECT ${items}${fence} FROM ${data.source} WHERE ${where}) AS s0` : `(SELECT *, ${items}${fence} FROM ${from}) AS s${i}`;
  });
  return from;
}

/** The label as a DOUBLE expression over the source. */
export function labelValue(d: SqlDialect, label: LabelColumn): string {
  return rawNumeric(d, { boolean: label.boolean }, label.ref);
}

let workingTables = 0;

/** A fresh name for a session-private working table of training: `__modelsql_<pid>_<n>_<role>`. */
export function workingTableName(role: string): string {
  return `__modelsql_${process.pid}_${++workingTables}_${role}`;
}

/** Drops a working table by its quoted name, ignoring failure (training's own error, if any, is the one to report). */
export async function dropWorkingTable(data: TrainingData, quoted: string): Promise<void> {
  await data.host.dropTempTable(quoted.slice(1, -1).replace(/""/g, '"')).catch(() => undefined);
}

/**
 * Runs `fn` over a session-private table (named for `role`) holding the rows of `query`,
 * given its quoted name; the table is dropped afterwards, also on failure.
 */
export async function withWorkingTable<T>(data: TrainingData, role: string, query: string, fn: (table: string) => Promise<T>): Promise<T> {
  const name = workingTableName(role);
  await data.host.materialize(name, query);
  const quoted = data.dialect.quoteIdentifier(name);
  try {
    return await fn(quoted);
  } finally {
    await dropWorkingTable(data, quoted);
  }
}
