/**
 * The current catalog layout reached from a catalog of layout 2 holding a model with a literal
 * api-key, a trained model's artifact and metrics, and a prediction run: the upgrade runs
 * on first use, every per-model row gets the model's owner (DuckDB: the owner the model row
 * recorded; Postgres: the role owning the catalog), and the models keep working (the key
 * still reaches the provider, sealed at rest since layout 4), on every host.
 */
import { CATALOG_VERSION, MIGRATIONS } from '../../core/catalog/catalog-layout.js';
import type { Session } from '../../core/session/session.js';
import { ADAPTERS } from '../support/adapters.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { startOpenAIServer } from '../providers/openai-server.js';

const SECRET = 'sk-layout-two-5b7c1d';
const TYPES = {
  duckdb: { text: 'VARCHAR', integer: 'INTEGER', bigint: 'BIGINT', double: 'DOUBLE', blob: 'BLOB', timestamp: 'TIMESTAMP' },
  postgres: { text: 'text', integer: 'integer', bigint: 'bigint', double: 'double precision', blob: 'bytea', timestamp: 'timestamp' },
} as const;

for (const adapter of ADAPTERS) {
  describe(`catalog layout 2 → 3 on ${adapter.name}`, () => {
    let server: LoopbackServer;
    let db: Session;
    beforeAll(async () => {
      server = await startOpenAIServer({ apiKey: SECRET });
      db = await adapter.open();
      // Layout 2, written as an older modelsql wrote it (host statements: no catalog use yet).
      await db.sql('CREATE SCHEMA ml_catalog');
      await db.sql(`CREATE TABLE ml_catalog.schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)`);
      for (const [i, migration] of MIGRATIONS.slice(0, 2).entries()) {
        for (const statement of migration.statements(TYPES[adapter.name as keyof typeof TYPES])) await db.sql(statement);
        await db.sql(`INSERT INTO ml_catalog.schema_version VALUES (${i + 1}, CAST(now() AS TIMESTAMP))`);
      }
      const options = JSON.stringify([['provider', 'openai'], ['endpoint', `${server.url}/v1`], ['model', 'gpt'], ['api-key', '******'], ['cache', 'false']]);
      await db.sql(`INSERT INTO ml_catalog.models VALUES ('${adapter.schema}', 'old', 1, 'someone', CAST(now() AS TIMESTAMP), CAST(now() AS TIMESTAMP))`);
      await db.sql(
        `INSERT INTO ml_catalog.model_versions VALUES ('${adapter.schema}', 'old', 1, 'openai', NULL, '[{"name":"txt","type":"STRING"}]', '[{"name":"a","type":"STRING"}]', '${options}', NULL, NULL, CAST(now() AS TIMESTAMP))`,
      );
      await db.sql(`INSERT INTO ml_catalog.model_secrets VALUES ('${adapter.schema}', 'old', 1, 'api-key', '${SECRET}')`);
      await db.sql(`INSERT INTO ml_catalog.training_metrics VALUES ('${adapter.schema}', 'old', 1, 'MAE', 0.5)`);
      await db.sql(`INSERT INTO ml_catalog.prediction_runs VALUES ('r1', '${adapter.schema}', 'old', 1, 't', 1, 0, 1.5, NULL, CAST(now() AS TIMESTAMP), NULL)`);
      await db.sql(`CREATE TABLE notes AS SELECT 'hi' AS txt`);
    });
    afterAll(async () => {
      await db.close();
      await server.close();
    });

    it('upgrades on first use and gives every row of the model its owner', async () => {
      expect((await db.sql('SHOW MODELS')).rows.map((r) => r[0])).toEqual(['old']);
      expect(Number((await db.sql('SELECT max(version) FROM ml_catalog.schema_version')).rows[0]![0])).toBe(CATALOG_VERSION);
      const owner = adapter.name === 'postgres' ? String((await db.sql('SELECT CAST(current_user AS text)')).rows[0]![0]) : 'someone';
      for (const table of ['models', 'model_versions', 'model_secrets', 'training_metrics']) {
        expect((await db.sql(`SELECT DISTINCT owner FROM ml_catalog.${table}`)).rows).toEqual([[owner]]);
      }
      expect((await db.sql('DESCRIBE MODEL EXTENDED old')).rows.find((r) => r[0] === 'owner')?.[1]).toBe(owner);
      expect((await db.sql(`SELECT count(*) FROM ml_catalog.prediction_runs`)).rows[0]![0]).toEqual(1n);
    });

    it('keeps the literal key working, read through usable_secrets', async () => {
      server.reset();
      expect((await db.sql('SELECT a FROM ML_PREDICT(TABLE notes, MODEL old, DESCRIPTOR(txt))')).rows).toEqual([['echo: hi']]);
      expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
      expect((await db.sql(`SELECT option_key FROM ml_catalog.usable_secrets`)).rows).toEqual([['api-key']]);
      // Layout 4 sealed the plaintext key of layout 2 on the way (MODELSQL_SECRET_KEY of the test run).
      const stored = (await db.sql(`SELECT secret FROM ml_catalog.usable_secrets`)).rows;
      expect(stored).toEqual([[expect.stringMatching(/^modelsql-sealed:v1:/)]]);
      expect(JSON.stringify(stored)).not.toContain(SECRET);
    });

    it('adds versions and drops the model with the new layout', async () => {
      await db.sql(`CREATE OR REPLACE MODEL old INPUT (txt STRING) OUTPUT (a STRING) WITH ('provider' = 'openai', 'endpoint' = '${server.url}/v1', 'model' = 'gpt', 'api-key' = '${SECRET}', 'cache' = 'false')`);
      expect((await db.sql('SHOW MODEL VERSIONS old')).rows.map((r) => r[0])).toEqual([1, 2]);
      await db.sql('DROP MODEL old');
      expect((await db.sql('SELECT count(*) FROM ml_catalog.model_secrets')).rows[0]![0]).toEqual(0n);
    });
  });
}
