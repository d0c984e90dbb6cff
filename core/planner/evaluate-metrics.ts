/**
 * ML_EVALUATE's metrics as host SQL over the zipped input/prediction relation (SPEC §1.3):
 * one row with a `result` map of every metric and one DOUBLE column per metric. Rows whose
 * label or prediction is NULL are left out.
 *
 * - regression: MAE, MSE, RMSE, MAPE (a fraction, over rows with a non-zero label), R2.
 * - classification: Accuracy, macro Precision, Recall and F1 over the classes seen in labels
 *   or predictions (a class never predicted has precision 0, as scikit-learn's
 *   `zero_division=0`), and with a probabilities output (`ARRAY<...>`) LogLoss and macro
 *   one-vs-rest AUC. When every class is a non-negative integer smaller than the length of
 *   the probabilities, class c reads element c + 1 (classes 0, 1, 2, ... as classifiers
 *   number them); otherwise the class's rank among the sorted classes seen in labels and
 *   predictions (the order of a trained classifier's probabilities).
 */
import { UnsupportedFeatureError, type SourcePosition } from '../errors.js';
import type { HostColumn, SqlDialect } from '../host.js';
import { parseDataType, typeCategory } from '../sql/types.js';

/** Tasks ML_EVALUATE knows (SPEC §1.3). */
export type EvaluationTask = 'regression' | 'classification' | 'clustering' | 'embedding' | 'text_generation';

/** Where the label, prediction and probabilities are. */
export interface EvaluationSpec {
  readonly task: EvaluationTask;
  /** The relation with input and output columns. */
  readonly relation: string;
  readonly label: HostColumn;
  /** The first OUTPUT column; `type` in model (Flink) spelling. */
  readonly prediction: { readonly name: string; readonly type: string };
  /** The OUTPUT column with class probabilities, if any. */
  readonly probabilities?: string;
  readonly position?: SourcePosition;
}

/** Metric names per task, in output order. */
export const METRICS: Readonly<Record<'regression' | 'classification', readonly string[]>> = {
  regression: ['MAE', 'MSE', 'RMSE', 'MAPE', 'R2'],
  classification: ['Accuracy', 'Precision', 'Recall', 'F1'],
};

/**
 * The SQL relation (in parentheses) that computes the metrics.
 *
 * @example
 * evaluationRelation(dialect, { task: 'regression', relation: '(SELECT ...)', label, prediction })
 */
export function evaluationRelation(d: SqlDialect, spec: EvaluationSpec): string {
  const q = (n: string) => d.quoteIdentifier(n);
  const label = q(spec.label.name);
  const prediction = q(spec.prediction.name);
  const present = `${label} IS NOT NULL AND ${prediction} IS NOT NULL`;
  let names: string[];
  let body: string;
  switch (spec.task) {
    case 'regression': {
      names = [...METRICS.regression];
      body =
        `SELECT avg(abs(y - p)) AS ${q('MAE')}, avg((y - p) * (y - p)) AS ${q('MSE')}, sqrt(avg((y - p) * (y - p))) AS ${q('RMSE')}, ` +
        `avg(CASE WHEN y <> 0 THEN abs((y - p) / y) END) AS ${q('MAPE')}, 1 - avg((y - p) * (y - p)) / nullif(var_pop(y), 0) AS ${q('R2')} ` +
        `FROM (SELECT CAST(${label} AS DOUBLE PRECISION) AS y, CAST(${prediction} AS DOUBLE PRECISION) AS p FROM ${spec.relation} AS zipped WHERE ${present}) AS z`;
      break;
    }
    case 'classification': {
      const numeric = isNumeric(spec.label.type) && isNumeric(spec.prediction.type);
      const classType = numeric ? 'DOUBLE PRECISION' : d.catalogTypes.text;
      const probs = spec.probabilities ? `, ${q(spec.probabilities)} AS probs` : '';
      const ctes = [
        `z AS (SELECT CAST(${label} AS ${classType}) AS y, CAST(${prediction} AS ${classType}) AS p${probs} FROM ${spec.relation} AS zipped WHERE ${present})`,
        numeric
          ? // integer classes 0, 1, 2, ... index the probabilities directly (when the array is long enough); other classes by rank
            `classes AS (SELECT c, CASE WHEN (SELECT bool_and(c = floor(c) AND c >= 0)${spec.probabilities ? ' AND max(c) < (SELECT max(array_length(probs, 1)) FROM z)' : ''} FROM (SELECT y AS c FROM z UNION SELECT p FROM z) AS v) ` +
            `THEN CAST(c AS BIGINT) + 1 ELSE row_number() OVER (ORDER BY c) END AS idx FROM (SELECT y AS c FROM z UNION SELECT p FROM z) AS u)`
          : `classes AS (SELECT c, row_number() OVER (ORDER BY c) AS idx FROM (SELECT y AS c FROM z UNION SELECT p FROM z) AS u)`,
        `actual AS (SELECT y AS c, count(*) AS n, sum(CASE WHEN y = p THEN 1 ELSE 0 END) AS tp FROM z GROUP BY y)`,
        `predicted AS (SELECT p AS c, count(*) AS n FROM z GROUP BY p)`,
        `per_class AS (SELECT CASE WHEN coalesce(pr.n, 0) > 0 THEN coalesce(a.tp, 0) * 1.0 / pr.n ELSE 0 END AS prec, ` +
          `CASE WHEN coalesce(a.n, 0) > 0 THEN coalesce(a.tp, 0) * 1.0 / a.n ELSE 0 END AS rec ` +
          `FROM classes AS k LEFT JOIN actual AS a ON a.c = k.c LEFT JOIN predicted AS pr ON pr.c = k.c)`,
        `scores AS (SELECT (SELECT avg(CASE WHEN y = p THEN 1.0 ELSE 0.0 END) FROM z) AS accuracy, avg(prec) AS prec, avg(rec) AS rec, ` +
          `avg(CASE WHEN prec + rec > 0 THEN 2 * prec * rec / (prec + rec) ELSE 0 END) AS f1 FROM per_class)`,
      ];
      names = [...METRICS.classification];
      let select = `SELECT s.accuracy AS ${q('Accuracy')}, s.prec AS ${q('Precision')}, s.rec AS ${q('Recall')}, s.f1 AS ${q('F1')}`;
      let from = 'FROM scores AS s';
      if (spec.probabilities) {
        const probability = 'CAST(z.probs[CAST(k.idx AS INTEGER)] AS DOUBLE PRECISION)'; // Postgres subscripts are integer, row_number() is bigint
        ctes.push(
          `logloss AS (SELECT -avg(ln(greatest(${probability}, 1e-15))) AS v FROM z JOIN classes AS k ON k.c = z.y)`,
          `ovr AS (SELECT k.c AS c, z.y = k.c AS pos, ${probability} AS s FROM z CROSS JOIN classes AS k)`,
          `ranked AS (SELECT c, pos, rank() OVER (PARTITION BY c ORDER BY s) + (count(*) OVER (PARTITION BY c, s) - 1) / 2.0 AS r FROM ovr)`,
          `auc_per_class AS (SELECT (sum(CASE WHEN pos THEN r ELSE 0 END) - sum(CASE WHEN pos THEN 1 ELSE 0 END) * (sum(CASE WHEN pos THEN 1 ELSE 0 END) + 1) / 2.0) ` +
            `/ nullif(sum(CASE WHEN pos THEN 1 ELSE 0 END) * sum(CASE WHEN pos THEN 0 ELSE 1 END), 0) AS v FROM ranked GROUP BY c)`,
          `auc AS (SELECT avg(v) AS v FROM auc_per_class)`,
        );
        names.push('LogLoss', 'AUC');
        select += `, logloss.v AS ${q('LogLoss')}, auc.v AS ${q('AUC')}`;
        from += ', logloss, auc';
      }
      body = `WITH ${ctes.join(', ')} ${select} ${from}`;
      break;
    }
    default:
      throw new UnsupportedFeatureError(`ML_EVALUATE for task '${spec.task}' is not available in this version of modelsql; available: regression, classification`, spec.position);
  }
  const columns = names.map((n) => `CAST(m.${q(n)} AS DOUBLE PRECISION) AS ${q(n)}`).join(', ');
  const map = d.metricMap(names.map((n) => [n, `m.${q(n)}`] as const));
  return `(SELECT ${map} AS result, ${columns} FROM (${body}) AS m)`;
}

function isNumeric(type: string): boolean {
  const category = typeCategory(parseDataType(type));
  return category === 'integer' || category === 'float' || category === 'decimal';
}
