/**
 * The CLI as a subprocess (test/support/run-cli.ts: the built `dist/cli/main.js`).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADAPTERS } from '../support/adapters.js';
import { createTestDatabase } from '../support/postgres-server.js';
import { startShell } from '../support/pty-shell.js';
import { MAIN, ROOT, runCli as cli } from '../support/run-cli.js';
import { modelFileLimitsFromArgs } from '../../cli/proxy-limit-flags.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'modelsql-cli-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('modelsql run -c', () => {
  it('prints a table with a row-count footer', async () => {
    const r = await cli(['run', '-c', "select 42 as x, 'hi' as s, null as n"]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/│ +x +│ +s +│ +n +│/);
    expect(r.stdout).toMatch(/│ 42 │ hi +│ NULL │/);
    expect(r.stdout).toMatch(/\(1 row\)\n$/);
  });

  it('prints RFC 4180 csv', async () => {
    const r = await cli(['run', '--format', 'csv', '-c', `select 1 as a, 'x,"y"' as b, null as c union all select 2, '', 'z' order by a`]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('a,b,c\r\n1,"x,""y""",\r\n2,"",z\r\n');
  });

  it('prints a JSON array per statement, big integers as strings, nested values as JSON', async () => {
    const r = await cli([
      'run',
      '--format',
      'json',
      '-c',
      "select 7::bigint as small, 9223372036854775807::bigint as big, [1, 2] as arr, {'k': 'v'} as obj; select 'é' as u",
    ]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.map((l) => JSON.parse(l) as unknown)).toEqual([[{ small: 7, big: '9223372036854775807', arr: [1, 2], obj: { k: 'v' } }], [{ u: 'é' }]]);
  });
});

describe('modelsql run -f', () => {
  it('runs a multi-statement file, printing command tags and results', async () => {
    const file = join(dir, 'script.sql');
    writeFileSync(
      file,
      `-- a comment; with a semicolon
create table t (id integer, name varchar);
insert into t values (1, 'a;b'), (2, 'c');
select * from t order by id;
select count(*) as n from t;
`,
    );
    const r = await cli(['run', '-f', file]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/│ +1 │ a;b +│/);
    expect(r.stdout).toMatch(/\(2 rows\)/);
    expect(r.stdout).toMatch(/│ 2 │\n└───┘\n\(1 row\)\n$/);
  });

  it('reads the file from stdin with -f -', async () => {
    const r = await cli(['run', '-f', '-', '--format', 'csv'], 'select 1 as one;');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('one\r\n1\r\n');
  });

  it('fails with status 1 on a missing file: 58P01; a directory 58030', async () => {
    const r = await cli(['run', '-f', join(dir, 'missing.sql')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ERROR: {2}58P01: cannot read .*missing\.sql: ENOENT/);
    const d = await cli(['run', '-f', dir]);
    expect(d.status).toBe(1);
    expect(d.stderr).toBe(`ERROR:  58030: cannot read ${dir}: it is a directory\n`);
  });

  it('reads a script within --max-script-bytes, from a file, stdin (run and the shell) or a device: 54000 one byte past it', async () => {
    const script = 'select 1 as one;';
    const file = join(dir, 'limit.sql');
    writeFileSync(file, script);
    const at = String(script.length);
    const under = String(script.length - 1);
    expect((await cli(['run', '-f', file, '--max-script-bytes', at, '--format', 'csv'])).stdout).toBe('one\r\n1\r\n');
    const over = await cli(['run', '-f', file, '--max-script-bytes', under]);
    expect(over.status).toBe(1);
    expect(over.stderr).toBe(`ERROR:  54000: script ${file} is ${script.length} bytes, over the limit of ${under} bytes (--max-script-bytes)\n`);
    expect((await cli(['run', '-f', '-', '--max-script-bytes', at, '--format', 'csv'], script)).stdout).toBe('one\r\n1\r\n');
    for (const args of [['run', '-f', '-'], ['shell']]) {
      const piped = await cli([...args, '--max-script-bytes', under], script);
      expect(piped.status).toBe(1);
      expect(piped.stderr).toBe(`ERROR:  54000: script on stdin has more than ${under} bytes, over the limit of ${under} bytes (--max-script-bytes)\n`);
    }
    // A device says nothing of its size: read only up to the limit (it never ends).
    const zero = await cli(['run', '-f', '/dev/zero', '--max-script-bytes', '1000']);
    expect(zero.status).toBe(1);
    expect(zero.stderr).toBe('ERROR:  54000: script /dev/zero has more than 1000 bytes, over the limit of 1000 bytes (--max-script-bytes)\n');
    expect((await cli(['run', '-f', file, '--max-script-bytes', '0'])).stderr).toMatch(/--max-script-bytes must be a positive integer/);
  });
});

describe('model SQL', () => {
  it('creates an ONNX model and predicts with it, keeping the model in the --db file', async () => {
    const db = join(dir, 'models.duckdb');
    const create = await cli([
      'run',
      '--db',
      db,
      '-c',
      `CREATE MODEL house_price
         INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE)
         OUTPUT (price DOUBLE)
         WITH ('provider' = 'onnx', 'path' = 'examples/models/house_price.onnx');`,
    ]);
    expect(create.stderr).toBe('');
    expect(create.status).toBe(0);
    expect(create.stdout).toBe('CREATE MODEL\n');
    const predict = await cli([
      'run',
      '--db',
      db,
      '--format',
      'json',
      '-f',
      '-',
    ], `SELECT sqft, price
          FROM ML_PREDICT(TABLE (SELECT 1500.0::DOUBLE AS sqft, 3.0::DOUBLE AS bedrooms, 10.0::DOUBLE AS age),
                          MODEL house_price, DESCRIPTOR(sqft, bedrooms, age));`);
    expect(predict.stderr).toBe('');
    expect(predict.status).toBe(0);
    expect(JSON.parse(predict.stdout)).toEqual([{ sqft: 1500, price: 295000 }]);
  });

  it('runs examples/quickstart.sql: predictions and metrics as the README promises', async () => {
    const r = await cli(['run', '-f', 'examples/quickstart.sql', '--format', 'json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const results = r.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>[]);
    const predictions = results.find((rows) => rows[0] && 'price' in rows[0] && 'id' in rows[0])!;
    // price = 150*sqft + 10000*bedrooms - 1000*age + 50000, computed here for the first rows
    expect(predictions.map((row) => row['price'])).toEqual(
      [0, 1, 2, 3, 4].map((i) => 150 * (800 + ((i * 37) % 2200)) + 10000 * (1 + (i % 5)) - 1000 * ((i * 7) % 60) + 50000),
    );
    const metrics = results.find((rows) => rows[0] && 'r2' in rows[0])![0]!;
    expect(metrics['r2']).toBeGreaterThan(0.99);
    const classification = results[results.length - 1]![0]!;
    expect(classification['accuracy']).toBe(1);
  });

  // Runs when the Postgres host is selected (MODELSQL_TEST_ADAPTERS), as the shared suites do.
  const withPostgres = ADAPTERS.some((a) => a.name === 'postgres') ? it : undefined;
  withPostgres?.('runs model SQL on Postgres with --postgres', async () => {
    const base = process.env.MODELSQL_TEST_POSTGRES_URL;
    if (!base) throw new Error('MODELSQL_TEST_POSTGRES_URL is not set: run the tests through jest');
    const url = await createTestDatabase(base);
    const model = join(ROOT, 'examples', 'models', 'house_price.onnx');
    const script = `CREATE TABLE h AS SELECT 1500.0::float8 AS sqft, 3.0::float8 AS bedrooms, 10.0::float8 AS age;
CREATE MODEL hp INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE) OUTPUT (price DOUBLE) WITH ('provider' = 'onnx', 'path' = '${model}');
SELECT price FROM ML_PREDICT(TABLE h, MODEL hp, DESCRIPTOR(sqft, bedrooms, age));`;
    const r = await cli(['run', '--postgres', url, '--format', 'csv', '-c', script]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('price\r\n295000\r\n');
    const both = await cli(['run', '--postgres', url, '--db', join(dir, 'x.duckdb'), '-c', 'select 1']);
    expect(both.status).toBe(2);
  });

  it('prints a model SQL error with SQLSTATE, LINE and caret', async () => {
    const r = await cli(['run', '-c', "select 1;\nCREATE MODEL m\n  WITH ();"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^ERROR: {2}\w{5}: .*WITH/);
    const lines = r.stderr.split('\n');
    const at = lines.findIndex((l) => l.startsWith('LINE 3: '));
    expect(lines[at]).toBe('LINE 3:   WITH ();');
    // the caret stands under a character of the offending part of line 3
    const caret = lines[at + 1]!.indexOf('^');
    expect(caret).toBeGreaterThanOrEqual('LINE 3:   '.length);
    expect(lines[at + 1]!.trim()).toBe('^');
  });
});

describe('--db', () => {
  it('persists a database file across invocations', async () => {
    const db = join(dir, 'app.duckdb');
    const first = await cli(['run', '--db', db, '-c', "create table kept as select 5 as v, 'five' as w"]);
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(existsSync(db)).toBe(true);
    const second = await cli(['run', '--db', db, '--format', 'json', '-c', 'select * from kept']);
    expect(second.stderr).toBe('');
    expect(second.stdout).toBe('[{"v":5,"w":"five"}]\n');
  });
});

describe('errors', () => {
  it('exit 1 with SQLSTATE, LINE and caret on stderr, after the results of earlier statements', async () => {
    const r = await cli(['run', '--format', 'csv', '-c', 'select 1 as ok;\nselect 2 as also;\nselec 3;\nselect 4 as never;']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('ok\r\n1\r\n\nalso\r\n2\r\n');
    expect(r.stderr).toMatch(/^ERROR: {2}42601: /);
    expect(r.stderr).toMatch(/LINE \d+: .*selec 3/);
    expect(r.stderr).toMatch(/\n +\^/);
  });

  it('exit 2 on bad usage', async () => {
    for (const args of [['run'], ['run', '-c', 'select 1', '-f', 'x.sql'], ['run', '-c', 'select 1', '--format', 'xml'], ['nope'], ['run', '-c', 'select 1', '--bogus']]) {
      const r = await cli(args);
      expect({ args, status: r.status }).toEqual({ args, status: 2 });
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/modelsql/);
    }
  });

  it('exit 2 for a worker given no database (an in-memory one has no materialized tables to refresh)', async () => {
    const r = await cli(['worker', '--once'], '', { DATABASE_URL: undefined });
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/give --db FILE or --postgres URL/);
  });

  it('--help and --version exit 0', async () => {
    const help = await cli(['run', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--format/);
    const version = await cli(['--version']);
    expect(version.status).toBe(0);
    expect(version.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('shell with piped stdin', () => {
  it('runs the input as a script', async () => {
    const r = await cli([], 'select 1 as x;\nselect\n  2 as y\n;\n');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/│ 1 │[\s\S]*\(1 row\)\n\n[\s\S]*│ y │[\s\S]*│ 2 │/);
  });

  it('honours --db and --format, and stops at an error with status 1', async () => {
    const db = join(dir, 's.duckdb');
    const r = await cli(['shell', '--db', db, '--format', 'json'], 'create table u as select 3 as z; select * from u; select * from nowhere; select 9;');
    expect(r.status).toBe(1);
    expect(r.stdout.endsWith('[{"z":3}]\n')).toBe(true);
    expect(r.stderr).toMatch(/^ERROR: {2}\w{5}: .*nowhere/);
  });
});

describe('interactive shell in a pseudo-terminal', () => {
  it('runs multi-line statements, cancels input with Ctrl-C, keeps history, leaves with \\q', async () => {
    const history = join(dir, 'history');
    const db = join(dir, 'pty.duckdb');
    const shell = startShell(['shell', '--db', db], { MODELSQL_HISTORY: history });
    try {
      await shell.until(/modelsql> $/);
      shell.term.write('select 40 + 2\r');
      await shell.until(/ {5}\.\.\.> $/);
      shell.term.write('  as answer;\r');
      await shell.until(/answer[\s\S]*│ +42 │[\s\S]*\(1 row\)[\s\S]*modelsql> $/);

      let mark = shell.output().length;
      shell.term.write('select oops\x03');
      await shell.until(/modelsql> $/, mark);
      shell.term.write('create table p as select 1 as q;\r');
      await shell.until(/modelsql> $/, mark);
      mark = shell.output().length;
      shell.term.write('select * from nowhere;\r');
      await shell.until(/ERROR: {2}\w{5}:[\s\S]*modelsql> $/, mark);
      // Ctrl-C while a statement runs cancels it, and the shell goes on
      mark = shell.output().length;
      shell.term.write('select count(*) from range(1000000000000) a;\r');
      await new Promise((r) => setTimeout(r, 700));
      shell.term.write('\x03');
      await shell.until(/ERROR: {2}\w{5}: .*(cancel|interrupt)[\s\S]*modelsql> $/i, mark);
      shell.term.write('\\q\r');
      expect(await shell.exited).toBe(0);
    } finally {
      shell.term.kill();
    }
    expect(readFileSync(history, 'utf8')).toBe(
      'select 40 + 2\n  as answer;\ncreate table p as select 1 as q;\nselect * from nowhere;\nselect count(*) from range(1000000000000) a;\n\\q\n',
    );
    // the table made in the shell is in the file
    const r = await cli(['run', '--db', db, '--format', 'csv', '-c', 'select q from p']);
    expect(r.stdout).toBe('q\r\n1\r\n');
  });

  it('leaves with Ctrl-D', async () => {
    const shell = startShell([], { MODELSQL_HISTORY: '' });
    try {
      await shell.until(/modelsql> $/);
      shell.term.write('\x04');
      expect(await shell.exited).toBe(0);
    } finally {
      shell.term.kill();
    }
  });
});

describe('access and limit flags', () => {
  const linear = (): string => {
    const file = join(dir, 'outside.onnx');
    writeFileSync(file, 'not read');
    return file;
  };

  it('run --model-dir: a model file elsewhere is refused with 42501', async () => {
    const allowed = mkdtempSync(join(dir, 'models-'));
    const r = await cli(['run', '--model-dir', allowed, '-c', `CREATE MODEL m INPUT (a DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${linear()}')`]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/42501: model file .* is outside the allowed model directories/);
  });

  it('run --allow-endpoint: an endpoint elsewhere is refused with 42501', async () => {
    const r = await cli([
      'run',
      '--allow-endpoint',
      'https://api.example.com/v1/',
      '-c',
      `CREATE MODEL m INPUT (t STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1/chat/completions', 'model' = 'x', 'api-key' = 'k')`,
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/42501: endpoint "http:\/\/127\.0\.0\.1:9\/v1\/chat\/completions" is outside the allowed endpoints/);
  });

  it('proxy: limits must be positive integers', async () => {
    const r = await cli(['proxy', '--upstream', 'postgres://127.0.0.1:1/x', '--max-inferences', '0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--max-inferences must be a positive integer/);
  });

  it('proxy: --relay-scheduling is batch or normal', async () => {
    const r = await cli(['proxy', '--upstream', 'postgres://127.0.0.1:1/x', '--relay-scheduling', 'fast']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/relay-scheduling.*Given: "fast", Choices: "batch", "normal"/s);
  });

  it('proxy: cap and model-file flags must be positive integers or durations', async () => {
    const count = await cli(['proxy', '--upstream', 'postgres://127.0.0.1:1/x', '--max-batch-size', '2^32']);
    expect(count.status).toBe(2);
    expect(count.stderr).toMatch(/--max-batch-size must be a positive integer, not '2\^32'/);
    const duration = await cli(['proxy', '--upstream', 'postgres://127.0.0.1:1/x', '--max-timeout', '0s']);
    expect(duration.status).toBe(2);
    expect(duration.stderr).toMatch(/--max-timeout must be a positive duration/);
    const bytes = await cli(['proxy', '--upstream', 'postgres://127.0.0.1:1/x', '--max-model-bytes', '0']);
    expect(bytes.status).toBe(2);
    expect(bytes.stderr).toMatch(/--max-model-bytes must be a positive integer, not '0'/);
    const json = await cli(['proxy', '--upstream', 'postgres://127.0.0.1:1/x', '--max-model-json-bytes', '64MB']);
    expect(json.status).toBe(2);
    expect(json.stderr).toMatch(/--max-model-json-bytes must be a positive integer, not '64MB'/);
    expect(modelFileLimitsFromArgs({ 'max-model-json-bytes': '1048576', 'max-model-bytes': '2048' })).toEqual({ maxModelJsonBytes: 1048576, maxModelBytes: 2048 });
  });

  /** The proxy's start-up line with `args` (the proxy is stopped once it is printed). */
  const startupLine = async (args: readonly string[]): Promise<string> => {
    const child = spawn(process.execPath, [MAIN, 'proxy', '--listen', '127.0.0.1:0', ...args], { cwd: ROOT, stdio: 'pipe' });
    let stderr = '';
    await new Promise<void>((done) => {
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString('utf8');
        if (/materialized tables .*\n/.test(stderr)) done();
      });
    });
    child.kill('SIGTERM');
    await new Promise((done) => child.on('close', done));
    return stderr;
  };

  it('proxy: says what models may reach when it starts', async () => {
    const stderr = await startupLine(['--upstream', 'postgres://127.0.0.1:1/x', '--model-dir', dir, '--allow-endpoint', 'https://api.example.com/v1/', '--allow-endpoint', 'https://b.example/']);
    expect(stderr).toMatch(new RegExp(`model files from: ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}; endpoints: https://api.example.com/v1/, https://b.example/`));
    expect(stderr).toMatch(/; materialized tables not refreshed \(no --refresh-url\)\n/);
  });

  it('proxy: refreshes materialized tables only as the role of --refresh-url (never the upstream role by default), unless --no-refresh', async () => {
    expect(await startupLine(['--upstream', 'postgres://127.0.0.1:1/x', '--refresh-url', 'postgres://mt_refresher@127.0.0.1:1/'])).toMatch(/; materialized tables refreshed as mt_refresher\n/);
    expect(await startupLine(['--upstream', 'postgres://ops@127.0.0.1:1/x'])).toMatch(/; materialized tables not refreshed \(no --refresh-url\)\n/);
    expect(await startupLine(['--upstream', 'postgres://ops@127.0.0.1:1/x', '--no-refresh'])).toMatch(/; materialized tables not refreshed/);
  });
});

describe('provider SDK output and notices', () => {
  /** The first ```sql block of docs/providers/anthropic.md, pointed at `url`. */
  const anthropicExample = (url: string): string => {
    const page = readFileSync(join(ROOT, 'docs', 'providers', 'anthropic.md'), 'utf8');
    const sql = /```sql\n([\s\S]*?)```/.exec(page)![1]!;
    return sql.replace('http://127.0.0.1:8090', url);
  };
  const articles = `CREATE TABLE articles AS SELECT 'Title ' || i AS title, 'Body ' || i AS body FROM range(10) t(i);\n`;

  it("runs the docs' Anthropic example against the loopback server with nothing on stderr; the SDK's warnings reach the log when asked for", async () => {
    const { startAnthropicServer } = await import('../providers/anthropic-server.js');
    const server = await startAnthropicServer({ apiKey: 'sk-ant-loopback-1234' });
    try {
      const file = join(dir, 'anthropic.sql');
      writeFileSync(file, articles + anthropicExample(server.url));
      const env = { ANTHROPIC_API_KEY: 'sk-ant-loopback-1234', MODELSQL_LOG_LEVEL: '' };
      const quiet = await cli(['run', '--format', 'csv', '-f', file], '', env);
      expect(quiet.stderr).toBe('');
      expect(quiet.status).toBe(0);
      expect(quiet.stdout.trim().split('\r\n').slice(-10)).toHaveLength(10);
      // The prompt's blank line is a real one (no literal backslash-n).
      expect(server.requests.map((r) => (r.body as { messages: { content: string }[] }).messages[0]!.content)).toContain('Title 3\n\nBody 3');
      expect(server.requests).toHaveLength(10);
      const logged = await cli(['run', '--format', 'csv', '-f', file], '', { ...env, MODELSQL_LOG_LEVEL: 'warn' });
      expect(logged.status).toBe(0);
      const records = logged.stderr.trim().split('\n').map((l) => JSON.parse(l) as { level: string; source: string; message: string });
      expect(records.length).toBeGreaterThanOrEqual(10);
      for (const r of records) expect(r).toMatchObject({ level: 'warn', source: 'anthropic', message: expect.stringContaining("'claude-sonnet-4-5' is deprecated") });
    } finally {
      await server.close();
    }
  });

  it('prints a NOTICE on stderr for a CREATE MODEL whose ${env:...} variable is not set, and succeeds', async () => {
    const r = await cli(
      ['run', '-c', "CREATE MODEL later INPUT (t STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'm', 'api-key' = '${env:MODELSQL_CLI_UNSET_KEY}')"],
      '',
      { MODELSQL_CLI_UNSET_KEY: '' },
    );
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^NOTICE: {2}option 'api-key' refers to environment variable MODELSQL_CLI_UNSET_KEY, which is not set/);
    expect(r.stdout).toContain('CREATE MODEL');
  });
});
