/**
 * Local text models (SPEC §2.6) through SQL on every adapter: CREATE MODEL over a model
 * directory, ML_PREDICT embeddings and classifications checked against the independent
 * reference (test/support/text-reference.ts) to 1e-5, NULL and empty texts, the
 * prediction cache, progress, and bad directories that leave the catalog as it was.
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { reference } from '../support/text-reference.js';
import { TEST_LABELS, writeTextModel, writeTextModels } from '../support/text-models.js';
import type { ProgressEvent } from '../../core/model-types.js';

const dirs = writeTextModels();
afterAll(() => rmSync(dirs.root, { recursive: true, force: true }));

const DOCS = ['the cat sat on the mat', 'vector search in sql', null, '', 'hello world', Array.from({ length: 50 }, () => 'data').join(' '), 'postgres and duck'];
const sqlString = (s: string | null): string => (s === null ? 'NULL' : `'${s.replace(/'/g, "''")}'`);

const expectClose = (actual: unknown, expected: readonly number[]): void => {
  expect(Array.isArray(actual)).toBe(true);
  const a = actual as number[];
  expect(a).toHaveLength(expected.length);
  a.forEach((v, i) => expect(Math.abs(v - expected[i]!)).toBeLessThanOrEqual(1e-5));
};

for (const adapter of ADAPTERS) {
  describe(`local text models on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open();
      await db.sql(`CREATE TABLE docs (id INT, body VARCHAR)`);
      await db.sql(`INSERT INTO docs VALUES ${DOCS.map((d, i) => `(${i}, ${sqlString(d)})`).join(', ')}`);
      await db.sql(`CREATE MODEL emb INPUT (text STRING) OUTPUT (embedding ARRAY<FLOAT>) WITH ('provider' = 'onnx', 'path' = '${dirs.embedding}', 'task' = 'embedding')`);
      await db.sql(`CREATE MODEL sentiment WITH ('provider' = 'onnx', 'path' = '${dirs.classification}', 'task' = 'classification')`);
    });
    afterAll(async () => {
      await db.close();
    });

    it('embeds a text column, NULL for NULL and empty texts, equal to the reference', async () => {
      const r = await db.sql('SELECT id, embedding FROM ML_PREDICT(TABLE docs, MODEL emb, DESCRIPTOR(body)) ORDER BY id');
      const texts = DOCS.filter((d): d is string => d !== null && d !== '');
      const expected = reference({ dir: dirs.embedding, texts, task: 'embedding', maxLength: 32 }) as number[][];
      let k = 0;
      r.rows.forEach(([, embedding], i) => {
        if (DOCS[i] === null || DOCS[i] === '') expect(embedding).toBeNull();
        else expectClose(embedding, expected[k++]!);
      });
      expect(k).toBe(texts.length);
    });

    it('classifies with labels from id2label; INPUT/OUTPUT derived from the directory', async () => {
      const d = await db.sql('DESCRIBE MODEL sentiment');
      expect(d.rows.map((row) => [row[0], row[1]])).toEqual(expect.arrayContaining([['text', 'STRING'], ['label', 'STRING'], ['probabilities', 'ARRAY<FLOAT>']]));
      const r = await db.sql(`SELECT id, label, probabilities FROM ML_PREDICT(TABLE (SELECT id, body FROM docs WHERE body <> ''), MODEL sentiment, DESCRIPTOR(body)) ORDER BY id`);
      const texts = r.rows.map((row) => DOCS[Number(row[0])]!);
      const expected = reference({ dir: dirs.classification, texts, task: 'classification', maxLength: 32, labels: TEST_LABELS }) as { label: string; probabilities: number[] }[];
      r.rows.forEach((row, i) => {
        expect(row[1]).toBe(expected[i]!.label);
        expectClose(row[2], expected[i]!.probabilities);
      });
    });

    it("answers a rerun from the prediction cache with 'cache' = 'true', and reports progress", async () => {
      const events: ProgressEvent[] = [];
      const listener = (e: ProgressEvent): void => void events.push(e);
      db.events.on('progress', listener);
      try {
        const q = `SELECT id, embedding FROM ML_PREDICT(TABLE docs, MODEL emb, DESCRIPTOR(body), MAP['cache', 'true']) ORDER BY id`;
        const first = await db.sql(q);
        const second = await db.sql(q);
        expect(second.rows).toEqual(first.rows);
      } finally {
        db.events.off('progress', listener);
      }
      const runs = await db.sql(`SELECT cache_hits FROM ml_catalog.prediction_runs WHERE model_name = 'emb' AND cache_hits IS NOT NULL ORDER BY started_at`);
      expect(runs.rows.map((row) => Number(row[0]))).toEqual([0, DOCS.filter((d) => d !== null && d !== '').length]);
      expect(events.some((e) => e.finished && e.rowsDone === DOCS.length)).toBe(true);
    });

    it('refuses bad directories before anything runs, leaving the catalog as it was', async () => {
      const before = await db.sql('SHOW MODELS');
      const bad = join(dirs.root, 'no-tokenizer');
      writeTextModel(bad);
      rmSync(join(bad, 'tokenizer.json'));
      await expectSqlError(db.sql(`CREATE MODEL broken WITH ('provider' = 'onnx', 'path' = '${bad}')`), '58P01', /has no tokenizer\.json/);
      await expectSqlError(
        db.sql(`CREATE MODEL broken INPUT (text STRING) OUTPUT (label STRING) WITH ('provider' = 'onnx', 'path' = '${dirs.embedding}', 'task' = 'classification')`),
        '42804',
        /classification model needs/,
      );
      await expectSqlError(db.sql(`CREATE MODEL broken WITH ('provider' = 'onnx', 'path' = '${dirs.embedding}', 'pooling' = 'max')`), '22023', /'pooling'/);
      await expectSqlError(db.sql(`CREATE OR REPLACE MODEL emb WITH ('provider' = 'onnx', 'path' = '${bad}')`), '58P01');
      expect((await db.sql('SHOW MODELS')).rows).toEqual(before.rows);
      expect((await db.sql('SHOW MODEL VERSIONS emb')).rows).toHaveLength(1);
    });

    it('takes model directories only from the allowed directories', async () => {
      const locked = await adapter.open({ allowedDirectories: [join(dirs.root, 'elsewhere')] });
      try {
        await expectSqlError(locked.sql(`CREATE MODEL emb WITH ('provider' = 'onnx', 'path' = '${dirs.embedding}')`), '42501', /outside the allowed model directories/);
      } finally {
        await locked.close();
      }
      const allowed = await adapter.open({ allowedDirectories: [dirs.root] });
      try {
        await allowed.sql(`CREATE MODEL emb WITH ('provider' = 'onnx', 'path' = '${dirs.embedding}')`);
        const r = await allowed.sql(`SELECT embedding FROM ML_PREDICT(TABLE (SELECT 'the cat' AS t), MODEL emb, DESCRIPTOR(t))`);
        expectClose(r.rows[0]![0], (reference({ dir: dirs.embedding, texts: ['the cat'], task: 'embedding', maxLength: 32 }) as number[][])[0]!);
      } finally {
        await allowed.close();
      }
    });

    it('takes no file of a model directory over the largest model file allowed (maxModelBytes)', async () => {
      const largest = Math.max(...['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx'].map((f) => statSync(join(dirs.embedding, f)).size));
      const tight = await adapter.open({ maxModelBytes: largest - 1 });
      try {
        await expectSqlError(tight.sql(`CREATE MODEL emb WITH ('provider' = 'onnx', 'path' = '${dirs.embedding}')`), '54000', new RegExp(`is ${largest} bytes, over this server's limit of ${largest - 1} bytes`));
        expect((await tight.sql('SHOW MODELS')).rows).toEqual([]);
      } finally {
        await tight.close();
      }
      const exact = await adapter.open({ maxModelBytes: largest });
      try {
        await exact.sql(`CREATE MODEL emb WITH ('provider' = 'onnx', 'path' = '${dirs.embedding}')`);
        expect((await exact.sql(`SELECT count(embedding) FROM ML_PREDICT(TABLE (SELECT 'the cat' AS t), MODEL emb, DESCRIPTOR(t))`)).rows[0]![0]).toBe(1n);
      } finally {
        await exact.close();
      }
    });
  });
}
