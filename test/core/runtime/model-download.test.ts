/**
 * Model downloads are bounded (docs/security.md, "Model downloads"), against a loopback
 * HTTP server: the byte limit at and one past it, with and without a declared length; a
 * never-ending body; a server that stops sending; a wrong `sha256`; a cancelled download.
 * Every failure leaves nothing in the cache directory, and the server sees its socket closed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadModelBytes } from '../../../core/runtime/onnx-model.js';
import { expectSqlError } from '../../support/expect-error.js';

const LIMIT = 256 * 1024;
const body = (n: number): Buffer => Buffer.alloc(n, 7);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let server: http.Server;
let base: string;
const open = new Set<Socket>();
let closedSockets = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const size = Number(url.searchParams.get('size') ?? '0');
    switch (url.pathname) {
      case '/sized': // with content-length
      case '/chunked': {
        // no content-length for /chunked: the limit is found while reading
        res.writeHead(200, url.pathname === '/sized' ? { 'content-length': String(size) } : {});
        let sent = 0;
        const more = (): void => {
          while (sent < size) {
            const n = Math.min(64 * 1024, size - sent);
            sent += n;
            if (!res.write(body(n))) return;
          }
          res.end();
        };
        res.on('drain', more);
        more();
        return;
      }
      case '/endless': {
        res.writeHead(200);
        const more = (): void => {
          while (res.write(body(64 * 1024)));
        };
        res.on('drain', more);
        more();
        return;
      }
      case '/stalls': // the headers and a few bytes, then nothing
        res.writeHead(200);
        res.write(body(10));
        return;
      case '/silent': // not even the headers
        return;
      default:
        res.writeHead(404).end();
    }
  });
  server.on('connection', (socket) => {
    open.add(socket);
    socket.on('close', () => {
      open.delete(socket);
      closedSockets++;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of open) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** A fresh cache directory. */
const cache = (): string => path.join(mkdtempSync(path.join(tmpdir(), 'modelsql-dl-')), 'cache');

/** Files in the cache directory other than what a finished download leaves (`<sha>.onnx`, `index.json`). */
function leftovers(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => !/^[0-9a-f]{64}\.onnx$/.test(n) && n !== 'index.json');
}

/** Resolves once the server has no open socket (the download's socket was closed). */
async function socketsClosed(): Promise<void> {
  while (open.size > 0) await new Promise((r) => setTimeout(r, 10));
}

describe('model download limits', () => {
  for (const kind of ['sized', 'chunked'] as const) {
    test(`${kind}: a model of exactly maxModelBytes is cached; one byte more is 54000 and leaves nothing`, async () => {
      const dir = cache();
      const at = await loadModelBytes(`${base}/${kind}?size=${LIMIT}`, { cacheDir: dir, maxModelBytes: LIMIT });
      expect(at.byteLength).toBe(LIMIT);
      expect(readdirSync(dir).sort()).toEqual([`${sha(at)}.onnx`, 'index.json']);
      const past = cache();
      const message = kind === 'sized' ? new RegExp(`is ${LIMIT + 1} bytes, over this server's limit of ${LIMIT} bytes \\(--max-model-bytes\\)`) : /is more than 262144 bytes, over this server's limit/;
      await expectSqlError(loadModelBytes(`${base}/${kind}?size=${LIMIT + 1}`, { cacheDir: past, maxModelBytes: LIMIT }), '54000', message);
      expect(readdirSync(past)).toEqual([]);
      await socketsClosed();
    });
  }

  test('a never-ending body stops at the limit: 54000, no partial file, the socket closed', async () => {
    const dir = cache();
    const before = closedSockets;
    await expectSqlError(loadModelBytes(`${base}/endless`, { cacheDir: dir, maxModelBytes: 4 * 1024 * 1024 }), '54000', /more than 4194304 bytes/);
    expect(readdirSync(dir)).toEqual([]);
    await socketsClosed();
    expect(closedSockets).toBeGreaterThan(before);
  });

  test('a 1 GiB body is refused by its declared length before it is read', async () => {
    const dir = cache();
    // With a 64 MiB limit, the declared 1 GiB is refused at the headers: nothing is written.
    await expectSqlError(loadModelBytes(`${base}/sized?size=${1024 ** 3}`, { cacheDir: dir, maxModelBytes: 64 * 1024 * 1024 }), '54000', /is 1073741824 bytes/);
    expect(leftovers(dir)).toEqual([]);
  });

  test('a 1 GiB body without a declared length is streamed to disk up to the limit, never held in memory', async () => {
    const dir = cache();
    const rss = process.memoryUsage().rss;
    await expectSqlError(loadModelBytes(`${base}/chunked?size=${1024 ** 3}`, { cacheDir: dir, maxModelBytes: 64 * 1024 * 1024 }), '54000', /more than 67108864 bytes/);
    expect(readdirSync(dir)).toEqual([]);
    // Loose: the 64 MiB read went to a file, not to a buffer of the whole body.
    expect(process.memoryUsage().rss - rss).toBeLessThan(256 * 1024 * 1024);
    await socketsClosed();
  });

  test('a server that stops sending, or never answers, is given up after the idle timeout (58030), leaving nothing', async () => {
    const dir = cache();
    await expectSqlError(loadModelBytes(`${base}/stalls`, { cacheDir: dir, idleTimeoutMs: 200 }), '58030', /no data for 200 ms/);
    await expectSqlError(loadModelBytes(`${base}/silent`, { cacheDir: dir, idleTimeoutMs: 200 }), '58030', /no data for 200 ms/);
    expect(leftovers(dir)).toEqual([]);
    await socketsClosed();
  });

  test('a cancelled download stops at once: 57014, no partial file', async () => {
    const dir = cache();
    const controller = new AbortController();
    const loading = loadModelBytes(`${base}/stalls`, { cacheDir: dir, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expectSqlError(loading, '57014');
    expect(leftovers(dir)).toEqual([]);
    await socketsClosed();
  });

  test("'sha256': a matching download is cached; a mismatch is 58030 and never enters the cache; a local file is checked too", async () => {
    const dir = cache();
    const good = sha(body(1000));
    expect((await loadModelBytes(`${base}/sized?size=1000`, { cacheDir: dir, sha256: good })).byteLength).toBe(1000);
    const other = cache();
    await expectSqlError(loadModelBytes(`${base}/sized?size=1001`, { cacheDir: other, sha256: good }), '58030', new RegExp(`has SHA-256 ${sha(body(1001))}, not the ${good} its 'sha256' option expects`));
    expect(readdirSync(other)).toEqual([]);
    // A cached download under the same URL with another hash is not taken for the wanted one.
    await expectSqlError(loadModelBytes(`${base}/sized?size=1000`, { cacheDir: dir, sha256: sha(body(1)) }), '58030', /SHA-256/);
    const local = path.join(mkdtempSync(path.join(tmpdir(), 'modelsql-dl-')), 'm.onnx');
    writeFileSync(local, body(1000));
    expect((await loadModelBytes(local, { cacheDir: dir, sha256: good.toUpperCase() })).byteLength).toBe(1000);
    await expectSqlError(loadModelBytes(local, { cacheDir: dir, sha256: sha(body(1)) }), '58030', /SHA-256/);
  });

  test('a local model file over maxModelBytes is 54000; at it, it loads', async () => {
    const local = path.join(mkdtempSync(path.join(tmpdir(), 'modelsql-dl-')), 'm.onnx');
    writeFileSync(local, body(1000));
    expect((await loadModelBytes(local, { cacheDir: cache(), maxModelBytes: 1000 })).byteLength).toBe(1000);
    await expectSqlError(loadModelBytes(local, { cacheDir: cache(), maxModelBytes: 999 }), '54000', /is 1000 bytes, over this server's limit of 999 bytes/);
  });

  test('a device or a pipe as a model file (its size says nothing; /dev/zero never ends) is 58030, read not at all', async () => {
    await expectSqlError(loadModelBytes('/dev/zero', { cacheDir: cache(), maxModelBytes: 1000 }), '58030', /"\/dev\/zero" is not a regular file/);
    const dir = mkdtempSync(path.join(tmpdir(), 'modelsql-dl-'));
    const fifo = path.join(dir, 'm.onnx');
    execFileSync('mkfifo', [fifo]);
    await expectSqlError(loadModelBytes(fifo, { cacheDir: cache(), maxModelBytes: 1000 }), '58030', /is not a regular file/);
  });
});
