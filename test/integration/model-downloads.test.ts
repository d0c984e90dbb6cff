/**
 * A model URL downloaded when a query first runs the model stops with the statement: a
 * cancel (every adapter) or Postgres's `statement_timeout` ends the download with 57014,
 * leaves no partial file in the cache, and closes the socket (docs/security.md, "Model downloads").
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADAPTERS } from '../support/adapters.js';
import { expectSqlError } from '../support/expect-error.js';
import { writeModelFiles } from '../support/model-files.js';

const files = writeModelFiles();
let server: Server;
let base: string;
/** When set, model requests get their headers and then nothing more. */
let stall = false;
const sockets = new Set<Socket>();

beforeAll(async () => {
  server = createServer((req, res) => {
    if (!stall) {
      res.end(readFileSync(files.linear));
      return;
    }
    res.writeHead(200);
    res.write(Buffer.alloc(16));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

for (const adapter of ADAPTERS) {
  describe(`model downloads on ${adapter.name}`, () => {
    test(`a download at query time stops with the statement (${adapter.name === 'postgres' ? 'statement_timeout' : 'cancel'}): 57014, no partial file, the socket closed`, async () => {
      const cacheDir = mkdtempSync(join(tmpdir(), 'modelsql-dl-'));
      stall = false;
      const db = await adapter.open({ cacheDir });
      try {
        await db.sql(`CREATE MODEL web INPUT (a DOUBLE, b DOUBLE) OUTPUT (y DOUBLE) WITH ('provider' = 'onnx', 'path' = '${base}/m.onnx')`);
        // The cache emptied and the server stalled: the query's own load downloads, and waits.
        rmSync(cacheDir, { recursive: true, force: true });
        stall = true;
        const query = 'SELECT * FROM ML_PREDICT(TABLE (SELECT 1.0 AS a, 2.0 AS b), MODEL web, DESCRIPTOR(a, b))';
        if (adapter.name === 'postgres') {
          await db.sql(`SET statement_timeout = '500ms'`);
          await expectSqlError(db.sql(query), '57014', /statement timeout/);
        } else {
          const running = db.sql(query);
          while (sockets.size === 0) await new Promise((r) => setTimeout(r, 10));
          db.cancel();
          await expectSqlError(running, '57014');
        }
        let left: string[] = [];
        try {
          left = readdirSync(cacheDir);
        } catch {
          // never created: nothing left either
        }
        expect(left.filter((n) => n.endsWith('.part'))).toEqual([]);
        while (sockets.size > 0) await new Promise((r) => setTimeout(r, 10));
      } finally {
        await db.close();
      }
    });
  });
}
