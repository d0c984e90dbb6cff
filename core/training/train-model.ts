/**
 * `CREATE MODEL ... AS <query>` (SPEC §3): prepares the data, runs the algorithm, computes
 * the metrics on the training and held-out rows, and writes the artifacts. Nothing is
 * stored here: the catalog stores the result only when everything succeeded.
 */
import { createHash } from 'node:crypto';
import { ModelSqlError } from '../errors.js';
import type { Host } from '../host.js';
import { evaluationRelation, metricOfColumn } from '../planner/evaluate-metrics.js';
import { compileModel, compiledRelation } from './compile-sql.js';
import { fitKMeans, inertia } from './kmeans.js';
import { fitLinearRegression } from './linear-regression.js';
import { fitLogisticRegression } from './logistic-regression.js';
import { exportOnnx } from './onnx-export.js';
import { ONNX_ARTIFACT, SPEC_ARTIFACT, SPEC_FORMAT, outputColumns, serializeTrainedModel, type Artifact, type ModelParameters, type TrainedModel, type TrainingResult } from './trained-model.js';
import { cancellableHost, describeTrainingQuery, findLabel, isNumericType, prepareTrainingData, toNumber, type TrainingData, type TrainingHost, type TrainingPositions } from './training-data.js';
import { parseTrainingOptions, type TrainingOptions } from './training-options.js';
import { fitTrees } from './tree-models.js';

function artifact(name: string, content: Uint8Array): Artifact {
  return { name, content, sha256: createHash('sha256').update(content).digest('hex') };
}

async function fit(data: TrainingData, options: TrainingOptions): Promise<ModelParameters> {
  switch (options.algorithm) {
    case 'linear_regression':
      return fitLinearRegression(data, options.l2);
    case 'logistic_regression':
      return fitLogisticRegression(data, options);
    case 'kmeans':
      return fitKMeans(data, options);
    case 'decision_tree':
    case 'gradient_boosted_trees':
      return fitTrees(data, options);
  }
}

/**
 * Metrics of the fitted model over the rows `where` selects, by the same SQL as
 * ML_EVALUATE (regression and classification) or the inertia (clustering).
 */
async function metricsOver(host: TrainingHost, model: TrainedModel, data: TrainingData, where: string): Promise<(readonly [string, number])[]> {
  const d = host.dialect;
  if (model.task === 'clustering') return [['inertia', await inertia(data, model.parameters as Extract<ModelParameters, { kind: 'kmeans' }>, where)]];
  const compiled = compileModel(model, d, data.featureRefs, false);
  const outputs = model.output.map((_, i) => `__modelsql_p${i}`);
  const relation = compiledRelation(d, compiled, `SELECT * FROM ${data.source} WHERE ${where}`, [data.label!.ref], outputs, true);
  const evaluation = evaluationRelation(d, {
    task: model.task,
    relation,
    label: { name: data.label!.name, type: data.label!.type },
    prediction: { name: outputs[0]!, type: model.output[0]!.type },
    probabilities: outputs[1],
    fewOutputs: model.task === 'classification',
  });
  const r = await host.execute(`SELECT * FROM ${evaluation} AS m`);
  return r.columns.slice(1).map((c, i) => [metricOfColumn(c.name) ?? c.name, toNumber(r.rows[0]![i + 1])] as const);
}

/**
 * Trains a model on `query` in `host`. Aborting `signal` (a cancel, a statement timeout)
 * stops training with 57014 before its next statement.
 *
 * @example
 * const { model, artifacts, metrics } = await trainModel(host, 'SELECT sqft, price FROM houses', [['algorithm', 'linear_regression'], ['label', 'price']], positions);
 */
export async function trainModel(
  host: Host,
  query: string,
  rawOptions: readonly (readonly [string, string])[],
  positions: TrainingPositions,
  signal: AbortSignal = new AbortController().signal,
): Promise<TrainingResult> {
  const settings = host.dialect.trainingSettings;
  if (!settings) return train(cancellableHost(host, signal), query, rawOptions, positions);
  const saved: (readonly [string, string])[] = [];
  for (const [name, value] of settings.values) {
    saved.push([name, String((await host.execute(settings.read(name))).rows[0]![0])]);
    await host.execute(settings.write(name, value));
  }
  try {
    return await train(cancellableHost(host, signal), query, rawOptions, positions);
  } finally {
    // In a failed transaction the rollback restores them instead.
    for (const [name, value] of saved) await host.execute(settings.write(name, value)).catch(() => undefined);
  }
}

async function train(host: TrainingHost, query: string, rawOptions: readonly (readonly [string, string])[], positions: TrainingPositions): Promise<TrainingResult> {
  try {
    return await trainChecked(host, query, rawOptions, positions);
  } catch (error) {
    // 22003 numeric_value_out_of_range from the host's sums over the data (e.g. a variance
    // of values near 1e300): the generated SQL means nothing to the user, the query does.
    if (error instanceof ModelSqlError && error.sqlstate === '22003' && !error.position) {
      throw new ModelSqlError('22003', `a number overflowed DOUBLE while training on the query's values (${error.message.split('\n')[0]}); scale the large columns down`, { position: positions.query, cause: error });
    }
    throw error;
  }
}

async function trainChecked(host: TrainingHost, query: string, rawOptions: readonly (readonly [string, string])[], positions: TrainingPositions): Promise<TrainingResult> {
  parseTrainingOptions(rawOptions, positions.option, () => true); // option errors before the query is looked at
  const columns = await describeTrainingQuery(host, query, positions);
  const options = parseTrainingOptions(rawOptions, positions.option, (label) => {
    const column = findLabel(columns, label);
    return column === undefined ? undefined : isNumericType(column.type);
  });
  const data = await prepareTrainingData(host, query, columns, options, positions);
  const parameters = await fit(data, options);
  const label = data.label ? { name: data.label.name, type: data.label.type } : undefined;
  const model: TrainedModel = {
    format: SPEC_FORMAT,
    algorithm: options.algorithm,
    task: options.task,
    ...(label ? { label } : {}),
    features: data.features,
    parameters,
    input: data.features.map((f) => ({ name: f.name, type: f.type })),
    output: outputColumns(options.task, label),
  };
  const metrics: (readonly [string, number])[] = [
    ['train_rows', data.trainRows],
    ['test_rows', data.testRows],
  ];
  for (const [name, value] of await metricsOver(host, model, data, data.trainWhere)) metrics.push([`train_${name}`, value]);
  if (data.testWhere && data.testRows > 0) metrics.push(...(await metricsOver(host, model, data, data.testWhere)));
  const artifacts = [artifact(SPEC_ARTIFACT, serializeTrainedModel(model)), artifact(ONNX_ARTIFACT, exportOnnx(model))];
  return { model, artifacts, metrics: metrics.filter(([, v]) => Number.isFinite(v)) };
}
