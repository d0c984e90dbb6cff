/**
 * VECTOR_SEARCH (SPEC §1.4) on every adapter, against a brute-force search computed in the
 * test: exact top-k for each metric, ties (duplicate vectors) broken by row order, NULL
 * vectors skipped, and the errors of bad calls.
 */
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';

const DIM = 8;
const DOCS = 240;
const QUERIES = 25;

/** Deterministic vectors with 3-decimal components (exact in float8 text). */
function vectors(count: number, seed: number): number[][] {
  let s = seed;
  const next = (): number => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return Math.round(((s >>> 8) / 2 ** 24 - 0.5) * 2000) / 1000;
  };
  return Array.from({ length: count }, () => Array.from({ length: DIM }, next));
}

const docs: (number[] | null)[] = vectors(DOCS, 3);
docs[7] = null;
docs[100] = null;
docs[150] = [...docs[3]!]; // a tie with row 3
docs[200] = docs[3]!.map((v) => v * 2); // same direction as row 3: a cosine tie
const queries: (number[] | null)[] = vectors(QUERIES, 9);
queries[0] = [...docs[3]!];
queries[5] = null;

type Metric = 'cosine' | 'l2' | 'inner_product';

function scoreOf(metric: Metric, q: readonly number[], v: readonly number[]): number {
  const dot = q.reduce((a, x, i) => a + x * v[i]!, 0);
  if (metric === 'inner_product') return dot;
  if (metric === 'l2') return Math.sqrt(q.reduce((a, x, i) => a + (x - v[i]!) ** 2, 0));
  return dot / (Math.hypot(...q) * Math.hypot(...v));
}

/** Brute force: every non-NULL doc scored, best first, ties by id (the row order). */
function bruteForce(metric: Metric, q: readonly number[] | null, k: number): { id: number; score: number }[] {
  if (q === null) return [];
  const scored = docs.flatMap((v, id) => (v === null ? [] : [{ id, score: scoreOf(metric, q, v) }]));
  const sign = metric === 'l2' ? 1 : -1;
  // Scores equal up to rounding count as ties (the host rounds differently).
  scored.sort((a, b) => (Math.abs(a.score - b.score) < 1e-12 ? a.id - b.id : sign * (a.score - b.score)));
  return scored.slice(0, k);
}

const arrayLiteral = (v: readonly number[] | null): string => (v === null ? 'NULL' : `ARRAY[${v.map((x) => x.toFixed(3)).join(', ')}]`);

for (const adapter of ADAPTERS) {
  describe(`VECTOR_SEARCH on ${adapter.name}`, () => {
    let db: Session;
    const vectorType = adapter.name === 'postgres' ? 'double precision[]' : 'DOUBLE[]';
    beforeAll(async () => {
      db = await adapter.open();
      await db.sql(`CREATE TABLE docs (id INT, title VARCHAR, embedding ${vectorType})`);
      await db.sql(`INSERT INTO docs VALUES ${docs.map((v, id) => `(${id}, 'doc ${id}', ${arrayLiteral(v)})`).join(', ')}`);
      await db.sql(`CREATE TABLE questions (qid INT, embedding ${vectorType})`);
      await db.sql(`INSERT INTO questions VALUES ${queries.map((v, id) => `(${id}, ${arrayLiteral(v)})`).join(', ')}`);
    });
    afterAll(async () => {
      await db.close();
    });

    const expectSearch = (rows: readonly (readonly unknown[])[], metric: Metric, k: number): void => {
      const byQuery = new Map<number, { id: number; score: number }[]>();
      for (const [qid, id, score] of rows) {
        const list = byQuery.get(Number(qid)) ?? [];
        list.push({ id: Number(id), score: Number(score) });
        byQuery.set(Number(qid), list);
      }
      queries.forEach((q, qid) => {
        const expected = bruteForce(metric, q, k);
        const actual = (byQuery.get(qid) ?? []).sort((a, b) => (Math.abs(a.score - b.score) < 1e-12 ? a.id - b.id : (metric === 'l2' ? 1 : -1) * (a.score - b.score)));
        expect(actual.map((r) => r.id)).toEqual(expected.map((r) => r.id));
        actual.forEach((r, i) => expect(Math.abs(r.score - expected[i]!.score)).toBeLessThan(1e-9));
      });
    };

    it.each(['cosine', 'l2', 'inner_product'] as const)('returns the exact top-k by %s, as a brute-force search does', async (metric) => {
      const config = metric === 'cosine' ? '' : `, MAP['metric', '${metric}']`;
      const r = await db.sql(`SELECT q.qid, r.id, r.score FROM questions AS q, LATERAL TABLE(VECTOR_SEARCH(TABLE docs, q.embedding, DESCRIPTOR(embedding), 5${config})) AS r`);
      expectSearch(r.rows, metric, 5);
    });

    it('returns the search table columns then score DOUBLE; ties and NULLs as specified', async () => {
      const r = await db.sql(`SELECT * FROM questions q, LATERAL TABLE(VECTOR_SEARCH(TABLE docs, q.embedding, DESCRIPTOR(embedding), 3)) WHERE q.qid = 0`);
      expect(r.columns.map((c) => c.name)).toEqual(['qid', 'embedding', 'id', 'title', 'embedding', 'score']);
      // Rows 3, 150 (equal vectors) and 200 (same direction) all have cosine 1: by row order.
      expect(r.rows.map((row) => Number(row[2]))).toEqual([3, 150, 200]);
      r.rows.forEach((row) => expect(Math.abs(Number(row[5]) - 1)).toBeLessThan(1e-12));
      const none = await db.sql(`SELECT count(*) FROM questions q, LATERAL TABLE(VECTOR_SEARCH(TABLE docs, q.embedding, DESCRIPTOR(embedding), 3)) AS r WHERE q.qid = 5`);
      expect(Number(none.rows[0]![0])).toBe(0);
      const all = await db.sql(`SELECT count(*) FROM TABLE(VECTOR_SEARCH(TABLE docs, ${arrayLiteral(queries[1]!)}, DESCRIPTOR(embedding), 1000))`);
      expect(Number(all.rows[0]![0])).toBe(DOCS - 2);
    });

    it('matches nothing with a zero vector under cosine, nor with NaN components under any metric', async () => {
      await db.sql(`CREATE TABLE odd (id INT, embedding ${vectorType})`);
      await db.sql(`INSERT INTO odd VALUES (1, ARRAY[0.0, 0.0]), (2, ARRAY[CAST('NaN' AS double precision), 1.0]), (3, ARRAY[1.0, 0.0]), (4, ARRAY[0.0, 1.0]), (5, NULL)`);
      const ids = async (query: string, metric: Metric): Promise<number[]> =>
        (await db.sql(`SELECT id FROM TABLE(VECTOR_SEARCH(TABLE odd, ${query}, DESCRIPTOR(embedding), 10, MAP['metric', '${metric}']))`)).rows.map((row) => Number(row[0]));
      expect(await ids('ARRAY[1.0, 0.6]', 'cosine')).toEqual([3, 4]);
      expect(await ids('ARRAY[1.0, 0.6]', 'l2')).toEqual([3, 4, 1]);
      expect(await ids('ARRAY[1.0, 0.6]', 'inner_product')).toEqual([3, 4, 1]);
      expect(await ids('ARRAY[0.0, 0.0]', 'cosine')).toEqual([]);
      expect(await ids('ARRAY[0.0, 0.0]', 'l2')).toEqual([1, 3, 4]);
      expect(await ids(`ARRAY[CAST('NaN' AS double precision), 1.0]`, 'inner_product')).toEqual([]);
    });

    it('ranks nowhere a vector with a NULL component (as a NaN one), and finds nothing for a query vector with one', async () => {
      await db.sql(`CREATE TABLE holes (id INT, embedding ${vectorType})`);
      const hole = `CAST(ARRAY[1.0, NULL] AS ${vectorType})`;
      await db.sql(`INSERT INTO holes VALUES (1, ${hole}), (2, ARRAY[1.0, 0.5]), (3, CAST(ARRAY[NULL, NULL] AS ${vectorType})), (4, ARRAY[0.0, 1.0]), (5, NULL)`);
      for (const metric of ['cosine', 'l2', 'inner_product'] as const) {
        const r = await db.sql(`SELECT id FROM TABLE(VECTOR_SEARCH(TABLE holes, ARRAY[1.0, 1.0], DESCRIPTOR(embedding), 10, MAP['metric', '${metric}']))`);
        expect(r.rows.map((row) => Number(row[0])).sort()).toEqual([2, 4]);
        const sub = await db.sql(`SELECT id FROM TABLE(VECTOR_SEARCH(TABLE (SELECT * FROM holes), ARRAY[1.0, 1.0], DESCRIPTOR(embedding), 10, MAP['metric', '${metric}']))`);
        expect(sub.rows.map((row) => Number(row[0])).sort()).toEqual([2, 4]);
        const fixed = adapter.name === 'postgres' ? 'real[2]' : 'FLOAT[2]';
        const arrays = await db.sql(`SELECT id FROM TABLE(VECTOR_SEARCH(TABLE (SELECT id, CAST(embedding AS ${fixed}) AS embedding FROM holes), ARRAY[1, 1], DESCRIPTOR(embedding), 10, MAP['metric', '${metric}']))`);
        expect(arrays.rows.map((row) => Number(row[0])).sort()).toEqual([2, 4]);
        expect((await db.sql(`SELECT id FROM TABLE(VECTOR_SEARCH(TABLE docs, CAST(ARRAY[${queries[1]!.slice(1).join(', ')}, NULL] AS ${vectorType}), DESCRIPTOR(embedding), 3, MAP['metric', '${metric}']))`)).rows).toEqual([]);
      }
    });

    it('searches a table with columns of types without an ordering (json, point), ties still broken deterministically', async () => {
      const extra = adapter.name === 'postgres' ? ', at point' : '';
      const at = (x: number): string => (adapter.name === 'postgres' ? `, point(${x}, 0)` : '');
      await db.sql(`CREATE TABLE with_json (meta JSON, id INT${extra}, embedding ${vectorType})`);
      await db.sql(`INSERT INTO with_json VALUES ('{"n": 1}', 1${at(1)}, ARRAY[1.0, 0.0]), ('{"n": 2}', 2${at(2)}, ARRAY[2.0, 0.0]), ('{"n": 3}', 3${at(3)}, ARRAY[0.0, 1.0])`);
      const ids = async (sql: string): Promise<number[]> => (await db.sql(sql)).rows.map((row) => Number(row[0]));
      // Rows 1 and 2 tie under cosine (same direction): first by the json column's text, as by row order.
      expect(await ids(`SELECT id FROM TABLE(VECTOR_SEARCH(TABLE with_json, ARRAY[1.0, 0.0], DESCRIPTOR(embedding), 3))`)).toEqual([1, 2, 3]);
      expect(await ids(`SELECT id FROM TABLE(VECTOR_SEARCH(TABLE (SELECT * FROM with_json), ARRAY[1.0, 0.0], DESCRIPTOR(embedding), 2))`)).toEqual([1, 2]);
    });

    it('searches a subquery with two columns of one name as DuckDB does: every column kept, the first of the name searched', async () => {
      await db.sql(`CREATE TABLE pairs (id INT, embedding ${vectorType})`);
      await db.sql(`INSERT INTO pairs VALUES (1, ARRAY[1.0, 0.0]), (2, ARRAY[0.6, 0.8]), (3, ARRAY[0.0, 1.0])`);
      // Postgres answers the repeated name as it is (as it answers `SELECT a.id, b.id`); DuckDB names the second `id_1`.
      const second = (name: string): string => (adapter.name === 'duckdb' ? `${name}_1` : name);
      const same = await db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE (SELECT a.id, b.id, a.embedding FROM pairs a JOIN pairs b ON b.id = 4 - a.id), ARRAY[1.0, 0.1], DESCRIPTOR(embedding), 2))`);
      expect(same.columns.map((c) => c.name)).toEqual(['id', second('id'), 'embedding', 'score']);
      expect(same.rows.map((row) => [Number(row[0]), Number(row[1])])).toEqual([[1, 3], [2, 2]]);
      // DESCRIPTOR names the first of two vector columns of one name.
      const vectors = await db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE (SELECT a.id, a.embedding, b.embedding FROM pairs a JOIN pairs b ON b.id = 4 - a.id), ARRAY[0.0, 1.0], DESCRIPTOR(embedding), 1))`);
      expect(vectors.columns.map((c) => c.name)).toEqual(['id', 'embedding', second('embedding'), 'score']);
      expect(vectors.rows.map((row) => Number(row[0]))).toEqual([3]);
      // Columns named as the result's score, or as the search's own names, are columns as any other.
      const named = await db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE (SELECT id, id * 10 AS score, embedding, 7 AS __vs_score, 8 AS __vs_c0 FROM pairs), ARRAY[1.0, 0.0], DESCRIPTOR(embedding), 2))`);
      expect(named.columns.map((c) => c.name)).toEqual(['id', 'score', 'embedding', '__vs_score', '__vs_c0', second('score')]);
      expect(named.rows.map((row) => [Number(row[0]), Number(row[1]), Number(row[3]), Number(row[4])])).toEqual([[1, 10, 7, 8], [2, 20, 7, 8]]);
      expect(Number(named.rows[0]![5])).toBeCloseTo(1, 12);
    });

    it('refuses multidimensional arrays: as searched vectors (naming the column) and as the query vector', async () => {
      if (adapter.name === 'duckdb') {
        // DuckDB's types say it: a DOUBLE[][] column is no column of vectors.
        await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE (SELECT id, [embedding, embedding] AS embedding FROM docs), ARRAY[1.0], DESCRIPTOR(embedding), 3))`), '42804', /"embedding" is DOUBLE\[\]\[\]/);
        return;
      }
      // A Postgres float8[] holds {{1,0},{0,1}} too; unnest and cardinality would flatten it into one vector of 4.
      await db.sql(`CREATE TABLE grids (id INT, embedding double precision[])`);
      await db.sql(`INSERT INTO grids VALUES (1, ARRAY[1.0, 0.0, 0.0, 1.0]), (2, ARRAY[[1.0, 0.0], [0.0, 1.0]]), (3, NULL)`);
      const searched = `SELECT * FROM TABLE(VECTOR_SEARCH(TABLE grids, ARRAY[1.0, 0.0, 0.0, 1.0], DESCRIPTOR(embedding), 3))`;
      const error = await expectSqlError(db.sql(searched), '2202E', /^VECTOR_SEARCH: column "embedding" holds 2-dimensional arrays; a vector is a one-dimensional array/);
      expect(error.position).toMatchObject({ line: 1, column: searched.indexOf('TABLE grids') + 1 });
      await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE (SELECT id, embedding FROM grids WHERE id > 1), ARRAY[1.0], DESCRIPTOR(embedding), 3))`), '2202E', /column "embedding" holds 2-dimensional arrays/);
      // At the limit: one-dimensional vectors only are searched as before.
      const flat = await db.sql(`SELECT id FROM TABLE(VECTOR_SEARCH(TABLE (SELECT * FROM grids WHERE id <> 2), ARRAY[1.0, 0.0, 0.0, 1.0], DESCRIPTOR(embedding), 3))`);
      expect(flat.rows.map((row) => Number(row[0]))).toEqual([1]);
      // A query vector of more than one dimension, constant or row by row, even when its element count matches.
      await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, ARRAY[[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], DESCRIPTOR(embedding), 3))`), '2202E', /^VECTOR_SEARCH: the query vector is a 2-dimensional array; a vector is a one-dimensional array, as the vectors of column "embedding"/);
      await expectSqlError(
        db.sql(`SELECT * FROM (SELECT ARRAY[[[1.0, 2.0]], [[3.0, 4.0]], [[5.0, 6.0]], [[7.0, 8.0]]] AS v) AS q, LATERAL TABLE(VECTOR_SEARCH(TABLE docs, q.v, DESCRIPTOR(embedding), 3))`),
        '2202E',
        /the query vector is a 3-dimensional array/,
      );
    });

    it('takes named arguments in any order, a constant query and a subquery as the search table', async () => {
      const named = await db.sql(
        `SELECT q.qid, r.id, r.score FROM questions q, LATERAL TABLE(VECTOR_SEARCH(TOP_K => 4, COLUMN_TO_SEARCH => DESCRIPTOR(embedding), CONFIG => MAP['metric', 'l2'], SEARCH_TABLE => TABLE docs, COLUMN_TO_QUERY => q.embedding)) AS r`,
      );
      expectSearch(named.rows, 'l2', 4);
      const sub = await db.sql(`SELECT id, score FROM TABLE(VECTOR_SEARCH(TABLE (SELECT * FROM docs WHERE id >= 100), ${arrayLiteral(queries[2]!)}, DESCRIPTOR(embedding), 3))`);
      const expected = bruteForce('cosine', queries[2]!, DOCS).filter((r) => r.id >= 100).slice(0, 3);
      expect(sub.rows.map((row) => Number(row[0])).sort((a, b) => a - b)).toEqual(expected.map((r) => r.id).sort((a, b) => a - b));
    });

    it('takes TOP_K up to 10,000 (every row when fewer), and refuses 10,001, negative, fractional and non-literal ones with 22023', async () => {
      const q = arrayLiteral(queries[0]!);
      const all = await db.sql(`SELECT count(*) FROM TABLE(VECTOR_SEARCH(TABLE docs, ${q}, DESCRIPTOR(embedding), 10000))`);
      expect(Number(all.rows[0]![0])).toBe(docs.filter((v) => v !== null).length);
      for (const k of ['10001', '-1', '1.5', '99999999999999999999', 'NULL', '1 + 1']) {
        await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, ${q}, DESCRIPTOR(embedding), ${k}))`), '22023', /TOP_K of VECTOR_SEARCH must be an integer from 1 to 10000/);
      }
      // An infinite component gives NaN scores, which rank nowhere; a NULL query vector finds nothing.
      const inf = `ARRAY[CAST('Infinity' AS double precision), ${queries[0]!.slice(1).join(', ')}]`;
      expect((await db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, ${inf}, DESCRIPTOR(embedding), 3))`)).rows).toEqual([]);
      expect((await db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, CAST(NULL AS double precision[]), DESCRIPTOR(embedding), 3))`)).rows).toEqual([]);
    });

    it('reports bad calls clearly', async () => {
      await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, ARRAY[1.0, 2.0], DESCRIPTOR(embedding), 3))`), '22023', /VECTOR_SEARCH: the query vector has 2 dimensions, but the vectors of column "embedding" have 8/);
      // The same from a correlated query vector, row by row.
      await expectSqlError(db.sql(`SELECT * FROM (SELECT ARRAY[1.0, 2.0] AS v) AS q, LATERAL TABLE(VECTOR_SEARCH(TABLE docs, q.v, DESCRIPTOR(embedding), 3))`), '22023', /query vector has 2 dimensions/);
      await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, ARRAY[1.0], DESCRIPTOR(title), 3))`), '42804', /numeric arrays/);
      await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, ARRAY[1.0], DESCRIPTOR(nope), 3))`), '42703', /"nope" does not exist/);
      await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, ARRAY[1.0], DESCRIPTOR(embedding), 0))`), '22023', /TOP_K/);
      await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, ARRAY[1.0], DESCRIPTOR(embedding), 3, MAP['metric', 'hamming']))`), '22023', /'metric'/);
      await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, ARRAY[1.0], DESCRIPTOR(embedding)))`), '42601', /too few arguments/);
      // An ML call inside the query vector (or TOP_K) would reach the host as written: refused, pointing at it.
      const inline = `SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, (SELECT embedding FROM ML_PREDICT(TABLE (SELECT 'cat' AS t), MODEL embedder, DESCRIPTOR(t))), DESCRIPTOR(embedding), 3))`;
      const nested = await expectSqlError(db.sql(inline), '42601', /ML_PREDICT may stand only in a TABLE \(subquery\) argument of VECTOR_SEARCH.*LATERAL TABLE\(VECTOR_SEARCH/);
      expect(nested.position).toMatchObject({ line: 1, column: inline.indexOf('ML_PREDICT') + 1 });
      await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE docs, ARRAY[1.0], DESCRIPTOR(embedding), (SELECT count(*) FROM TABLE(VECTOR_SEARCH(TABLE docs, ARRAY[1.0], DESCRIPTOR(embedding), 1)))))`), '42601', /VECTOR_SEARCH may stand only in a TABLE \(subquery\) argument/);
      await db.sql(`CREATE TABLE mixed AS SELECT * FROM docs`);
      await db.sql(`INSERT INTO mixed VALUES (999, 'short', ARRAY[1.0, 2.0])`);
      await expectSqlError(db.sql(`SELECT * FROM TABLE(VECTOR_SEARCH(TABLE mixed, ARRAY[1.0, 2.0], DESCRIPTOR(embedding), 3))`), '22000', /from 2 to 8 dimensions/);
    });
  });
}
