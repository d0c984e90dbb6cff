/**
 * Local text models (SPEC §2.6) through SQL on every adapter: CREATE MODEL over a model
 * directory, ML_PREDICT embeddings and classifications checked against the independent
 * reference (test/support/text-reference.ts) to 1e-5, NULL and empty texts, the
 * prediction cache, progress, and bad directories that leave the catalog as it was.
 */
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { reference } from '../support/text-reference.js';
import { bertTokenizerJson, TEST_LABELS, TEST_VOCAB, writeTextModel, writeTextModels } from '../support/text-models.js';
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

    it("refuses malformed config.json values and a vocabulary past the graph's embedding table at CREATE MODEL, leaving the catalog as it was", async () => {
      const before = await db.sql('SHOW MODELS');
      const bad = join(dirs.root, `malformed-${adapter.name}`);
      writeTextModel(bad, { labels: TEST_LABELS });
      const config = JSON.parse(readFileSync(join(bad, 'config.json'), 'utf8')) as Record<string, unknown>;
      // config.json's length and padding count where tokenizer_config.json says neither.
      const { model_max_length: _length, pad_token: _pad, ...undecided } = JSON.parse(readFileSync(join(bad, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(bad, 'tokenizer_config.json'), JSON.stringify(undecided));
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ id2label: { 0: 'negative', '01': 'neutral', 2: 'positive' } }, /id2label must map the class indexes 0\.\.2 .* found "01"/],
        [{ max_position_embeddings: 1e300 }, /max_position_embeddings is 1e\+300; it must be an integer from 1 to 1048576/],
        [{ pad_token_id: TEST_VOCAB.length }, new RegExp(`pad_token_id is ${TEST_VOCAB.length}, not a token id of the vocabulary \\(0 to ${TEST_VOCAB.length - 1}\\)`)],
      ];
      for (const [values, message] of cases) {
        writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...config, ...values }));
        await expectSqlError(db.sql(`CREATE MODEL broken WITH ('provider' = 'onnx', 'path' = '${bad}')`), '22023', message);
        await expectSqlError(db.sql(`CREATE OR REPLACE MODEL sentiment WITH ('provider' = 'onnx', 'path' = '${bad}')`), '22023', message);
      }
      writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: 32 }));
      const json = bertTokenizerJson();
      const vocab = (json.model as { vocab: Record<string, number> }).vocab;
      writeFileSync(join(bad, 'tokenizer.json'), JSON.stringify({ ...json, model: { ...(json.model as object), vocab: { ...vocab, zzzz: TEST_VOCAB.length } } }));
      await expectSqlError(db.sql(`CREATE MODEL broken WITH ('provider' = 'onnx', 'path' = '${bad}')`), '42804', /token ids up to \d+, but the graph's embedding table "word_emb" has \d+ rows/);
      expect((await db.sql('SHOW MODELS')).rows).toEqual(before.rows);
      expect((await db.sql('SHOW MODEL VERSIONS sentiment')).rows).toHaveLength(1);
    });

    it("takes no JSON file of a model directory over maxModelJsonBytes (54000 naming the file and the limit); at the limit it loads", async () => {
      const largest = Math.max(...['config.json', 'tokenizer.json', 'tokenizer_config.json'].map((f) => statSync(join(dirs.embedding, f)).size));
      const tight = await adapter.open({ maxModelJsonBytes: largest - 1 });
      try {
        await expectSqlError(tight.sql(`CREATE MODEL emb WITH ('provider' = 'onnx', 'path' = '${dirs.embedding}')`), '54000', new RegExp(`tokenizer\\.json of the model directory ".*" is ${largest} bytes, over this server's limit of ${largest - 1} bytes for a model's JSON file \\(--max-model-json-bytes\\)`));
        expect((await tight.sql('SHOW MODELS')).rows).toEqual([]);
      } finally {
        await tight.close();
      }
      const exact = await adapter.open({ maxModelJsonBytes: largest });
      try {
        await exact.sql(`CREATE MODEL emb WITH ('provider' = 'onnx', 'path' = '${dirs.embedding}')`);
        expect((await exact.sql(`SELECT count(embedding) FROM ML_PREDICT(TABLE (SELECT 'the cat' AS t), MODEL emb, DESCRIPTOR(t))`)).rows[0]![0]).toBe(1n);
      } finally {
        await exact.close();
      }
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
