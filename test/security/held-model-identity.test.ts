/**
 * The runtime loader keys a catalog-held model (its bytes stored in the catalog) by the
 * identity the server gave the stored version (`ModelVersion.storedId`), not by what its
 * writer chose. The proxy shares one loader between every client connection, and a
 * catalog import (or a direct call of `ml_catalog.write_version`) stores whatever
 * timestamps and checksums its caller passes: `bob`, in another database behind the same
 * proxy, or in the same database after alice's model was dropped, writes a model of the
 * same schema, name, version, timestamps and checksum as alice's, with another graph.
 * Whichever is loaded first, each database's users are served their own model, and a
 * re-import after DROP MODEL serves the new graph. The same through the library
 * (connectPostgres), with one loader shared by two sessions.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { connectPostgres, PgClientConnection, PostgresHost } from '../../adapters/postgres/index.js';
import { importSnapshot } from '../../core/catalog/catalog-import.js';
import { CATALOG_VERSION } from '../../core/catalog/catalog-store.js';
import type { CatalogSnapshot } from '../../core/catalog/catalog-snapshot.js';
import { RuntimeLoader } from '../../core/runtime/runtime-loader.js';
import { writeModelFiles } from '../support/model-files.js';
import { linearRegressorModel } from '../support/onnx-models.js';
import { serverUrl } from '../adapters/postgres/proxy-helpers.js';
import { PASSWORD, ROLE, dbUrl, proxy, rows, type RoleName } from './attack-fixture.js';

const files = writeModelFiles();
/** y at (a, b) = (1, 2): alice's graph, bob's graph, and the model's path (never read: the catalog holds the bytes). */
const ALICE = { graph: linearRegressorModel([1, 1], 0), y: 3 };
const BOB = { graph: linearRegressorModel([0, 0], 5), y: 5 };
const ALICE_AGAIN = { graph: linearRegressorModel([10, 0], 0), y: 10 };
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
/** Every model here claims alice's first graph's checksum, and these timestamps. */
const FORGED_SHA = sha256(ALICE.graph);
const CREATED = '2026-01-02 03:04:05.123';

/** A snapshot of one catalog-held ONNX model `schema.name` of `owner`, with `graph` as its bytes under a chosen checksum. */
function heldModel(schema: string, name: string, owner: string, graph: Uint8Array, grants: readonly string[] = []): CatalogSnapshot {
  return {
    layout: CATALOG_VERSION,
    models: [
      {
        schema,
        name,
        defaultVersion: 1,
        owner,
        createdAt: CREATED,
        updatedAt: CREATED,
        grants: grants.map((role) => ({ role, privilege: 'USAGE' as const })),
        versions: [
          {
            version: 1,
            provider: 'onnx',
            input: [{ name: 'a', type: 'DOUBLE' }, { name: 'b', type: 'DOUBLE' }],
            output: [{ name: 'y', type: 'DOUBLE' }],
            options: [['provider', 'onnx'], ['path', files.linear]],
            createdAt: CREATED,
            secrets: [],
            artifacts: [{ name: 'model.onnx', sha256: FORGED_SHA, size: graph.byteLength, content: graph }],
            metrics: [],
          },
        ],
      },
    ],
  };
}

/** `url` as `role`. */
function urlAs(url: string, role: RoleName, via: 'direct' | 'proxy'): string {
  const u = new URL(url);
  u.username = ROLE[role];
  u.password = PASSWORD;
  if (via === 'proxy') u.host = `127.0.0.1:${proxy.port}`;
  return u.toString();
}

/** Imports `snapshot` as `role` into the database of `url` (the catalog's write functions, called by a library connection of that role). */
async function importAs(url: string, role: RoleName, snapshot: CatalogSnapshot): Promise<void> {
  const host = new PostgresHost(await PgClientConnection.connect(urlAs(url, role, 'direct')));
  try {
    await importSnapshot(host, snapshot);
  } finally {
    await host.close();
  }
}

/** y of `model` at (1, 2), predicted through the proxy by `role` connected to the database of `url`. */
async function predictVia(url: string, role: RoleName, model: string): Promise<number> {
  const c = new pg.Client({ connectionString: urlAs(url, role, 'proxy') });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return Number((await rows(c, `SELECT y FROM ML_PREDICT(TABLE public.pts, MODEL ${model}, DESCRIPTOR(a, b)) AS p`))[0]![0]);
  } finally {
    await c.end();
  }
}

/** Runs `sql` through the proxy as `role` in the database of `url`. */
async function sqlVia(url: string, role: RoleName, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: urlAs(url, role, 'proxy') });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A second database on the same server as the fixture's, where bob may create schemas (and the catalog). */
let otherUrl: string;

beforeAll(async () => {
  const other = `modelsql_other_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${other}`);
    await admin.query(`GRANT CONNECT, CREATE ON DATABASE ${other} TO ${ROLE.bob}`);
  } finally {
    await admin.end();
  }
  const u = new URL(dbUrl);
  u.pathname = `/${other}`;
  otherUrl = u.toString();
  for (const url of [dbUrl, otherUrl]) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query('CREATE TABLE public.pts AS SELECT CAST(1 AS double precision) AS a, CAST(2 AS double precision) AS b');
      await c.query('GRANT SELECT ON public.pts TO PUBLIC');
    } finally {
      await c.end();
    }
  }
  // bob's database: a schema of the name of alice's (and the catalog, created by bob).
  const bob = new pg.Client({ connectionString: urlAs(otherUrl, 'bob', 'direct') });
  await bob.connect();
  try {
    await bob.query('CREATE SCHEMA alices');
  } finally {
    await bob.end();
  }
}, 120_000);

describe('through the proxy (one runtime loader for every connection)', () => {
  it("serves each database's users their own model when alice's is loaded first", async () => {
    await importAs(dbUrl, 'alice', heldModel('alices', 'first_alice', ROLE.alice, ALICE.graph));
    await importAs(otherUrl, 'bob', heldModel('alices', 'first_alice', ROLE.bob, BOB.graph));
    expect(await predictVia(dbUrl, 'alice', 'alices.first_alice')).toBeCloseTo(ALICE.y, 4);
    expect(await predictVia(otherUrl, 'bob', 'alices.first_alice')).toBeCloseTo(BOB.y, 4);
    expect(await predictVia(dbUrl, 'alice', 'alices.first_alice')).toBeCloseTo(ALICE.y, 4);
  });

  it("serves each database's users their own model when bob's is loaded first", async () => {
    await importAs(dbUrl, 'alice', heldModel('alices', 'first_bob', ROLE.alice, ALICE.graph));
    await importAs(otherUrl, 'bob', heldModel('alices', 'first_bob', ROLE.bob, BOB.graph));
    expect(await predictVia(otherUrl, 'bob', 'alices.first_bob')).toBeCloseTo(BOB.y, 4);
    expect(await predictVia(dbUrl, 'alice', 'alices.first_bob')).toBeCloseTo(ALICE.y, 4);
    expect(await predictVia(otherUrl, 'bob', 'alices.first_bob')).toBeCloseTo(BOB.y, 4);
  });

  it('serves the new graph after DROP MODEL and a re-import with the same metadata', async () => {
    await importAs(dbUrl, 'alice', heldModel('alices', 'reimported', ROLE.alice, ALICE.graph));
    expect(await predictVia(dbUrl, 'alice', 'alices.reimported')).toBeCloseTo(ALICE.y, 4);
    await sqlVia(dbUrl, 'alice', 'DROP MODEL alices.reimported');
    await importAs(dbUrl, 'alice', heldModel('alices', 'reimported', ROLE.alice, ALICE_AGAIN.graph));
    expect(await predictVia(dbUrl, 'alice', 'alices.reimported')).toBeCloseTo(ALICE_AGAIN.y, 4);
  });

  it("serves another role's re-import of a dropped model's name its own graph, not the dropped model's", async () => {
    // alice's model in public (where bob may create too), loaded; she drops it; bob writes the name again.
    await importAs(dbUrl, 'alice', heldModel('public', 'taken_over', ROLE.alice, ALICE.graph));
    expect(await predictVia(dbUrl, 'alice', 'public.taken_over')).toBeCloseTo(ALICE.y, 4);
    await sqlVia(dbUrl, 'alice', 'DROP MODEL public.taken_over');
    await importAs(dbUrl, 'bob', heldModel('public', 'taken_over', ROLE.bob, BOB.graph, [ROLE.alice]));
    expect(await predictVia(dbUrl, 'bob', 'public.taken_over')).toBeCloseTo(BOB.y, 4);
    expect(await predictVia(dbUrl, 'alice', 'public.taken_over')).toBeCloseTo(BOB.y, 4);
  });

  it("keys a model written by a direct call of ml_catalog.write_version in another database by its row, not by the checksum it claims", async () => {
    await importAs(dbUrl, 'alice', heldModel('alices', 'direct_write', ROLE.alice, ALICE.graph));
    expect(await predictVia(dbUrl, 'alice', 'alices.direct_write')).toBeCloseTo(ALICE.y, 4);
    // bob writes the name by hand in his database: the same version, timestamps and checksum, his graph.
    const bob = new pg.Client({ connectionString: urlAs(otherUrl, 'bob', 'direct') });
    await bob.connect();
    try {
      await bob.query(
        `SELECT ml_catalog.write_version($1, $2, NULL, 1, CAST($3 AS timestamp), CAST($3 AS timestamp), 1, 'onnx', NULL, $4, $5, $6, NULL, NULL, CAST($3 AS timestamp),
           ARRAY['model.onnx'], ARRAY[CAST($7 AS bytea)], ARRAY[CAST($8 AS text)], CAST(ARRAY[] AS text[]), CAST(ARRAY[] AS double precision[]), CAST(ARRAY[] AS text[]), CAST(ARRAY[] AS text[]))`,
        ['alices', 'direct_write', CREATED, '[{"name":"a","type":"DOUBLE"},{"name":"b","type":"DOUBLE"}]', '[{"name":"y","type":"DOUBLE"}]', JSON.stringify([['provider', 'onnx'], ['path', files.linear]]), Buffer.from(BOB.graph), FORGED_SHA],
      );
    } finally {
      await bob.end();
    }
    expect(await predictVia(otherUrl, 'bob', 'alices.direct_write')).toBeCloseTo(BOB.y, 4);
    expect(await predictVia(dbUrl, 'alice', 'alices.direct_write')).toBeCloseTo(ALICE.y, 4);
  });
});

describe('through the library (connectPostgres), one loader shared by two sessions', () => {
  it("serves each session its own database's model, whichever is loaded first", async () => {
    await importAs(dbUrl, 'alice', heldModel('alices', 'library_m', ROLE.alice, ALICE.graph));
    await importAs(otherUrl, 'bob', heldModel('alices', 'library_m', ROLE.bob, BOB.graph));
    const loader = new RuntimeLoader({});
    const alice = await connectPostgres(urlAs(dbUrl, 'alice', 'direct'), { runtimeLoader: loader });
    const bob = await connectPostgres(urlAs(otherUrl, 'bob', 'direct'), { runtimeLoader: loader });
    try {
      const y = async (session: typeof alice) => Number((await session.sql('SELECT y FROM ML_PREDICT(TABLE public.pts, MODEL alices.library_m, DESCRIPTOR(a, b))')).rows[0]![0]);
      expect(await y(bob)).toBeCloseTo(BOB.y, 4);
      expect(await y(alice)).toBeCloseTo(ALICE.y, 4);
      expect(await y(bob)).toBeCloseTo(BOB.y, 4);
    } finally {
      await alice.close();
      await bob.close();
      await loader.close();
    }
  });

  it('serves the new graph after DROP MODEL and a re-import with the same metadata in one session', async () => {
    await importAs(dbUrl, 'alice', heldModel('alices', 'library_again', ROLE.alice, ALICE.graph));
    const alice = await connectPostgres(urlAs(dbUrl, 'alice', 'direct'));
    try {
      const y = async () => Number((await alice.sql('SELECT y FROM ML_PREDICT(TABLE public.pts, MODEL alices.library_again, DESCRIPTOR(a, b))')).rows[0]![0]);
      expect(await y()).toBeCloseTo(ALICE.y, 4);
      await alice.sql('DROP MODEL alices.library_again');
      await importAs(dbUrl, 'alice', heldModel('alices', 'library_again', ROLE.alice, ALICE_AGAIN.graph));
      expect(await y()).toBeCloseTo(ALICE_AGAIN.y, 4);
    } finally {
      await alice.close();
    }
  });
});
