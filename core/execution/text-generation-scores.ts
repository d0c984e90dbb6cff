/**
 * ML_EVALUATE for text_generation: the (label, prediction) pairs are streamed from the host
 * and scored here one row at a time (only running sums are kept), since tokenizing and
 * n-gram matching are not expressible in portable SQL.
 */
import type { Host } from '../host.js';
import { textMetricsRelation, textPairsSql, textScores, type EvaluationSpec } from '../planner/evaluate-metrics.js';

/**
 * The one-row metrics relation of a text-generation evaluation over `spec.relation`.
 *
 * @example
 * const relation = await textGenerationRelation(host, spec); // '(SELECT ... AS result, ... AS "bleu", ...)'
 */
export async function textGenerationRelation(host: Pick<Host, 'dialect' | 'stream'>, spec: EvaluationSpec): Promise<string> {
  const sums = [0, 0, 0, 0];
  let n = 0;
  for await (const batch of host.stream(textPairsSql(host.dialect, spec))) {
    for (const [reference, candidate] of batch.rows) {
      const s = textScores(String(reference), String(candidate));
      sums[0] += s.bleu;
      sums[1] += s.rouge1;
      sums[2] += s.rougeL;
      sums[3] += s.semantic;
      n++;
    }
  }
  return textMetricsRelation(host.dialect, n === 0 ? undefined : sums.map((v) => v / n));
}
