/**
 * VECTOR_SEARCH on DuckDB: 1,000 query vectors against 100,000 vectors of 384 dimensions,
 * top 3 by cosine similarity, against the same search written by hand in DuckDB SQL: a
 * cross join grouped by query with the top-n `max_by` aggregate (the fastest of the forms
 * tried: a window `QUALIFY row_number() ... <= 3` or a `LATERAL (... ORDER BY LIMIT 3)` are
 * more than ten times slower), joined back to the documents for their columns. Both
 * produce (query id, document id, score) rows; the sets are compared.
 */
import { openDuckDB } from '../adapters/duckdb/index.js';
import type { BenchmarkResult } from './benchmark-result.js';

const DOCS = Number(process.env.BENCH_VS_DOCS ?? 100_000);
const QUERIES = Number(process.env.BENCH_VS_QUERIES ?? 1_000);
const DIM = 384;
const K = 3;

const SETUP = [
  `SELECT setseed(0.42)`,
  `CREATE TABLE docs AS SELECT i AS id, 'document ' || i AS title, list_transform(range(${DIM}), x -> CAST(random() - 0.5 AS FLOAT)) AS embedding FROM range(${DOCS}) t(i)`,
  `CREATE TABLE questions AS SELECT i AS qid, list_transform(range(${DIM}), x -> CAST(random() - 0.5 AS FLOAT)) AS embedding FROM range(${QUERIES}) t(i)`,
];

const HAND = `SELECT t.qid, d.id, t.top.score FROM (
  SELECT q.qid, unnest(max_by({'id': d.id, 'score': list_cosine_similarity(q.embedding, d.embedding)}, list_cosine_similarity(q.embedding, d.embedding), ${K})) AS top
  FROM questions q, docs d GROUP BY q.qid) AS t JOIN docs d ON d.id = t.top.id`;

const OURS = `SELECT q.qid, r.id, r.score FROM questions AS q, LATERAL TABLE(VECTOR_SEARCH(TABLE docs, q.embedding, DESCRIPTOR(embedding), ${K})) AS r`;

/** Both searches in one database, alternating, best of two each. */
export async function benchmarkVectorSearch(): Promise<BenchmarkResult> {
  const db = await openDuckDB();
  try {
    for (const sql of SETUP) await db.sql(sql);
    const time = async (sql: string): Promise<{ seconds: number; rows: readonly (readonly unknown[])[] }> => {
      const started = performance.now();
      const rows = (await db.sql(sql)).rows;
      return { seconds: (performance.now() - started) / 1000, rows };
    };
    const hand = [await time(HAND)];
    const ours = [await time(OURS)];
    hand.push(await time(HAND));
    ours.push(await time(OURS));
    const key = (rows: readonly (readonly unknown[])[]): string =>
      rows.map((r) => `${Number(r[0])}:${Number(r[1])}`).sort().join(',');
    if (key(hand[0]!.rows) !== key(ours[0]!.rows)) throw new Error('VECTOR_SEARCH and the hand-written search found different neighbours');
    const h = Math.min(...hand.map((r) => r.seconds));
    const m = Math.min(...ours.map((r) => r.seconds));
    return {
      name: `VECTOR_SEARCH top ${K}, ${QUERIES.toLocaleString('en-US')} queries × ${DOCS.toLocaleString('en-US')} vectors of ${DIM} dimensions (DuckDB)`,
      rows: QUERIES,
      unit: 'queries/s',
      modelsqlRowsPerSecond: QUERIES / m,
      handWrittenRowsPerSecond: QUERIES / h,
      ratio: h / m,
    };
  } finally {
    await db.close();
  }
}
