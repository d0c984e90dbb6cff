/**
 * Models whose bytes the catalog holds (imported ONNX graphs, trained models) are loaded
 * and cached by the identity the host gave their stored version (`ModelVersion.storedId`),
 * not by the timestamps and checksums their writer passed, which a catalog import keeps as
 * the bundle says. A version dropped and imported again with the same metadata and other
 * bytes runs its new bytes, and two databases sharing one runtime loader (as the proxy's
 * connections do; here two DuckDB instances of one process) run each its own.
 */
import { createHash } from 'node:crypto';
import { DuckDBHost } from '../../adapters/duckdb/index.js';
import { importSnapshot } from '../../core/catalog/catalog-import.js';
import { readSnapshot, type CatalogSnapshot, type SnapshotModel } from '../../core/catalog/catalog-snapshot.js';
import { CATALOG_VERSION } from '../../core/catalog/catalog-store.js';
import type { Host } from '../../core/host.js';
import { RuntimeLoader } from '../../core/runtime/runtime-loader.js';
import { ModelSession } from '../../core/session/model-session.js';
import { ADAPTERS } from '../support/adapters.js';
import { writeModelFiles } from '../support/model-files.js';
import { linearRegressorModel } from '../support/onnx-models.js';

const files = writeModelFiles();
const CREATED = '2026-01-02 03:04:05.123';
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A snapshot of model `held` whose one version holds `graph` under the checksum `claimed`. */
function heldModel(schema: string, graph: Uint8Array, claimed: string): CatalogSnapshot {
  return {
    layout: CATALOG_VERSION,
    models: [
      {
        schema,
        name: 'held',
        defaultVersion: 1,
        owner: '',
        createdAt: CREATED,
        updatedAt: CREATED,
        grants: [],
        versions: [
          {
            version: 1,
            provider: 'onnx',
            input: [{ name: 'a', type: 'DOUBLE' }, { name: 'b', type: 'DOUBLE' }],
            output: [{ name: 'y', type: 'DOUBLE' }],
            options: [['provider', 'onnx'], ['path', files.linear]],
            createdAt: CREATED,
            secrets: [],
            artifacts: [{ name: 'model.onnx', sha256: claimed, size: graph.byteLength, content: graph }],
            metrics: [],
          },
        ],
      },
    ],
  };
}

/** `snapshot` with its owner set to the role that imports it (the catalog owner on Postgres, anyone on DuckDB). */
async function ownedBy(host: Host, snapshot: CatalogSnapshot): Promise<CatalogSnapshot> {
  const owner = host.name === 'postgres' ? String((await host.execute('SELECT CAST(current_user AS text)')).rows[0]![0]) : snapshot.models[0]!.owner;
  return { ...snapshot, models: snapshot.models.map((m) => ({ ...m, owner })) };
}

const PREDICT = 'SELECT y FROM ML_PREDICT(TABLE pts, MODEL held, DESCRIPTOR(a, b))';
const ALICE = linearRegressorModel([1, 1], 0); // y(1, 2) = 3
const OTHER = linearRegressorModel([0, 0], 5); // y(1, 2) = 5

for (const adapter of ADAPTERS) {
  describe(`catalog-held models keyed by their stored version on ${adapter.name}`, () => {
    let host: Host;
    let session: ModelSession;
    beforeEach(async () => {
      host = await adapter.openHost();
      session = new ModelSession(host);
      await session.sql('CREATE TABLE pts AS SELECT CAST(1 AS DOUBLE PRECISION) AS a, CAST(2 AS DOUBLE PRECISION) AS b');
    });
    afterEach(async () => {
      await session.close();
    });
    const predict = async (sql = PREDICT) => Number((await session.sql(sql)).rows[0]![0]);

    it('a held ONNX model dropped and imported again with the same metadata and checksum runs its new graph', async () => {
      await importSnapshot(host, await ownedBy(host, heldModel(adapter.schema, ALICE, sha256(ALICE))));
      expect(await predict()).toBeCloseTo(3, 4);
      await session.sql('DROP MODEL held');
      await importSnapshot(host, await ownedBy(host, heldModel(adapter.schema, OTHER, sha256(ALICE))));
      expect(await predict()).toBeCloseTo(5, 4);
    });

    it('a trained model dropped and imported again with the same metadata and checksums runs its new parameters', async () => {
      await session.sql('CREATE TABLE d AS SELECT CAST(i AS DOUBLE PRECISION) AS x, CAST(2 * i AS DOUBLE PRECISION) AS y FROM generate_series(1, 20) AS r(i)');
      const train = () => session.sql("CREATE MODEL tm WITH ('algorithm' = 'linear_regression', 'label' = 'y') AS SELECT x, y FROM d");
      const trained = async () => (await readSnapshot(host, { artifactContent: true, models: 'tm' })).models[0]!;
      await train();
      const first = await trained();
      await session.sql('DROP MODEL tm; UPDATE d SET y = 5 * x');
      await train();
      const second = await trained();
      await session.sql('DROP MODEL tm');
      // The second model under the first's timestamps and checksums: only its bytes differ.
      const forged: SnapshotModel = {
        ...second,
        createdAt: first.createdAt,
        updatedAt: first.updatedAt,
        versions: second.versions.map((v, i) => ({ ...v, createdAt: first.versions[i]!.createdAt, artifacts: v.artifacts.map((a) => ({ ...a, sha256: first.versions[i]!.artifacts.find((f) => f.name === a.name)!.sha256 })) })),
      };
      const predictTm = () => predict('SELECT predicted_y FROM ML_PREDICT(TABLE (SELECT CAST(3 AS DOUBLE PRECISION) AS x), MODEL tm, DESCRIPTOR(x))');
      await importSnapshot(host, { layout: CATALOG_VERSION, models: [first] });
      expect(await predictTm()).toBeCloseTo(6, 3);
      await session.sql('DROP MODEL tm');
      await importSnapshot(host, { layout: CATALOG_VERSION, models: [forged] });
      expect(await predictTm()).toBeCloseTo(15, 3);
    });

    it('a default version switched back and forth keeps one runtime per version', async () => {
      const loader = new RuntimeLoader({});
      const own = new ModelSession(host, { runtimeLoader: loader });
      const loaded = () => (loader as unknown as { runtimes: Map<string, unknown> }).runtimes.size;
      try {
        await own.sql('CREATE TABLE h AS SELECT CAST(i AS DOUBLE PRECISION) AS x, CAST(2 * i + 1 AS DOUBLE PRECISION) AS y FROM generate_series(1, 50) AS r(i)');
        const options = "WITH ('task' = 'regression', 'algorithm' = 'linear_regression', 'label' = 'y', 'runtime' = 'onnx') AS SELECT x, y FROM h";
        await own.sql(`CREATE MODEL flip ${options}`);
        await own.sql(`CREATE OR REPLACE MODEL flip ${options}`);
        const counts: number[] = [];
        for (let i = 0; i < 6; i++) {
          await own.sql(`ALTER MODEL flip SET ('default-version' = '${1 + (i % 2)}')`);
          await own.sql('SELECT * FROM ML_PREDICT(TABLE h, MODEL flip, DESCRIPTOR(x)) LIMIT 1');
          counts.push(loaded());
        }
        // Every ALTER sets the model's updated_at: keyed by it, each switch loaded a new runtime (1, 2, 3, ...).
        expect(counts).toEqual([1, 2, 2, 2, 2, 2]);
      } finally {
        await loader.close();
      }
    });
  });
}

if (ADAPTERS.some((a) => a.name === 'duckdb')) {
  describe('two DuckDB databases of one process sharing a runtime loader', () => {
    it('run each its own model of the same name, version, timestamps and checksum, whichever is loaded first', async () => {
      const loader = new RuntimeLoader({});
      const open = async (graph: Uint8Array) => {
        const host = await DuckDBHost.open();
        const session = new ModelSession(host, { runtimeLoader: loader });
        await session.sql('CREATE TABLE pts AS SELECT CAST(1 AS DOUBLE) AS a, CAST(2 AS DOUBLE) AS b');
        await importSnapshot(host, heldModel('main', graph, sha256(ALICE)));
        return session;
      };
      const first = await open(ALICE);
      const second = await open(OTHER);
      try {
        const y = async (s: ModelSession) => Number((await s.sql(PREDICT)).rows[0]![0]);
        expect(await y(second)).toBeCloseTo(5, 4);
        expect(await y(first)).toBeCloseTo(3, 4);
        expect(await y(second)).toBeCloseTo(5, 4);
      } finally {
        await first.close();
        await second.close();
        await loader.close();
      }
    });
  });
}
