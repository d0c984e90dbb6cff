/**
 * kmeans: the inertia is no worse than Lloyd's algorithm run here from the same k-means++
 * seeds; predictions by compiled SQL, the macro and the ONNX artifact agree; k larger than
 * the row count is an error.
 */
import type { Session } from '../../core/session/session.js';
import { portableFraction } from '../../core/training/kmeans.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { catalogDump, close, meanStd, storedSpec } from '../core/training/training-helpers.js';

const CENTERS = [
  [0, 0],
  [6, 1],
  [2, 7],
];
const points = Array.from({ length: 150 }, (_, i) => {
  const c = CENTERS[i % 3]!;
  return { x: c[0]! + Math.sin(i * 3.1) * 1.2, y: c[1]! + Math.cos(i * 1.9) * 1.1 };
});

function sqDist(a: readonly number[], b: readonly number[]): number {
  return a.reduce((s, v, j) => s + (v - b[j]!) ** 2, 0);
}

/** Plain Lloyd's algorithm; returns the final inertia. */
function lloyd(data: readonly number[][], seeds: readonly number[][]): number {
  let centroids = seeds.map((c) => [...c]);
  let inertia = Infinity;
  for (let it = 0; it < 300; it++) {
    const sums = centroids.map(() => new Array<number>(data[0]!.length).fill(0));
    const counts = centroids.map(() => 0);
    let total = 0;
    for (const p of data) {
      let best = 0;
      centroids.forEach((c, k) => {
        if (sqDist(p, c) < sqDist(p, centroids[best]!)) best = k;
      });
      total += sqDist(p, centroids[best]!);
      counts[best]!++;
      p.forEach((v, j) => (sums[best]![j]! += v));
    }
    const next = centroids.map((c, k) => (counts[k]! > 0 ? sums[k]!.map((s) => s / counts[k]!) : c));
    if (total >= inertia - 1e-12) break;
    inertia = total;
    centroids = next;
  }
  return inertia;
}

const TRAINING_ADAPTERS = ADAPTERS;

for (const adapter of TRAINING_ADAPTERS) {
  describe(`kmeans training on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open();
      await db.sql(`CREATE TABLE pts AS SELECT CAST(x AS DOUBLE PRECISION) AS x, CAST(y AS DOUBLE PRECISION) AS y FROM (VALUES ${points.map((p) => `(${p.x}, ${p.y})`).join(', ')}) AS v(x, y)`);
    });
    afterAll(async () => {
      await db.close();
    });

    it("draws its seeds from a hash of the row number that is exact integer arithmetic, spread over [0, 1)", async () => {
      const host = await adapter.openHost();
      try {
        const n = 2000;
        const r = await host.execute(`SELECT i, ${portableFraction(host.dialect, 'i', 42)} FROM (SELECT CAST(g AS BIGINT) AS i FROM generate_series(1, ${n}) AS s(g)) AS v ORDER BY i`);
        const p = 2147483647n;
        const step = (x: bigint, c: bigint) => (x * x + c) % p;
        const expected = (i: bigint) => Number(step(step((i * 48271n + ((42n * 16807n + 12345n) % p)) % p, 1013904223n), 1664525n)) / Number(p);
        const values = r.rows.map((row) => Number(row[1]));
        values.forEach((v, k) => expect(v).toBe(expected(BigInt(k + 1))));
        const deciles = new Array<number>(10).fill(0);
        for (const v of values) deciles[Math.floor(v * 10)]! += 1;
        for (const count of deciles) expect(Math.abs(count - n / 10)).toBeLessThan(60);
        // Neighbouring row numbers (rows numbered in the order of their features) are not drawn in order.
        const rising = values.slice(1).filter((v, k) => v > values[k]!).length;
        expect(Math.abs(rising - n / 2)).toBeLessThan(100);
      } finally {
        await host.close();
      }
    });

    it('reaches an inertia no worse than Lloyd from the same seeds, and predicts the same everywhere', async () => {
      await db.sql(`CREATE MODEL km WITH ('algorithm' = 'kmeans', 'k' = '3', 'seed' = '5') AS SELECT x, y FROM pts`);
      const spec = await storedSpec(db, 'km');
      expect(spec.task).toBe('clustering');
      const sx = meanStd(points.map((p) => p.x));
      const sy = meanStd(points.map((p) => p.y));
      const encoded = points.map((p) => [(p.x - sx.mean) / sx.std, (p.y - sy.mean) / sy.std]);
      const reference = lloyd(encoded, spec.parameters.seeds);
      const ours = encoded.reduce((s, p) => s + Math.min(...spec.parameters.centroids.map((c: number[]) => sqDist(p, c))), 0);
      expect(ours).toBeLessThanOrEqual(reference * (1 + 1e-9));
      const metrics = Object.fromEntries((await db.sql('DESCRIBE MODEL EXTENDED km')).rows.filter((r) => r[3] === 'metric').map((r) => [r[0], Number(r[1])]));
      expect(close(metrics.train_inertia!, ours, 1e-9)).toBe(true);
      // The three blobs are found: each center's points share one cluster.
      const compiled = await db.sql('SELECT cluster_id FROM ML_PREDICT(TABLE pts, MODEL km, DESCRIPTOR(x, y))');
      const macro = await db.sql('SELECT ml_predict_km(x, y) FROM pts');
      await db.sql(`ALTER MODEL km SET ('runtime' = 'onnx')`);
      const onnx = await db.sql('SELECT cluster_id FROM ML_PREDICT(TABLE pts, MODEL km, DESCRIPTOR(x, y))');
      const ids = compiled.rows.map((r) => Number(r[0]));
      expect(macro.rows.map((r) => Number(r[0]))).toEqual(ids);
      expect(onnx.rows.map((r) => Number(r[0]))).toEqual(ids);
      for (let c = 0; c < 3; c++) expect(new Set(ids.filter((_, i) => i % 3 === c)).size).toBe(1);
      expect(new Set(ids).size).toBe(3);
    });

    it("with a STRING feature (a NULL, a value past 'max-categories'), its centroids are Lloyd's from its seeds over the one-hot rows", async () => {
      const city = (i: number) => (i % 7 === 0 ? null : ['oslo', 'lyon', 'rome'][i % 3]!);
      await db.sql(
        `CREATE TABLE pts_city AS SELECT CAST(x AS DOUBLE PRECISION) AS x, CAST(y AS DOUBLE PRECISION) AS y, CAST(c AS VARCHAR) AS city FROM (VALUES ${points
          .map((p, i) => `(${p.x}, ${p.y}, ${city(i) === null ? 'NULL' : `'${city(i)}'`})`)
          .join(', ')}) AS v(x, y, c)`,
      );
      await db.sql(`CREATE MODEL km_city WITH ('algorithm' = 'kmeans', 'k' = '4', 'seed' = '3', 'max-categories' = '2') AS SELECT x, y, city, x + y AS k0 FROM pts_city`);
      const spec = await storedSpec(db, 'km_city');
      const [, , cities] = spec.features;
      expect(cities.categories).toHaveLength(2); // the third city encodes to zeros
      const sx = meanStd(points.map((p) => p.x));
      const sy = meanStd(points.map((p) => p.y));
      const ss = meanStd(points.map((p) => p.x + p.y));
      const encoded = points.map((p, i) => [(p.x - sx.mean) / sx.std, (p.y - sy.mean) / sy.std, ...cities.categories.map((c: string) => ((city(i) ?? cities.mode) === c ? 1 : 0)), (p.x + p.y - ss.mean) / ss.std]);
      // Lloyd's updates, as many as the model ran, ties to the lowest cluster.
      let centroids: number[][] = spec.parameters.seeds;
      for (let it = 0; it < spec.parameters.iterations; it++) {
        const sums = centroids.map(() => new Array<number>(encoded[0]!.length).fill(0));
        const counts = centroids.map(() => 0);
        for (const p of encoded) {
          const d = centroids.map((c) => sqDist(p, c));
          const best = d.indexOf(Math.min(...d));
          counts[best]!++;
          p.forEach((v, j) => (sums[best]![j]! += v));
        }
        centroids = centroids.map((c, k) => (counts[k]! > 0 ? sums[k]!.map((v) => v / counts[k]!) : c));
      }
      spec.parameters.centroids.forEach((c: number[], k: number) => c.forEach((v, j) => expect(close(v, centroids[k]![j]!, 1e-9)).toBe(true)));
      const ours = encoded.reduce((s, p) => s + Math.min(...centroids.map((c) => sqDist(p, c))), 0);
      const metrics = Object.fromEntries((await db.sql('DESCRIBE MODEL EXTENDED km_city')).rows.filter((r) => r[3] === 'metric').map((r) => [r[0], Number(r[1])]));
      expect(close(metrics.train_inertia!, ours, 1e-9)).toBe(true);
    });

    it('trains on features named like its own working columns (x1, x2, n, u)', async () => {
      await db.sql('CREATE TABLE named AS SELECT x AS x1, y AS x2, x + y AS n, x - y AS u FROM pts');
      await db.sql(`CREATE MODEL named_km WITH ('algorithm' = 'kmeans', 'k' = '3') AS SELECT x1, x2, n, u FROM named`);
      const r = await db.sql('SELECT count(DISTINCT cluster_id) FROM ML_PREDICT(TABLE named, MODEL named_km, DESCRIPTOR(x1, x2, n, u))');
      expect(Number(r.rows[0]![0])).toBe(3);
    });

    it('rejects k larger than the row count before storing anything', async () => {
      const before = await catalogDump(db);
      await expectSqlError(db.sql(`CREATE MODEL big WITH ('algorithm' = 'kmeans', 'k' = '500') AS SELECT x, y FROM pts`), '22000', /k = 500 needs at least 500/);
      await expectSqlError(db.sql(`CREATE MODEL lab WITH ('algorithm' = 'kmeans', 'label' = 'x') AS SELECT x, y FROM pts`), '22023', /takes no 'label'/);
      expect(await catalogDump(db)).toBe(before);
    });

    it('drops its working table of encoded rows, after training and when seeding fails', async () => {
      await db.sql('CREATE TABLE twins AS SELECT 1.0 AS x, 2.0 AS y UNION ALL SELECT 1.0, 2.0 UNION ALL SELECT 3.0, 1.0');
      await db.sql(`CREATE MODEL twins_2 WITH ('algorithm' = 'kmeans', 'k' = '2') AS SELECT x, y FROM twins`);
      expect(await adapter.countTempTables(db)).toBe(0n);
      const before = await catalogDump(db);
      // three rows but two distinct ones: the third seed finds no row left, after the table was filled
      await expectSqlError(db.sql(`CREATE MODEL twins_3 WITH ('algorithm' = 'kmeans', 'k' = '3') AS SELECT x, y FROM twins`), '22000', /needs at least 3 distinct training rows; there are 2/);
      expect(await adapter.countTempTables(db)).toBe(0n);
      expect(await catalogDump(db)).toBe(before);
    });
  });
}
