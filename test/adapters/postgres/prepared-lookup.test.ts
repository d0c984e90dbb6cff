/**
 * The catalog look-up and the run log every model statement sends are kept prepared on a
 * library connection (`PgClientConnection`, `Host.execute` with `repeated`): parsed once per
 * session, and sent again when the session dropped them (`DEALLOCATE`, `DISCARD ALL`, inside
 * a function) or took a name for a statement of its own.
 */
import { PgClientConnection } from '../../../adapters/postgres/pg-client-connection.js';
import { PostgresHost } from '../../../adapters/postgres/postgres-host.js';
import { ModelSession } from '../../../core/session/model-session.js';
import { ADAPTERS } from '../../support/adapters.js';
import { writeModelFiles } from '../../support/model-files.js';
import { createTestDatabase } from '../../support/postgres-server.js';

const describePg = ADAPTERS.some((a) => a.name === 'postgres') ? describe : describe.skip;
const files = writeModelFiles();
const PREDICT = 'SELECT id, y FROM ML_PREDICT(TABLE (SELECT * FROM pts WHERE id = 2), MODEL lin, DESCRIPTOR(a, b))';
/** The kept statements of the session, by their text's start: the look-up, then the run log. */
const KEPT = `SELECT pg_catalog.left(statement, 16) FROM pg_catalog.pg_prepared_statements WHERE name LIKE '\\_\\_modelsql\\_s%' ORDER BY name`;

const LOOKUP_AND_RUN = [['SELECT 1 AS kind'], ['SELECT ml_catalo']];

describePg('Postgres library connection: the catalog look-up and the run log kept prepared', () => {
  let url: string;
  let session: ModelSession;
  beforeAll(async () => {
    url = await createTestDatabase(process.env.MODELSQL_TEST_POSTGRES_URL!);
    const setup = new ModelSession(new PostgresHost(await PgClientConnection.connect(url)));
    await setup.sql('CREATE TABLE pts AS SELECT i AS id, i * 0.5::float8 AS a, 10.0::float8 - i AS b FROM generate_series(1, 5) i');
    await setup.sql(`CREATE MODEL lin INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${files.linear}')`);
    await setup.close();
  });
  beforeEach(async () => {
    session = new ModelSession(new PostgresHost(await PgClientConnection.connect(url)));
  });
  afterEach(async () => {
    await session.close();
  });

  const predicts = async () => expect((await session.sql(PREDICT)).rows).toEqual([[2, expect.any(Number)]]);

  it('parses them once per session', async () => {
    for (let i = 0; i < 3; i++) await predicts();
    expect((await session.sql(KEPT)).rows).toEqual(LOOKUP_AND_RUN);
    expect((await session.sql('SELECT count(*) FROM ml_catalog.prediction_runs')).rows).toEqual([[3n]]);
  });

  it.each([['DEALLOCATE ALL'], ['DISCARD ALL'], [`DO $$ BEGIN EXECUTE 'DEALLOCATE ALL'; END $$`]])('runs on after %s', async (drop) => {
    await predicts();
    await session.sql(drop);
    expect((await session.sql(KEPT)).rows).toEqual([]);
    await predicts();
    expect((await session.sql(KEPT)).rows).toEqual(LOOKUP_AND_RUN);
  });

  it('runs on after DEALLOCATE ALL inside a transaction block', async () => {
    await predicts();
    await session.sql('BEGIN');
    await session.sql('DEALLOCATE ALL');
    await predicts();
    await session.sql('COMMIT');
  });

  it('runs on when the session took the name for a statement of its own', async () => {
    await session.sql('PREPARE __modelsql_s1 AS SELECT 41');
    await predicts();
    await predicts();
    expect((await session.sql(KEPT)).rows).toEqual([['PREPARE __models'], ...LOOKUP_AND_RUN]);
  });
});
