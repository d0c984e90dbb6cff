import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ModelSqlError } from '../../../core/errors.js';
import { bindOnnxSignature, defaultSignatureFor, inspectOnnx, isUrlAllowed, loadModelBytes } from '../../../core/runtime/onnx-model.js';
import type { OnnxSignature } from '../../../core/runtime/onnx-model.js';
import {
  linearClassifierModel,
  linearRegressorModel,
  multiInputModel,
  treeEnsembleRegressorModel,
  typedColumnsModel,
} from '../../support/onnx-models.js';
import type { ModelColumn } from '../../../core/model-types.js';

const cols = (spec: string): ModelColumn[] =>
  spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const [name, ...type] = s.split(' ');
      return { name: name as string, type: type.join(' ') };
    });

async function expectSqlError(promise: Promise<unknown> | (() => unknown), sqlstate: string, pattern: RegExp): Promise<void> {
  let error: unknown;
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ModelSqlError);
  expect((error as ModelSqlError).sqlstate).toBe(sqlstate);
  expect((error as ModelSqlError).message).toMatch(pattern);
}

describe('inspectOnnx', () => {
  test('lists inputs and outputs with element types and symbolic dims', async () => {
    expect(await inspectOnnx(linearRegressorModel([1, 2, 3], 0))).toEqual({
      inputs: [{ name: 'x', elementType: 'float32', shape: ['N', 3] }],
      outputs: [{ name: 'y', elementType: 'float32', shape: ['N', 1] }],
    });
    const cls = await inspectOnnx(linearClassifierModel([[1, 0], [0, 1]], [0, 0], ['a', 'b']));
    expect(cls.outputs).toEqual([
      { name: 'label', elementType: 'string', shape: ['N'] },
      { name: 'probabilities', elementType: 'float32', shape: ['N', 2] },
    ]);
    const typed = await inspectOnnx(typedColumnsModel());
    expect(typed.inputs.map((i) => i.elementType)).toEqual(['float64', 'int64', 'int32', 'string', 'bool']);
  });

  test('corrupt or non-ONNX bytes are a clear 22P03 error, not a crash', async () => {
    await expectSqlError(inspectOnnx(new Uint8Array(0)), '22P03', /invalid ONNX model.*empty/);
    await expectSqlError(inspectOnnx(new TextEncoder().encode('this is not an onnx model')), '22P03', /invalid ONNX model/);
    await expectSqlError(inspectOnnx(Uint8Array.from({ length: 1000 }, (_, i) => (i * 7919) % 256)), '22P03', /invalid ONNX model/);
    const valid = linearRegressorModel([1, 2], 0);
    await expectSqlError(inspectOnnx(valid.slice(0, valid.length - 20)), '22P03', /invalid ONNX model/);
  });
});

describe('bindOnnxSignature', () => {
  let linear3: OnnxSignature;
  let classifier: OnnxSignature;
  let multi: OnnxSignature;
  let typed: OnnxSignature;
  beforeAll(async () => {
    linear3 = await inspectOnnx(linearRegressorModel([1, 2, 3], 0));
    classifier = await inspectOnnx(linearClassifierModel([[1, 0], [0, 1], [1, 1]], [0, 0, 0], [0, 1, 2]));
    multi = await inspectOnnx(multiInputModel());
    typed = await inspectOnnx(typedColumnsModel());
  });

  test('one [N,k] input is fed with the INPUT columns in order', () => {
    const b = bindOnnxSignature(linear3, cols('a DOUBLE, b INT, c BIGINT'), cols('prediction DOUBLE'));
    expect(b.input).toEqual({ mode: 'matrix', tensor: 'x', elementType: 'float32', width: 3 });
    expect(b.inputKinds).toEqual(['number', 'number', 'number']);
    expect(b.outputs).toEqual([{ column: 'prediction', tensor: 'y', elementType: 'float32', shape: 'scalar', valueKind: 'number' }]);
  });

  test('wrong k names the model input', async () => {
    await expectSqlError(() => bindOnnxSignature(linear3, cols('a DOUBLE, b DOUBLE'), cols('y DOUBLE')), '42804', /x float32\[N,3\] takes 3 features per row but 2 INPUT columns/);
  });

  test('a STRING column cannot feed a float matrix', async () => {
    await expectSqlError(() => bindOnnxSignature(linear3, cols('a DOUBLE, b STRING, c DOUBLE'), cols('y DOUBLE')), '42804', /INPUT column b STRING cannot feed/);
  });

  test('per-column tensors are matched by name, in any order', () => {
    const b = bindOnnxSignature(multi, cols('b FLOAT, a DOUBLE'), cols('y DOUBLE'));
    expect(b.input).toEqual({
      mode: 'columns',
      feeds: [
        { tensor: 'b', elementType: 'float32', rank: 2 },
        { tensor: 'a', elementType: 'float32', rank: 2 },
      ],
    });
    const t = bindOnnxSignature(typed, cols('flag BOOLEAN, s STRING, j INT, i BIGINT, d DOUBLE'), cols('d2 DOUBLE'));
    expect(t.inputKinds).toEqual(['value', 'value', 'number', 'number', 'number']);
  });

  test('per-column errors: unknown name, unfed tensor, string vs number', async () => {
    await expectSqlError(() => bindOnnxSignature(multi, cols('a DOUBLE, c DOUBLE'), cols('y DOUBLE')), '42804', /INPUT column c matches no model input.*inputs \(a float32\[N,1\], b float32\[N,1\]\)/);
    await expectSqlError(() => bindOnnxSignature(multi, cols('a DOUBLE'), cols('y DOUBLE')), '42804', /model inputs b are fed by no INPUT column/);
    await expectSqlError(() => bindOnnxSignature(multi, cols('a STRING, b DOUBLE'), cols('y DOUBLE')), '42804', /INPUT column a STRING cannot feed the float32 model input/);
    await expectSqlError(() => bindOnnxSignature(typed, cols('d DOUBLE, i BIGINT, j INT, s DOUBLE, flag BOOLEAN'), cols('d2 DOUBLE')), '42804', /INPUT column s DOUBLE cannot feed the string model input/);
  });

  test('outputs by name ignore extra model outputs; by position otherwise', () => {
    const byName = bindOnnxSignature(classifier, cols('a DOUBLE, b DOUBLE'), cols('probabilities ARRAY<FLOAT>'));
    expect(byName.outputs).toEqual([{ column: 'probabilities', tensor: 'probabilities', elementType: 'float32', shape: 'array', valueKind: 'number' }]);
    const byPosition = bindOnnxSignature(classifier, cols('a DOUBLE, b DOUBLE'), cols('cls BIGINT, probs ARRAY<DOUBLE>'));
    expect(byPosition.outputs.map((o) => [o.column, o.tensor, o.shape])).toEqual([
      ['cls', 'label', 'scalar'],
      ['probs', 'probabilities', 'array'],
    ]);
  });

  test('output shape mismatches', async () => {
    await expectSqlError(() => bindOnnxSignature(classifier, cols('a DOUBLE, b DOUBLE'), cols('probabilities DOUBLE')), '42804', /probabilities float32\[N,3\], which has 3 values per row; declare it ARRAY<FLOAT>/);
    await expectSqlError(() => bindOnnxSignature(classifier, cols('a DOUBLE, b DOUBLE'), cols('label ARRAY<FLOAT>')), '42804', /label int64\[N\], which has one value per row, not an array/);
  });

  test('numeric vs string outputs', async () => {
    const strings = await inspectOnnx(linearClassifierModel([[1, 0], [0, 1]], [0, 0], ['cat', 'dog']));
    expect(bindOnnxSignature(strings, cols('a DOUBLE, b DOUBLE'), cols('label STRING')).outputs[0]?.valueKind).toBe('string');
    await expectSqlError(() => bindOnnxSignature(strings, cols('a DOUBLE, b DOUBLE'), cols('label BIGINT')), '42804', /OUTPUT column label BIGINT cannot hold the string model output/);
    await expectSqlError(() => bindOnnxSignature(classifier, cols('a DOUBLE, b DOUBLE'), cols('label STRING')), '42804', /OUTPUT column label STRING cannot hold the int64 model output/);
  });

  test('more OUTPUT columns than model outputs', async () => {
    await expectSqlError(() => bindOnnxSignature(linear3, cols('a DOUBLE, b DOUBLE, c DOUBLE'), cols('y DOUBLE, z DOUBLE')), '42804', /2 OUTPUT columns are declared .* only 1 outputs/);
  });

  test('a model with no inputs is an error', async () => {
    await expectSqlError(() => bindOnnxSignature({ inputs: [], outputs: linear3.outputs }, cols('a DOUBLE'), cols('y DOUBLE')), '42804', /no inputs/);
  });
});

describe('defaultSignatureFor', () => {
  test('[N,k] input gives x0..x{k-1}; outputs by tensor name', async () => {
    const sig = await inspectOnnx(linearClassifierModel([[1, 0, 0], [0, 1, 0]], [0, 0], [0, 1]));
    expect(defaultSignatureFor(sig)).toEqual({
      inputs: cols('x0 DOUBLE, x1 DOUBLE, x2 DOUBLE'),
      outputs: cols('label BIGINT, probabilities ARRAY<FLOAT>'),
    });
  });

  test('per-tensor inputs keep their names and types', async () => {
    const sig = await inspectOnnx(typedColumnsModel());
    expect(defaultSignatureFor(sig).inputs).toEqual(cols('d DOUBLE, i BIGINT, j INT, s STRING, flag BOOLEAN'));
    expect(defaultSignatureFor(await inspectOnnx(treeEnsembleRegressorModel())).outputs).toEqual(cols('y FLOAT'));
  });
});

describe('loadModelBytes', () => {
  let dir: string;
  let cacheDir: string;
  const bytes = linearRegressorModel([1, 2], 3);
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'modelsql-onnx-'));
    cacheDir = path.join(dir, 'cache');
    await mkdir(path.join(dir, 'allowed'));
    await mkdir(path.join(dir, 'other'));
    await writeFile(path.join(dir, 'allowed', 'm.onnx'), bytes);
    await writeFile(path.join(dir, 'other', 'secret.onnx'), bytes);
    await symlink(path.join(dir, 'other', 'secret.onnx'), path.join(dir, 'allowed', 'link.onnx'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('reads a local file, absolute or relative to the cwd', async () => {
    expect(await loadModelBytes(path.join(dir, 'allowed', 'm.onnx'), { cacheDir })).toEqual(bytes);
    expect(await loadModelBytes(path.relative(process.cwd(), path.join(dir, 'allowed', 'm.onnx')), { cacheDir })).toEqual(bytes);
  });

  test('a missing file names the path (58P01)', async () => {
    await expectSqlError(loadModelBytes(path.join(dir, 'nope.onnx'), { cacheDir }), '58P01', /model file ".*nope\.onnx" does not exist/);
  });

  test('allowed directories: inside is read, outside and symlinks out are refused (42501)', async () => {
    const allowedDirectories = [path.join(dir, 'allowed')];
    expect(await loadModelBytes(path.join(dir, 'allowed', 'm.onnx'), { cacheDir, allowedDirectories })).toEqual(bytes);
    await expectSqlError(loadModelBytes(path.join(dir, 'other', 'secret.onnx'), { cacheDir, allowedDirectories }), '42501', /outside the allowed model directories/);
    await expectSqlError(loadModelBytes(path.join(dir, 'allowed', '..', 'other', 'secret.onnx'), { cacheDir, allowedDirectories }), '42501', /outside/);
    await expectSqlError(loadModelBytes(path.join(dir, 'allowed', 'link.onnx'), { cacheDir, allowedDirectories }), '42501', /outside/);
    await expectSqlError(loadModelBytes(path.join(dir, 'other', 'missing.onnx'), { cacheDir, allowedDirectories }), '42501', /outside/);
    await expectSqlError(loadModelBytes(path.join(dir, 'allowed', 'm.onnx'), { cacheDir, allowedDirectories: [] }), '42501', /disabled/);
  });

  describe('URLs', () => {
    let server: http.Server;
    let base: string;
    const hits = new Map<string, number>();
    beforeAll(async () => {
      server = http.createServer((req, res) => {
        const url = req.url ?? '';
        hits.set(url, (hits.get(url) ?? 0) + 1);
        if (url === '/models/m.onnx' || url === '/models/m2.onnx') {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          res.end(Buffer.from(bytes));
        } else if (url === '/models/redirect.onnx') {
          res.writeHead(302, { location: '/models/m2.onnx' });
          res.end();
        } else if (url === '/models/escape.onnx') {
          res.writeHead(302, { location: '/private/m.onnx' });
          res.end();
        } else {
          res.writeHead(404, 'Not Found');
          res.end('no such model');
        }
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    test('downloads once, then serves the content-hash cache', async () => {
      const first = await loadModelBytes(`${base}/models/m.onnx`, { cacheDir });
      expect(first).toEqual(bytes);
      expect(hits.get('/models/m.onnx')).toBe(1);
      const second = await loadModelBytes(`${base}/models/m.onnx`, { cacheDir });
      expect(second).toEqual(bytes);
      expect(hits.get('/models/m.onnx')).toBe(1);
      const { createHash } = await import('node:crypto');
      const hash = createHash('sha256').update(bytes).digest('hex');
      const { readFile } = await import('node:fs/promises');
      expect(new Uint8Array(await readFile(path.join(cacheDir, `${hash}.onnx`)))).toEqual(bytes);
      expect(JSON.parse(await readFile(path.join(cacheDir, 'index.json'), 'utf8'))).toMatchObject({ [`${base}/models/m.onnx`]: hash });
    });

    test('HTTP errors carry the status', async () => {
      await expectSqlError(loadModelBytes(`${base}/models/missing.onnx`, { cacheDir }), '58030', /HTTP 404/);
    });

    test('unreachable hosts are a clear error', async () => {
      const closed = http.createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      await expectSqlError(loadModelBytes(`http://127.0.0.1:${port}/m.onnx`, { cacheDir }), '58030', /could not download model/);
    });

    test('allowed URL prefixes, checked on every redirect hop', async () => {
      const allowedUrlPrefixes = [`${base}/models/`];
      expect(await loadModelBytes(`${base}/models/redirect.onnx`, { cacheDir, allowedUrlPrefixes })).toEqual(bytes);
      await expectSqlError(loadModelBytes(`${base}/private/m.onnx`, { cacheDir, allowedUrlPrefixes }), '42501', /outside the allowed endpoints/);
      await expectSqlError(loadModelBytes(`${base}/models/escape.onnx`, { cacheDir, allowedUrlPrefixes }), '42501', /outside the allowed endpoints/);
      expect(hits.get('/private/m.onnx')).toBeUndefined();
      // a cached URL outside the allow-list is still refused
      await expectSqlError(loadModelBytes(`${base}/models/m.onnx`, { cacheDir, allowedUrlPrefixes: [] }), '42501', /disabled/);
    });
  });

  test('isUrlAllowed compares parsed URLs, not raw prefixes', () => {
    const prefixes = ['https://models.example.com/public'];
    expect(isUrlAllowed('https://models.example.com/public/m.onnx', prefixes)).toBe(true);
    expect(isUrlAllowed('https://models.example.com/public', prefixes)).toBe(true);
    expect(isUrlAllowed('https://models.example.com/publicity/m.onnx', prefixes)).toBe(false);
    expect(isUrlAllowed('https://models.example.com.evil.test/public/m.onnx', prefixes)).toBe(false);
    expect(isUrlAllowed('http://models.example.com/public/m.onnx', prefixes)).toBe(false);
    expect(isUrlAllowed('https://user:pw@models.example.com/public/m.onnx', prefixes)).toBe(false);
    expect(isUrlAllowed('https://models.example.com:8443/public/m.onnx', prefixes)).toBe(false);
    expect(isUrlAllowed('https://models.example.com/any', ['https://models.example.com'])).toBe(true);
  });
});
