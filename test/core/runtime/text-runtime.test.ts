import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import type { ModelRuntime } from '../../../core/runtime/model-runtime.js';
import { MAX_JSON_DEPTH, parseModelFiles, readModelDirectory, readModelDirectoryFiles } from '../../../core/runtime/text/model-directory.js';
import { MAX_POSITION_EMBEDDINGS } from '../../../core/runtime/text/text-model.js';
import { DEFAULT_MODEL_JSON_BYTES } from '../../../core/runtime/onnx-model-loader.js';
import { checkTextModel, createTextRuntime } from '../../../core/runtime/text/text-runtime.js';
import { bertTokenizerJson, TEST_LABELS, TEST_VOCAB, writeTextModel, writeTextModels, type TextModelDirs } from '../../support/text-models.js';
import { expectSqlError } from '../../support/expect-error.js';
import { reference, referenceIds } from '../../support/text-reference.js';

const embeddingsOf = (dir: string, texts: readonly string[], options: { pooling?: 'mean' | 'cls'; normalize?: boolean; maxLength?: number } = {}): number[][] =>
  reference({ dir, texts, task: 'embedding', maxLength: options.maxLength ?? 32, pooling: options.pooling, normalize: options.normalize }) as number[][];
const classesOf = (dir: string, texts: readonly string[]): { label: string; probabilities: number[] }[] =>
  reference({ dir, texts, task: 'classification', maxLength: 32, labels: TEST_LABELS }) as { label: string; probabilities: number[] }[];


const TEXTS = [
  'the cat sat on the mat',
  'Hello, World!',
  'vector search in sql',
  'a',
  'postgres and duck data with the local model',
  'unknownwords zzz qqq',
  'the dog was very fast and not slow, the dog is good',
  'embedding texts',
  'Ünïcödé tèxt',
  'search',
];
/** Longer than the model's 32 tokens: truncated. */
const LONG = Array.from({ length: 60 }, (_, i) => ['the', 'cat', 'dog', 'sat'][i % 4]).join(' ');

let dirs: TextModelDirs;
const open: ModelRuntime[] = [];
beforeAll(() => {
  dirs = writeTextModels();
});
afterAll(() => rmSync(dirs.root, { recursive: true, force: true }));
afterEach(async () => {
  await Promise.all(open.splice(0).map((r) => r.close()));
});

async function runtimeFor(dir: string, options: [string, string][] = []): Promise<ModelRuntime> {
  const all: [string, string][] = [['provider', 'onnx'], ['path', dir], ...options];
  const { files, model } = await checkTextModel(dir, all, {});
  const runtime = await createTextRuntime(files, all, model.input, model.output);
  open.push(runtime);
  return runtime;
}

const expectClose = (actual: readonly number[], expected: readonly number[]): void => {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i]!)).toBeLessThanOrEqual(1e-5));
};

describe('local text models', () => {
  test('embeddings equal the reference (mean pooling), across length buckets and padding', async () => {
    const runtime = await runtimeFor(dirs.embedding);
    const texts = [...TEXTS, LONG, ...TEXTS.map((t) => `${t} ${t}`)];
    const out = await runtime.predictBatch({ rowCount: texts.length, columns: [{ kind: 'value', values: texts }] });
    const expected = embeddingsOf(dirs.embedding, texts);
    for (let i = 0; i < texts.length; i++) expectClose(out.columns[0]!.values[i] as number[], expected[i]!);
  });

  test('CLS pooling and normalization from options', async () => {
    const runtime = await runtimeFor(dirs.embedding, [['pooling', 'cls'], ['normalize', 'true']]);
    const out = await runtime.predictBatch({ rowCount: TEXTS.length, columns: [{ kind: 'value', values: TEXTS }] });
    const expected = embeddingsOf(dirs.embedding, TEXTS, { pooling: 'cls', normalize: true });
    for (let i = 0; i < TEXTS.length; i++) {
      const v = out.columns[0]!.values[i] as number[];
      expectClose(v, expected[i]!);
      expect(Math.abs(Math.hypot(...v) - 1)).toBeLessThan(1e-5);
    }
  });

  test('classification: label from id2label and softmax probabilities', async () => {
    const runtime = await runtimeFor(dirs.classification);
    const out = await runtime.predictBatch({ rowCount: TEXTS.length, columns: [{ kind: 'value', values: TEXTS }] });
    const all = classesOf(dirs.classification, TEXTS);
    const labels = new Set<string>();
    for (let i = 0; i < TEXTS.length; i++) {
      const expected = all[i]!;
      expect(out.columns[0]!.values[i]).toBe(expected.label);
      expectClose(out.columns[1]!.values[i] as number[], expected.probabilities);
      labels.add(expected.label);
    }
    expect(labels.size).toBeGreaterThan(1);
  });

  test('NULL and empty texts give NULL outputs; the others are answered in order', async () => {
    const runtime = await runtimeFor(dirs.embedding);
    const values = [null, 'the cat', '', 'sql', null];
    const out = await runtime.predictBatch({ rowCount: 5, columns: [{ kind: 'value', values }] });
    const expected = embeddingsOf(dirs.embedding, ['the cat', 'sql']);
    expect(out.columns[0]!.values[0]).toBeNull();
    expect(out.columns[0]!.values[2]).toBeNull();
    expect(out.columns[0]!.values[4]).toBeNull();
    expectClose(out.columns[0]!.values[1] as number[], expected[0]!);
    expectClose(out.columns[0]!.values[3] as number[], expected[1]!);
    const none = await runtime.predictBatch({ rowCount: 2, columns: [{ kind: 'value', values: [null, ''] }] });
    expect(none.columns).toHaveLength(1);
    expect(none.columns[0]!.values).toEqual([null, null]);
  });

  test('max-length truncates earlier', async () => {
    const runtime = await runtimeFor(dirs.embedding, [['max-length', '8']]);
    const out = await runtime.predictBatch({ rowCount: 1, columns: [{ kind: 'value', values: [LONG] }] });
    expectClose(out.columns[0]!.values[0] as number[], embeddingsOf(dirs.embedding, [LONG], { maxLength: 8 })[0]!);
    const files = await readModelDirectory(dirs.embedding);
    expect(referenceIds(new Tokenizer(files.tokenizer, files.tokenizerConfig), LONG, 8)).toEqual([2, 5, 7, 8, 9, 5, 7, 3]);
  });
});

describe('bad model directories fail before any inference', () => {
  let bad: string;
  beforeEach(() => {
    bad = mkdtempSync(join(tmpdir(), 'modelsql-bad-text-'));
  });
  afterEach(() => rmSync(bad, { recursive: true, force: true }));

  test('no tokenizer.json', async () => {
    writeTextModel(bad);
    rmSync(join(bad, 'tokenizer.json'));
    await expectSqlError(checkTextModel(bad, [], {}), '58P01', /has no tokenizer\.json/);
  });

  test('no graph', async () => {
    writeTextModel(bad);
    rmSync(join(bad, 'onnx'), { recursive: true });
    await expectSqlError(checkTextModel(bad, [], {}), '58P01', /no ONNX graph/);
  });

  test('unsupported tokenizer type', async () => {
    writeTextModel(bad);
    const json = bertTokenizerJson();
    writeFileSync(join(bad, 'tokenizer.json'), JSON.stringify({ ...json, model: { ...(json.model as object), type: 'WordLevel' } }));
    await expectSqlError(checkTextModel(bad, [], {}), '0A000', /unsupported tokenizer type 'WordLevel'/);
  });

  test('unknown tokenizer component', async () => {
    writeTextModel(bad);
    writeFileSync(join(bad, 'tokenizer.json'), JSON.stringify({ ...bertTokenizerJson(), normalizer: { type: 'Mystery' } }));
    await expectSqlError(checkTextModel(bad, [], {}), '0A000', /Mystery/);
  });

  test(`JSON nested deeper than ${MAX_JSON_DEPTH} levels is refused with 22P02 (once, a RangeError at the first ML_PREDICT); at the limit it runs`, async () => {
    writeTextModel(bad);
    const json = JSON.stringify(bertTokenizerJson());
    // tokenizer.json's own nesting is 3 levels; "x" adds the rest (brackets in strings do not count).
    const nested = (levels: number) => `${json.slice(0, -1)},"s":"[[[{{{\\"[[","x":${'['.repeat(levels - 1)}${']'.repeat(levels - 1)}}`;
    writeFileSync(join(bad, 'tokenizer.json'), nested(MAX_JSON_DEPTH));
    const out = await (await runtimeFor(bad)).predictBatch({ rowCount: 1, columns: [{ kind: 'value', values: ['a deep file'] }] });
    expect(out.rowCount).toBe(1);
    writeFileSync(join(bad, 'tokenizer.json'), nested(MAX_JSON_DEPTH + 1));
    await expectSqlError(checkTextModel(bad, [], {}), '22P02', new RegExp(`tokenizer.json of the model directory ".*" nests ${MAX_JSON_DEPTH + 1} levels deep, more than the ${MAX_JSON_DEPTH}`));
    writeFileSync(join(bad, 'tokenizer.json'), nested(100_000));
    await expectSqlError(checkTextModel(bad, [], {}), '22P02', /nests 100000 levels deep/);
  });

  test(`JSON files over maxModelJsonBytes (default ${DEFAULT_MODEL_JSON_BYTES}) are refused with 54000 naming the file and the limit, before they are read; at the limit they load`, async () => {
    writeTextModel(bad);
    const names = ['tokenizer.json', 'config.json', 'tokenizer_config.json'];
    for (const name of names) {
      // This file, padded with spaces, is the directory's largest JSON file.
      const largest = Math.max(...names.map((n) => statSync(join(bad, n)).size));
      writeFileSync(join(bad, name), readFileSync(join(bad, name), 'utf8').trimEnd() + ' '.repeat(largest + 100 - statSync(join(bad, name)).size));
      const size = statSync(join(bad, name)).size;
      const model = await checkTextModel(bad, [], { maxModelJsonBytes: size });
      expect(model.model.spec.maxLength).toBe(32);
      await expectSqlError(checkTextModel(bad, [], { maxModelJsonBytes: size - 1 }), '54000', new RegExp(`^${name.replace('.', '\\.')} of the model directory ".*" is ${size} bytes, over this server's limit of ${size - 1} bytes for a model's JSON file \\(--max-model-json-bytes\\)`));
    }
    // Files held in the catalog are held to the same limit.
    const files = await readModelDirectoryFiles(bad);
    const size = files.get('tokenizer.json')!.byteLength;
    await expectSqlError(parseModelFiles(async (name) => files.get(name), 'the model directory held in the catalog', { maxModelJsonBytes: size - 1 }), '54000', /^tokenizer\.json of the model directory held in the catalog is \d+ bytes, over this server's limit/);
    // The default: a tokenizer.json of exactly 64 MiB (padded with spaces) loads; one byte more is refused by its size alone.
    const json = JSON.stringify(bertTokenizerJson());
    writeFileSync(join(bad, 'tokenizer.json'), json + ' '.repeat(DEFAULT_MODEL_JSON_BYTES - json.length));
    expect((await readModelDirectory(bad)).tokenizer.model).toBeDefined();
    writeFileSync(join(bad, 'tokenizer.json'), json + ' '.repeat(DEFAULT_MODEL_JSON_BYTES + 1 - json.length));
    await expectSqlError(readModelDirectory(bad), '54000', new RegExp(`tokenizer\\.json of the model directory ".*" is ${DEFAULT_MODEL_JSON_BYTES + 1} bytes, over this server's limit of ${DEFAULT_MODEL_JSON_BYTES} bytes`));
  });

  test('a file of the directory that is a device or a pipe (its size says nothing; /dev/zero never ends) is 58030, read not at all', async () => {
    writeTextModel(bad);
    rmSync(join(bad, 'config.json'));
    symlinkSync('/dev/zero', join(bad, 'config.json'));
    await expectSqlError(readModelDirectory(bad), '58030', /^config\.json of the model directory ".*" is not a regular file$/);
    rmSync(join(bad, 'config.json'));
    execFileSync('mkfifo', [join(bad, 'config.json')]);
    await expectSqlError(readModelDirectory(bad), '58030', /is not a regular file/);
    rmSync(join(bad, 'config.json'));
  });

  test("token ids past the graph's embedding table are refused with 42804 before the tokenizer is built; up to its last row they run", async () => {
    writeTextModel(bad);
    const json = bertTokenizerJson();
    const vocab = (json.model as { vocab: Record<string, number> }).vocab;
    const withToken = (id: number) => ({ ...json, model: { ...(json.model as object), vocab: { ...vocab, zzzz: id } } });
    // The table has one row per token of TEST_VOCAB: the last id is TEST_VOCAB.length - 1.
    writeFileSync(join(bad, 'tokenizer.json'), JSON.stringify(withToken(TEST_VOCAB.length - 1)));
    const out = await (await runtimeFor(bad)).predictBatch({ rowCount: 1, columns: [{ kind: 'value', values: ['zzzz the cat'] }] });
    expect(out.columns[0]!.values[0]).toHaveLength(16);
    writeFileSync(join(bad, 'tokenizer.json'), JSON.stringify(withToken(TEST_VOCAB.length)));
    await expectSqlError(checkTextModel(bad, [], {}), '42804', new RegExp(`tokenizer\\.json has token ids up to ${TEST_VOCAB.length}, but the graph's embedding table "word_emb" has ${TEST_VOCAB.length} rows`));
    // An added token past it too; and a vocabulary of 300,000 tokens for a graph of ${TEST_VOCAB.length} rows (once: 49 s of tokenizing, then an ONNX "Gather out of bounds").
    writeFileSync(join(bad, 'tokenizer.json'), JSON.stringify({ ...json, added_tokens: [...(json.added_tokens as object[]), { id: 5000, content: '<x>', special: true }] }));
    await expectSqlError(checkTextModel(bad, [], {}), '42804', /token ids up to 5000/);
    const big: Record<string, number> = { ...vocab };
    for (let i = TEST_VOCAB.length; i < 300_000; i++) big[`t${i}`] = i;
    writeFileSync(join(bad, 'tokenizer.json'), JSON.stringify({ ...json, model: { ...(json.model as object), vocab: big } }));
    await expectSqlError(checkTextModel(bad, [], {}), '42804', /token ids up to 299999, but the graph's embedding table "word_emb" has/);
    // Ids that are not non-negative integers.
    for (const id of [-1, 1.5, '3']) {
      writeFileSync(join(bad, 'tokenizer.json'), JSON.stringify(withToken(id as number)));
      await expectSqlError(checkTextModel(bad, [], {}), '22023', /tokenizer\.json's vocabulary gives the token "zzzz" the id .*; token ids are non-negative integers/);
    }
  });

  test("config.json: id2label keys must be the class indexes 0..n-1 written plainly (22023 naming the key)", async () => {
    writeTextModel(bad, { labels: TEST_LABELS });
    const config = JSON.parse(readFileSync(join(bad, 'config.json'), 'utf8')) as Record<string, unknown>;
    const withLabels = (id2label: unknown) => writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...config, id2label }));
    for (const key of ['00', '1.0', '-1', ' 1', '1e0', '+1', '0x1', '3']) {
      withLabels({ 0: 'negative', [key]: 'neutral', 2: 'positive' });
      await expectSqlError(checkTextModel(bad, [], {}), '22023', new RegExp(`id2label must map the class indexes 0\\.\\.2 .* found ${JSON.stringify(key).replace(/[.+]/g, '\\$&')}: "neutral"`));
    }
    withLabels({ 0: 'negative', 1: 'neutral', 2: 7 });
    await expectSqlError(checkTextModel(bad, [], {}), '22023', /found "2": 7/);
    withLabels(['negative', 'neutral', 'positive']);
    await expectSqlError(checkTextModel(bad, [], {}), '22023', /id2label is not an object/);
    withLabels({ 2: 'positive', 0: 'negative', 1: 'neutral' });
    expect((await checkTextModel(bad, [], {})).model.spec.labels).toEqual(['negative', 'neutral', 'positive']);
  });

  test(`config.json: max_position_embeddings is an integer from 1 to ${MAX_POSITION_EMBEDDINGS}, pad_token_id a token id of the vocabulary (22023)`, async () => {
    writeTextModel(bad);
    const config = JSON.parse(readFileSync(join(bad, 'config.json'), 'utf8')) as Record<string, unknown>;
    const withConfig = (values: Record<string, unknown>) => writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...config, ...values }));
    // config.json's length and padding count (and are checked) where tokenizer_config.json says neither.
    const tokenizerConfig = JSON.parse(readFileSync(join(bad, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    const { model_max_length: _length, pad_token: _pad, ...undecided } = tokenizerConfig;
    writeFileSync(join(bad, 'tokenizer_config.json'), JSON.stringify(undecided));
    for (const value of [1e300, MAX_POSITION_EMBEDDINGS + 1, 0, -512, 512.5, '512', true]) {
      withConfig({ max_position_embeddings: value });
      await expectSqlError(checkTextModel(bad, [], {}), '22023', new RegExp(`max_position_embeddings is ${String(JSON.stringify(value)).replace(/[.+"]/g, '\\$&')}; it must be an integer from 1 to ${MAX_POSITION_EMBEDDINGS}`));
    }
    for (const [value, length] of [[MAX_POSITION_EMBEDDINGS, MAX_POSITION_EMBEDDINGS], [null, 512]] as const) {
      withConfig({ max_position_embeddings: value });
      expect((await checkTextModel(bad, [], {})).model.spec.maxLength).toBe(length);
    }
    withConfig({ max_position_embeddings: 32 });
    const last = TEST_VOCAB.length - 1;
    for (const value of [last + 1, -1, 0.5, '0', 1e300]) {
      withConfig({ pad_token_id: value });
      await expectSqlError(checkTextModel(bad, [], {}), '22023', new RegExp(`config\\.json's pad_token_id is .*, not a token id of the vocabulary \\(0 to ${last}\\)`));
    }
    for (const value of [last, null]) {
      withConfig({ pad_token_id: value });
      await checkTextModel(bad, [], {});
    }
    withConfig({ pad_token_id: 0 });
    writeFileSync(join(bad, 'tokenizer.json'), JSON.stringify({ ...bertTokenizerJson(), padding: { pad_id: last + 1, pad_token: '[PAD]' } }));
    await expectSqlError(checkTextModel(bad, [], {}), '22023', new RegExp(`tokenizer\\.json's padding\\.pad_id is ${last + 1}, not a token id`));
    // A value another decides over is not read: config.json's pad_token_id behind the tokenizer's own (-1 in some exports),
    // max_position_embeddings behind tokenizer_config.json's model_max_length.
    writeFileSync(join(bad, 'tokenizer.json'), JSON.stringify({ ...bertTokenizerJson(), padding: { pad_id: 0, pad_token: '[PAD]' } }));
    writeFileSync(join(bad, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
    withConfig({ pad_token_id: -1, max_position_embeddings: 1e300 });
    const decided = (await checkTextModel(bad, [], {})).model.spec;
    expect([decided.padId, decided.maxLength]).toEqual([0, 32]);
  });

  test('graph inputs that are not input_ids / attention_mask / token_type_ids', async () => {
    writeTextModel(bad, { inputNames: ['ids', 'attention_mask'] });
    await expectSqlError(checkTextModel(bad, [], {}), '42804', /graph input ids int64\[N,T\] is not one of input_ids, attention_mask, token_type_ids/);
  });

  test('bad options and columns', async () => {
    writeTextModel(bad);
    await expectSqlError(checkTextModel(bad, [['pooling', 'max']], {}), '22023', /'pooling' is 'mean' or 'cls'/);
    await expectSqlError(checkTextModel(bad, [['max-length', '64']], {}), '22023', /more than the model's maximum length 32/);
    await expectSqlError(checkTextModel(bad, [['task', 'classification']], {}), '42804', /classification model needs/);
    await expectSqlError(checkTextModel(bad, [], {}, [{ name: 'x', type: 'INT' }], [{ name: 'e', type: 'ARRAY<FLOAT>' }]), '42804', /one STRING INPUT column/);
    await expectSqlError(checkTextModel(bad, [], {}, [{ name: 'x', type: 'STRING' }], [{ name: 'e', type: 'STRING' }]), '42804', /one ARRAY<FLOAT> OUTPUT column/);
  });

  test("a graph that gives another number of classes than config.json's id2label fails the batch, naming both", async () => {
    writeTextModel(bad, { labels: TEST_LABELS, symbolicClasses: true });
    const config = JSON.parse(readFileSync(join(bad, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(bad, 'config.json'), JSON.stringify({ ...config, id2label: { 0: 'negative', 1: 'positive' } }));
    // The graph does not say how many classes it gives: CREATE MODEL cannot tell, the first batch does.
    const runtime = await runtimeFor(bad);
    await expectSqlError(runtime.predictBatch({ rowCount: 1, columns: [{ kind: 'value', values: ['the cat'] }] }), '38000', /the graph gave 3 classes, but config\.json's id2label has 2 labels/);
  });

  test('outside the allowed model directories', async () => {
    writeTextModel(bad);
    await expectSqlError(checkTextModel(bad, [], { allowedDirectories: [dirs.root] }), '42501');
    await expectSqlError(checkTextModel(bad, [], { allowedDirectories: [] }), '42501');
  });
});
