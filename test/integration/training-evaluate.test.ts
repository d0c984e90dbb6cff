/**
 * ML_EVALUATE for the tasks beyond regression and classification: clustering (on a
 * trained k-means model), embedding (arrays from an ONNX model) and text_generation
 * (strings from an ONNX model), each checked against formulas computed here.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { textScores } from '../../core/planner/evaluate-metrics.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { linearClassifierModel, typedColumnsModel } from '../support/onnx-models.js';
import { close } from '../core/training/training-helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'modelsql-eval-'));
const embedder = join(dir, 'embedder.onnx');
const echo = join(dir, 'echo.onnx');
writeFileSync(embedder, linearClassifierModel([[1, 0], [0, 1], [0.5, 0.5]], [0, 0.2, 0.1], [0, 1, 2]));
writeFileSync(echo, typedColumnsModel());

const dist = (a: readonly number[], b: readonly number[]) => Math.sqrt(a.reduce((s, v, j) => s + (v - b[j]!) ** 2, 0));

/** scikit-learn's silhouette, Davies-Bouldin and inertia, written out. */
function clusteringReference(x: readonly number[][], c: readonly number[]): { silhouette: number; db: number; inertia: number } {
  const ids = [...new Set(c)];
  const members = (k: number) => x.filter((_, i) => c[i] === k);
  const centroid = (k: number) => members(k).reduce((s, p) => s.map((v, j) => v + p[j]! / members(k).length), new Array<number>(x[0]!.length).fill(0));
  const centroids = new Map(ids.map((k) => [k, centroid(k)]));
  const inertia = x.reduce((s, p, i) => s + dist(p, centroids.get(c[i]!)!) ** 2, 0);
  const scatter = new Map(ids.map((k) => [k, members(k).reduce((s, p) => s + dist(p, centroids.get(k)!), 0) / members(k).length]));
  const db = ids.reduce((s, k) => s + Math.max(...ids.filter((o) => o !== k).map((o) => (scatter.get(k)! + scatter.get(o)!) / dist(centroids.get(k)!, centroids.get(o)!))), 0) / ids.length;
  const silhouette =
    x.reduce((s, p, i) => {
      const own = x.filter((_, j) => j !== i && c[j] === c[i]);
      if (own.length === 0) return s;
      const a = own.reduce((t, q) => t + dist(p, q), 0) / own.length;
      const b = Math.min(...ids.filter((k) => k !== c[i]).map((k) => members(k).reduce((t, q) => t + dist(p, q), 0) / members(k).length));
      return s + (b - a) / Math.max(a, b);
    }, 0) / x.length;
  return { silhouette, db, inertia };
}

const TRAINING_ADAPTERS = ADAPTERS;

for (const adapter of TRAINING_ADAPTERS) {
  describe(`ML_EVALUATE for clustering, embedding and text_generation on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open();
    });
    afterAll(async () => {
      await db.close();
    });

    it('clustering: Silhouette, DaviesBouldin and Inertia of the predicted clusters', async () => {
      const pts = Array.from({ length: 60 }, (_, i) => [((i % 3) * 4) + Math.sin(i) * 0.9, (i % 3 === 1 ? 3 : 0) + Math.cos(i * 2.3) * 0.8]);
      await db.sql(`CREATE TABLE pts AS SELECT CAST(x AS DOUBLE PRECISION) AS x, CAST(y AS DOUBLE PRECISION) AS y, 0 AS truth FROM (VALUES ${pts.map((p) => `(${p[0]}, ${p[1]})`).join(', ')}) AS v(x, y)`);
      await db.sql(`CREATE MODEL km WITH ('algorithm' = 'kmeans', 'k' = '3') AS SELECT x, y FROM pts`);
      const r = await db.sql('SELECT * FROM ML_EVALUATE(TABLE pts, MODEL km, DESCRIPTOR(truth), DESCRIPTOR(x, y))');
      expect(r.columns.map((c) => c.name)).toEqual(['result', 'silhouette', 'daviesbouldin', 'inertia']);
      const clusters = (await db.sql('SELECT cluster_id FROM ML_PREDICT(TABLE pts, MODEL km, DESCRIPTOR(x, y))')).rows.map((row) => Number(row[0]));
      const expected = clusteringReference(pts, clusters);
      const row = r.rows[0]!;
      expect(close(row[1] as number, expected.silhouette, 1e-9)).toBe(true);
      expect(close(row[2] as number, expected.db, 1e-9)).toBe(true);
      expect(close(row[3] as number, expected.inertia, 1e-9)).toBe(true);
      expect((row[0] as Record<string, number>).Silhouette).toBeCloseTo(expected.silhouette, 9);
    });

    it('embedding: mean cosine, weighted Jaccard and Euclidean distance between the label array and the predicted array', async () => {
      const rows = Array.from({ length: 25 }, (_, i) => ({ a: Math.sin(i) * 2, b: Math.cos(i * 0.7) * 2, target: [0.2 + (i % 4) * 0.1, 0.5, 0.3 - (i % 3) * 0.05] }));
      await db.sql(
        `CREATE TABLE emb AS SELECT CAST(a AS DOUBLE PRECISION) AS a, CAST(b AS DOUBLE PRECISION) AS b, CAST(target AS DOUBLE PRECISION[]) AS target FROM (VALUES ${rows.map((r) => `(${r.a}, ${r.b}, ARRAY[${r.target.join(', ')}])`).join(', ')}) AS v(a, b, target)`,
      );
      await db.sql(`CREATE MODEL e INPUT (a DOUBLE, b DOUBLE) OUTPUT (probabilities ARRAY<FLOAT>) WITH ('provider' = 'onnx', 'path' = '${embedder}', 'task' = 'embedding')`);
      const predicted = (await db.sql('SELECT target, probabilities FROM ML_PREDICT(TABLE emb, MODEL e, DESCRIPTOR(a, b))')).rows;
      const r = await db.sql('SELECT * FROM ML_EVALUATE(TABLE emb, MODEL e, DESCRIPTOR(target), DESCRIPTOR(a, b))');
      expect(r.columns.map((c) => c.name)).toEqual(['result', 'cosinesimilarity', 'jaccardsimilarity', 'euclideandistance']);
      let cos = 0;
      let jac = 0;
      let euc = 0;
      for (const [t, p] of predicted as [number[], number[]][]) {
        const dot = t.reduce((s, v, j) => s + v * p[j]!, 0);
        cos += dot / (Math.hypot(...t) * Math.hypot(...p));
        jac += t.reduce((s, v, j) => s + Math.min(v, p[j]!), 0) / t.reduce((s, v, j) => s + Math.max(v, p[j]!), 0);
        euc += dist(t, p);
      }
      const row = r.rows[0]!;
      expect(close(row[1] as number, cos / predicted.length, 1e-9)).toBe(true);
      expect(close(row[2] as number, jac / predicted.length, 1e-9)).toBe(true);
      expect(close(row[3] as number, euc / predicted.length, 1e-9)).toBe(true);
    });

    it('text_generation: BLEU, ROUGE-1, ROUGE-L and bag-of-words semantic similarity', async () => {
      // Hand-computed: reference "the cat sat on the mat", candidate "the cat sat on mat".
      // ROUGE-1: 5 matching unigrams, P = 5/5, R = 5/6 → F1 = 10/11; LCS = 5 → the same.
      // Cosine of counts: ref (the 2, cat, sat, on, mat), cand (the, cat, sat, on, mat): 6 / (√8 · √5).
      // BLEU: p1 = 5/5, p2 = (3 + 1)/(4 + 1), p3 = (2 + 1)/(3 + 1), p4 = (1 + 1)/(2 + 1); BP = e^(1 - 6/5).
      const hand = textScores('The cat sat on the mat', 'the cat sat on mat');
      expect(hand.rouge1).toBeCloseTo(10 / 11, 12);
      expect(hand.rougeL).toBeCloseTo(10 / 11, 12);
      expect(hand.semantic).toBeCloseTo(6 / (Math.sqrt(8) * Math.sqrt(5)), 12);
      expect(hand.bleu).toBeCloseTo(Math.exp(1 - 6 / 5) * Math.pow(1 * (4 / 5) * (3 / 4) * (2 / 3), 1 / 4), 12);
      expect(textScores('a b c', 'a b c')).toEqual({ bleu: expect.closeTo(1, 12), rouge1: expect.closeTo(1, 12), rougeL: expect.closeTo(1, 12), semantic: expect.closeTo(1, 12) });
      expect(textScores('a b c', 'x y')).toMatchObject({ rouge1: 0, rougeL: 0, semantic: 0 });
      // ROUGE-L differs from ROUGE-1 when order differs: LCS("a b c d", "d c b a") = 1.
      expect(textScores('a b c d', 'd c b a').rougeL).toBeCloseTo(0.25, 12);

      const pairs = [
        ['The cat sat on the mat', 'the cat sat on mat'],
        ['a b c', 'a b c'],
        ['a b c d', 'd c b a'],
      ];
      await db.sql(
        `CREATE TABLE gen AS SELECT 1.0 AS d, CAST(1 AS BIGINT) AS i, 1 AS j, cand AS s, true AS flag, ref FROM (VALUES ${pairs.map(([r, c]) => `('${r}', '${c}')`).join(', ')}) AS v(ref, cand)`,
      );
      await db.sql(`CREATE MODEL g INPUT (d DOUBLE, i BIGINT, j INT, s STRING, flag BOOLEAN) OUTPUT (s_out STRING) WITH ('provider' = 'onnx', 'path' = '${echo}', 'task' = 'text_generation')`);
      const r = await db.sql('SELECT * FROM ML_EVALUATE(TABLE gen, MODEL g, DESCRIPTOR(ref), DESCRIPTOR(d, i, j, s, flag))');
      expect(r.columns.map((c) => c.name)).toEqual(['result', 'bleu', 'rouge1', 'rougel', 'semanticsimilarity']);
      const scores = pairs.map(([ref, cand]) => textScores(ref!, cand!));
      const mean = (k: keyof (typeof scores)[number]) => scores.reduce((s, x) => s + x[k], 0) / scores.length;
      const row = r.rows[0]!;
      expect(row.slice(1)).toEqual([mean('bleu'), mean('rouge1'), mean('rougeL'), mean('semantic')].map((v) => expect.closeTo(v, 12)));
    });
  });
}
