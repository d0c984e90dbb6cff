/**
 * The SQL examples of README.md and the guides run as shown, in page order, on each host:
 * one fresh database per page and host, from the repository root (where the pages' relative
 * model paths point). docs/proxy.md's run on Postgres goes through a real proxy and
 * node-postgres, as the page describes. The marks that limit an example to one host, or
 * expect an error, are in the markdown (test/support/doc-examples.ts; docs/README.md,
 * "Examples are tested"). On DuckDB, a box table shown after an example names the columns
 * of its result.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { basename, join } from 'node:path';
import pg from 'pg';
import { startProxy, type RunningProxy } from '../../adapters/postgres/proxy/index.js';
import { ModelSqlError } from '../../core/errors.js';
import { ADAPTERS } from '../support/adapters.js';
import { docExamples, type DocExample } from '../support/doc-examples.js';
import { createTestDatabase } from '../support/postgres-server.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { startOpenAIServer } from '../providers/openai-server.js';
import { startTritonServer, type TritonServer } from '../providers/triton-server.js';
import { ROOT } from '../support/run-cli.js';

/** Where the examples of one page run: `run` resolves to the last statement's column names. */
interface Runner {
  run(sql: string): Promise<string[]>;
  close(): Promise<void>;
}

async function sessionRunner(adapterName: string): Promise<Runner> {
  const db = await ADAPTERS.find((a) => a.name === adapterName)!.open();
  return {
    run: async (sql) => (await db.sql(sql)).columns.map((c) => c.name),
    close: () => db.close(),
  };
}

/** A proxy in front of a fresh database, with model files from examples/models, and a node-postgres client through it. */
async function proxyRunner(): Promise<Runner> {
  const url = new URL(await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!));
  const proxy: RunningProxy = await startProxy({
    upstream: `postgres://${url.host}${url.pathname}?sslmode=disable`,
    listen: 0,
    log: () => undefined,
    session: { allowedDirectories: [join(ROOT, 'examples', 'models')] }, // --model-dir /path/to/modelsql/examples/models, as docs/proxy.md starts it
  });
  url.host = `127.0.0.1:${proxy.port}`;
  const client = new pg.Client({ connectionString: url.toString() });
  client.on('error', () => undefined);
  await client.connect();
  return {
    run: async (sql) => {
      const results = (await client.query(sql)) as pg.QueryResult | pg.QueryResult[];
      const last = Array.isArray(results) ? results[results.length - 1]! : results;
      return (last.fields ?? []).map((f) => f.name);
    },
    close: async () => {
      await client.end();
      await proxy.close();
    },
  };
}

/**
 * The servers the pages name, on the ports they name: docs/providers/onnx.md downloads a
 * model from `http://127.0.0.1:8765/` (`python3 -m http.server 8765 -d examples/models`),
 * the OpenAI-compatible examples call a local server at `localhost:11434` (with "any value"
 * as the key), the Triton examples a server at `localhost:8000`.
 */
function serveExampleModels(port: number): Promise<Server> {
  const server = createServer((request, response) => {
    readFile(join(ROOT, 'examples', 'models', basename(request.url ?? '/'))).then(
      (bytes) => response.end(bytes),
      () => response.writeHead(404).end(),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

let modelServer: Server;
let openai: LoopbackServer;
let triton: TritonServer;
const keyBefore = process.env.OPENAI_API_KEY;
beforeAll(async () => {
  modelServer = await serveExampleModels(8765);
  openai = await startOpenAIServer({ port: 11434 });
  triton = await startTritonServer({ port: 8000 });
  process.env.OPENAI_API_KEY = 'any-value';
});
afterAll(async () => {
  if (keyBefore === undefined) delete process.env.OPENAI_API_KEY;
  else process.env.OPENAI_API_KEY = keyBefore;
  modelServer.closeAllConnections();
  await new Promise((resolve) => modelServer.close(resolve));
  await openai.close();
  await triton.close();
});

const PAGES: readonly { readonly page: string; readonly proxy?: boolean }[] = [
  { page: 'README.md' },
  { page: 'docs/getting-started.md' },
  { page: 'docs/training.md' },
  { page: 'docs/proxy.md', proxy: true },
  { page: 'docs/reference/ml-predict.md' },
  { page: 'docs/reference/ml-evaluate.md' },
  { page: 'docs/reference/create-model.md' },
  { page: 'docs/reference/alter-model.md' },
  { page: 'docs/reference/drop-model.md' },
  { page: 'docs/reference/describe-model.md' },
  { page: 'docs/reference/show-models.md' },
  { page: 'docs/reference/show-create-model.md' },
  { page: 'docs/reference/show-model-versions.md' },
  { page: 'docs/providers/onnx.md' },
  { page: 'docs/catalog.md' },
  { page: 'docs/continuous-predictions.md' },
  { page: 'docs/providers/openai.md' },
  { page: 'docs/providers/gemini.md' },
  { page: 'docs/providers/triton.md' },
  { page: 'docs/reference/executor.md' },
  { page: 'docs/reference/grant-revoke.md' },
  { page: 'docs/security.md' },
];

function sqlstateOf(error: unknown): string | undefined {
  if (error instanceof ModelSqlError) return error.sqlstate;
  return (error as { code?: string }).code;
}

async function runExample(runner: Runner, example: DocExample, checkColumns: boolean): Promise<void> {
  if (example.setup) await runner.run(example.setup);
  if (example.error) {
    const failure = await runner.run(example.sql).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeDefined();
    expect(sqlstateOf(failure)).toBe(example.error);
    return;
  }
  const columns = await runner.run(example.sql);
  if (checkColumns && example.columns) expect(columns).toEqual(example.columns);
}

for (const { page, proxy } of PAGES) {
  const examples = docExamples(page);
  for (const adapter of ADAPTERS) {
    describe(`${page} on ${adapter.name}`, () => {
      let runner: Runner;
      beforeAll(async () => {
        runner = proxy && adapter.name === 'postgres' ? await proxyRunner() : await sessionRunner(adapter.name);
      });
      afterAll(async () => {
        await runner?.close();
      });
      it('has examples', () => {
        expect(examples.filter((e) => !e.skip).length).toBeGreaterThan(0);
      });
      for (const example of examples) {
        const runs = !example.skip && (example.only === undefined || example.only === adapter.name);
        const title = `line ${example.line}${example.skip ? ` (not run: ${example.skip})` : example.only && !runs ? ` (${example.only} only)` : ''}`;
        (runs ? it : it.skip)(title, () => runExample(runner, example, adapter.name === 'duckdb'));
      }
    });
  }
}
