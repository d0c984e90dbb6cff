/**
 * Server-side access control of the proxy (docs/security.md, "Files and endpoints"): model
 * files only from `--model-dir` directories, model URLs and provider endpoints only under
 * `--allow-endpoint` prefixes; by default neither. A refused model reaches nothing: the
 * target servers count their requests. The same models work through the unrestricted
 * library, so every refusal here is the proxy's policy.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { openDuckDB } from '../../../adapters/duckdb/index.js';
import { connectPostgres } from '../../../adapters/postgres/index.js';
import type { Session } from '../../../core/session/session.js';
import { startCountingServer, type CountingServer } from '../../support/counting-server.js';
import { linearExpected, writeModelFiles, type ModelFiles } from '../../support/model-files.js';
import { runCli } from '../../support/run-cli.js';
import { proxyFixture, type ProxyFixture } from './proxy-helpers.js';

/** The first non-loopback IPv4 address of this machine, if any (a host the proxy could reach on the network). */
function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

const remoteModel = (name: string, endpoint: string): string =>
  `CREATE MODEL ${name} INPUT (txt STRING) OUTPUT (answer STRING) WITH ('provider' = 'openai', 'endpoint' = '${endpoint}', 'model' = 'm', 'api-key' = 'sk-test', 'retry-num' = '0', 'cache' = 'false')`;

let models: ModelFiles;
let allowedDir: string;
let fx: ProxyFixture;
let client: pg.Client;
let direct: Session;
let loopback: CountingServer;
let network: CountingServer | undefined;

beforeAll(async () => {
  models = writeModelFiles();
  allowedDir = mkdtempSync(join(tmpdir(), 'modelsql-allowed-'));
  copyFileSync(models.linear, join(allowedDir, 'lin.onnx'));
  symlinkSync(models.linear, join(allowedDir, 'escape.onnx'));
  mkdirSync(join(allowedDir, 'sub'));
  fx = await proxyFixture({ session: { allowedDirectories: [allowedDir] } });
  client = await fx.client();
  direct = await connectPostgres(fx.directUrl);
  await direct.sql(`CREATE TABLE t AS SELECT i AS id, i * 0.5 AS a, 10.0 - i AS b, 'row ' || i AS txt FROM generate_series(1, 5) i`);
  loopback = await startCountingServer();
  const address = hostAddress();
  network = address ? await startCountingServer({ host: address }) : undefined;
}, 60_000);

afterAll(async () => {
  await direct?.close();
  await fx?.close();
  await loopback?.close();
  await network?.close();
});

describe('model files', () => {
  test('inside --model-dir: created and used', async () => {
    await client.query(`CREATE MODEL inside INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${join(allowedDir, 'lin.onnx')}')`);
    const { rows } = await client.query('SELECT id, y FROM ML_PREDICT(TABLE t, MODEL inside, DESCRIPTOR(a, b)) ORDER BY id');
    expect(rows).toHaveLength(5);
  });

  test.each([
    ['outside every allowed directory', () => models.linear],
    ['escaping with ..', () => join(allowedDir, 'sub', '..', '..', models.linear)],
    ['escaping through a symbolic link', () => join(allowedDir, 'escape.onnx')],
    ['a missing file outside (same error: existence is not revealed)', () => join(models.dir, 'missing.onnx')],
  ])('refused: %s', async (_what, path) => {
    await expect(client.query(`CREATE MODEL outside INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${path()}')`)).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/outside the allowed model directories/),
    });
    await expect(client.query('DESCRIBE MODEL outside')).rejects.toMatchObject({ code: '42704' });
  });

  test('ALTER MODEL cannot point a model outside', async () => {
    await client.query(`CREATE MODEL movable INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${join(allowedDir, 'lin.onnx')}')`);
    await expect(client.query(`ALTER MODEL movable SET ('path' = '${models.linear}')`)).rejects.toMatchObject({ code: '42501' });
  });

  test('a model another client created with a file outside cannot run through the proxy', async () => {
    await direct.sql(`CREATE MODEL planted INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${models.linear}')`);
    expect((await direct.sql('SELECT count(*) FROM ML_PREDICT(TABLE t, MODEL planted, DESCRIPTOR(a, b))')).rows[0]![0]).toBe(5n);
    await expect(client.query('SELECT * FROM ML_PREDICT(TABLE t, MODEL planted, DESCRIPTOR(a, b))')).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/outside the allowed model directories/),
    });
  });

  test('models whose bytes the catalog holds need no directory: trained, run through the ONNX runtime', async () => {
    const none = await proxyFixture({ session: { allowedDirectories: [] } });
    try {
      const c = await none.client();
      await c.query(`CREATE TABLE pts AS SELECT i * 0.5::float8 AS a, 10.0::float8 - i AS b, 2 * (i * 0.5) + 3 * (10.0 - i) - 1 AS y FROM generate_series(1, 50) i`);
      await c.query(`CREATE MODEL held WITH ('task' = 'regression', 'algorithm' = 'linear_regression', 'label' = 'y', 'runtime' = 'onnx') AS SELECT a, b, y FROM pts`);
      const { rows, fields } = await c.query('SELECT * FROM ML_PREDICT(TABLE pts, MODEL held, DESCRIPTOR(a, b))');
      expect(rows).toHaveLength(50);
      const predicted = fields[fields.length - 1]!.name;
      for (const r of rows) expect(Number(r[predicted])).toBeCloseTo(Number(r.y), 3);
    } finally {
      await none.close();
    }
  });

  test('an ONNX model imported from a bundle runs without --model-dir, its file gone', async () => {
    const work = mkdtempSync(join(tmpdir(), 'modelsql-bundle-'));
    const none = await proxyFixture({ session: {} });
    try {
      const file = join(work, 'lin.onnx');
      copyFileSync(models.linear, file);
      const source = await openDuckDB(join(work, 'source.duckdb'));
      await source.sql(`CREATE MODEL imported INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${file}')`);
      await source.close();
      const bundle = join(work, 'catalog.bundle');
      expect(await runCli(['catalog', 'export', '--from', `duckdb:${join(work, 'source.duckdb')}`, '--format', 'bundle', '--out', bundle])).toMatchObject({ status: 0 });
      rmSync(file);
      expect(await runCli(['catalog', 'import', '--to', none.directUrl, bundle])).toMatchObject({ status: 0 });
      const c = await none.client();
      await c.query('CREATE TABLE pts AS SELECT i AS id, i * 0.5::float8 AS a, 10.0::float8 - i AS b FROM generate_series(1, 5) i');
      const { rows } = await c.query('SELECT a, b, y FROM ML_PREDICT(TABLE pts, MODEL imported, DESCRIPTOR(a, b)) ORDER BY id');
      expect(rows).toHaveLength(5);
      for (const r of rows) expect(Number(r.y)).toBeCloseTo(linearExpected(Number(r.a), Number(r.b)), 4);
    } finally {
      await none.close();
      rmSync(work, { recursive: true, force: true });
    }
  }, 60_000);

  test('a model URL is refused without --allow-endpoint, and not fetched', async () => {
    await expect(client.query(`CREATE MODEL fetched INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${loopback.url}/m.onnx')`)).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/model URL .* is outside the allowed endpoints \(network access of models is disabled/),
    });
    expect(loopback.count).toBe(0);
  });
});

describe('provider endpoints', () => {
  test('a loopback endpoint: refused at CREATE, and no request reaches it', async () => {
    const before = loopback.count;
    await expect(client.query(remoteModel('chat_loop', `${loopback.url}/v1/chat/completions`))).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/endpoint "http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions" is outside the allowed endpoints/),
    });
    expect(loopback.count).toBe(before);
  });

  test('a loopback model created elsewhere: refused at ML_PREDICT, and no request reaches it (the library reaches it)', async () => {
    await direct.sql(remoteModel('chat_planted', `${loopback.url}/v1/chat/completions`));
    const before = loopback.count;
    await expect(client.query('SELECT * FROM ML_PREDICT(TABLE t, MODEL chat_planted, DESCRIPTOR(txt))')).rejects.toMatchObject({ code: '42501' });
    expect(loopback.count).toBe(before);
    // The same model through the unrestricted library does reach the server.
    expect((await direct.sql('SELECT answer FROM ML_PREDICT(TABLE t, MODEL chat_planted, DESCRIPTOR(txt))')).rows).toEqual(Array(5).fill(['ok']));
    expect(loopback.count).toBe(before + 5);
  });

  test.each(['http://10.0.0.7/v1', 'http://172.16.3.4:8000/v1', 'http://192.168.1.20/v1/chat/completions', 'http://169.254.169.254/latest', 'http://[::1]:9/v1', 'http://localhost:9/v1'])(
    'a private or local address is refused: %s',
    async (endpoint) => {
      const started = Date.now();
      await expect(client.query(remoteModel('chat_private', endpoint))).rejects.toMatchObject({ code: '42501' });
      // Refused before any connection attempt: one to these addresses would hang for the
      // system's connect timeout (minutes), far past this generous bound for a loaded machine.
      expect(Date.now() - started).toBeLessThan(15_000);
    },
  );

  test("a network address of this host: refused, and no request reaches it", async () => {
    if (!network) return; // no non-loopback interface on this machine
    await expect(client.query(remoteModel('chat_net', `${network.url}/v1/chat/completions`))).rejects.toMatchObject({ code: '42501' });
    await direct.sql(remoteModel('chat_net_planted', `${network.url}/v1/chat/completions`));
    await expect(client.query('SELECT * FROM ML_PREDICT(TABLE t, MODEL chat_net_planted, DESCRIPTOR(txt))')).rejects.toMatchObject({ code: '42501' });
    expect(network.count).toBe(0);
  });
});

describe('with --allow-endpoint', () => {
  let allowed: ProxyFixture;
  let target: CountingServer;
  let bouncer: CountingServer;

  beforeAll(async () => {
    target = await startCountingServer();
    bouncer = await startCountingServer({ redirectTo: target.url });
    allowed = await proxyFixture({ session: { allowedDirectories: [], allowedUrlPrefixes: [`${bouncer.url}/v1/`] } });
    const c = await allowed.client();
    await c.query(`CREATE TABLE t AS SELECT i AS id, 'row ' || i AS txt FROM generate_series(1, 3) i`);
  });
  afterAll(async () => {
    await allowed?.close();
    await target?.close();
    await bouncer?.close();
  });

  test('an endpoint under an allowed prefix works', async () => {
    const c = await allowed.client();
    await c.query(remoteModel('ok_chat', `${bouncer.url}/v1/chat/completions`));
    expect((await c.query('SELECT answer FROM ML_PREDICT(TABLE t, MODEL ok_chat, DESCRIPTOR(txt))')).rows).toEqual(Array(3).fill({ answer: 'ok' }));
    expect(bouncer.count).toBe(3);
  });

  test('the same host under another path, or another port, is refused', async () => {
    const c = await allowed.client();
    await expect(c.query(remoteModel('other_path', `${bouncer.url}/admin/chat/completions`))).rejects.toMatchObject({ code: '42501' });
    await expect(c.query(remoteModel('other_port', `${target.url}/v1/chat/completions`))).rejects.toMatchObject({ code: '42501' });
    expect(target.count).toBe(0);
  });

  test('an allowed endpoint that redirects elsewhere: the redirect is not followed', async () => {
    const c = await allowed.client();
    await c.query(remoteModel('bounced', `${bouncer.url}/v1/bounce/chat/completions`));
    const before = bouncer.count;
    await expect(c.query('SELECT * FROM ML_PREDICT(TABLE t, MODEL bounced, DESCRIPTOR(txt))')).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/redirect target .* is outside the allowed endpoints/),
    });
    expect(bouncer.count).toBeGreaterThan(before);
    expect(target.count).toBe(0);
  });

  test('model files stay disabled with --model-dir none', async () => {
    const c = await allowed.client();
    await expect(c.query(`CREATE MODEL f INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${models.linear}')`)).rejects.toMatchObject({
      code: '42501',
      message: expect.stringMatching(/local model files are disabled/),
    });
  });
});
