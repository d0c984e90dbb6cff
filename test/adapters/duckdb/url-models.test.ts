/**
 * An ONNX model given by an http(s) URL is downloaded once, cached by content hash, and
 * used from the cache afterwards; allow-lists refuse other places.
 */
import { readFileSync, mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDuckDB } from '../../../adapters/duckdb/index.js';
import { expectSqlError } from '../../support/expect-error.js';
import { linearExpected, writeModelFiles } from '../../support/model-files.js';

const files = writeModelFiles();

describe('ONNX models from URLs on DuckDB', () => {
  let server: Server;
  let requests = 0;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      if (req.url === '/linear.onnx') res.end(readFileSync(files.linear));
      else res.writeHead(404).end('not found');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('downloads once and predicts from the cache, in this session and the next', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'modelsql-cache-'));
    const db = await openDuckDB(undefined, { cacheDir });
    await db.sql(`CREATE MODEL web INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${base}/linear.onnx')`);
    const r = await db.sql('SELECT y FROM ML_PREDICT(TABLE (SELECT 1.0 AS a, 2.0 AS b), MODEL web, DESCRIPTOR(a, b))');
    expect(r.rows[0]![0]).toBeCloseTo(linearExpected(1, 2), 4);
    await db.close();
    const again = await openDuckDB(undefined, { cacheDir });
    await again.sql(`CREATE MODEL web INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${base}/linear.onnx')`);
    await again.sql('SELECT y FROM ML_PREDICT(TABLE (SELECT 1.0 AS a, 2.0 AS b), MODEL web, DESCRIPTOR(a, b))');
    await again.close();
    expect(requests).toBe(1);
  });

  it("checks the 'sha256' option and the model size limit at CREATE: a refused model is not in the catalog", async () => {
    const { createHash } = await import('node:crypto');
    const bytes = readFileSync(files.linear);
    const good = createHash('sha256').update(bytes).digest('hex');
    const create = (name: string, extra: string) => `CREATE MODEL ${name} INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${base}/linear.onnx'${extra})`;
    const db = await openDuckDB(undefined, { cacheDir: mkdtempSync(join(tmpdir(), 'modelsql-cache-')) });
    try {
      await expectSqlError(db.sql(create('bad', `, 'sha256' = '${'0'.repeat(64)}'`)), '58030', new RegExp(`has SHA-256 ${good}, not the 0{64}`));
      await expectSqlError(db.sql(create('bad', `, 'sha256' = 'abc'`)), '22023', /option 'sha256' must be 64 hexadecimal digits/);
      expect((await db.sql('SHOW MODELS')).rows).toEqual([]);
      await db.sql(create('pinned', `, 'sha256' = '${good}'`));
      expect(String((await db.sql('SHOW CREATE MODEL pinned')).rows[0]![0])).toContain(`'sha256' = '${good}'`);
    } finally {
      await db.close();
    }
    const small = await openDuckDB(undefined, { cacheDir: mkdtempSync(join(tmpdir(), 'modelsql-cache-')), maxModelBytes: bytes.byteLength - 1 });
    try {
      await expectSqlError(small.sql(create('big', '')), '54000', new RegExp(`is ${bytes.byteLength} bytes, over this server's limit of ${bytes.byteLength - 1} bytes \\(--max-model-bytes\\)`));
      expect((await small.sql('SHOW MODELS')).rows).toEqual([]);
    } finally {
      await small.close();
    }
  });

  it('reports HTTP errors and refuses places outside the allow-lists', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'modelsql-cache-'));
    const db = await openDuckDB(undefined, { cacheDir, allowedUrlPrefixes: ['https://models.example/'], allowedDirectories: [join(files.dir, 'nowhere')] });
    await expectSqlError(db.sql(`CREATE MODEL w INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${base}/linear.onnx')`), '42501');
    await expectSqlError(db.sql(`CREATE MODEL w INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`), '42501');
    await db.close();
    const open = await openDuckDB(undefined, { cacheDir });
    await expectSqlError(open.sql(`CREATE MODEL w INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${base}/missing.onnx')`), '58030', /404/);
    expect((await open.sql('SHOW MODELS')).rows).toEqual([]);
    await open.close();
  });
});
