/**
 * A client that shuts its sending side (a half-close, as `nc -N` or a script piping its
 * statements does) after its last message: Postgres still answers every message it read,
 * then ends the session. Through the proxy the same must hold, for relayed statements, for
 * model statements the proxy answers itself, and across the native relay; an extended batch
 * without its Sync is rolled back, as Postgres rolls it back. Each case runs straight
 * against Postgres too, and the two must agree. So for a Terminate pipelined behind
 * statements (the end of input too), and for statements pipelined behind the startup and
 * password. A half-closed connection counts as open until its socket closes, and the
 * proxy's own close does not wait for one that does not read.
 */
import { bind, cancelRequest, execute, parse, SYNC, TERMINATE } from '../../../adapters/postgres/proxy/message-builders.js';
import { LINEAR, writeModelFiles } from '../../support/model-files.js';
import { createPointsAndModel, dataRowNumbers, errorCodes, eventually, messageTypes, proxyFixture, queryMessage, rawClient, startupPacket, takeOverClient, type ProxyFixture, type RawClient } from './proxy-helpers.js';

/** A proxy with its default relay (native where built) and one that relays in JavaScript, each over a database of its own. */
const fixtures: Record<'auto' | 'js', ProxyFixture | undefined> = { auto: undefined, js: undefined };

beforeAll(async () => {
  const linear = writeModelFiles().linear;
  for (const relay of ['auto', 'js'] as const) {
    const fx = await proxyFixture({ metrics: 0, relay });
    fixtures[relay] = fx;
    const c = await fx.client();
    await createPointsAndModel(c, linear);
    await c.query('CREATE TABLE sink (v int)');
  }
});

afterAll(async () => {
  for (const fx of Object.values(fixtures)) await fx?.close();
});

type Way = 'direct' | 'auto' | 'js';

/** Sends `bytes` on a logged-in raw connection, shuts the sending side, and returns all that came back before the server side closed. */
async function sendThenHalfClose(bytes: Buffer, way: Way): Promise<Buffer> {
  const raw: RawClient = await takeOverClient(fixtures[way === 'js' ? 'js' : 'auto']!, { direct: way === 'direct' });
  raw.socket.end(bytes);
  await raw.closed;
  // The first ReadyForQuery stands for the login (takeOverClient).
  return raw.received().subarray(6);
}

const ways = [
  ['directly', 'direct'],
  ['through the proxy', 'auto'],
  ['through the proxy, JavaScript relay', 'js'],
] as const;

describe.each(ways)('half-close after the last message, %s', (_how, way) => {
  it('answers a statement still running when the client shut its side', async () => {
    const answer = await sendThenHalfClose(queryMessage('SELECT 42 FROM pg_sleep(0.3)'), way);
    expect(messageTypes(answer)).toBe('TDCZ');
    expect(dataRowNumbers(answer)).toEqual([42]);
  });

  it('answers every pipelined statement, in order', async () => {
    const answer = await sendThenHalfClose(Buffer.concat([1, 2, 3].map((n) => queryMessage(`SELECT ${n} FROM pg_sleep(0.05)`))), way);
    expect(messageTypes(answer)).toBe('TDCZ'.repeat(3));
    expect(dataRowNumbers(answer)).toEqual([1, 2, 3]);
  });

  it('delivers a large answer whole before closing', async () => {
    const answer = await sendThenHalfClose(queryMessage('SELECT i FROM generate_series(1, 200000) i'), way);
    const numbers = dataRowNumbers(answer);
    expect(numbers.length).toBe(200_000);
    expect(numbers[199_999]).toBe(200_000);
    expect(messageTypes(answer.subarray(answer.length - 6))).toBe('Z');
  });

  it('answers a synced batch and rolls back the unsynced one after it', async () => {
    const marker = { direct: 111, auto: 222, js: 333 }[way];
    const synced = [parse('', `INSERT INTO sink VALUES (${marker})`), bind('', '', []), execute(''), SYNC];
    const unsynced = [parse('', `INSERT INTO sink VALUES (${marker + 1})`), bind('', '', []), execute('')];
    const answer = await sendThenHalfClose(Buffer.concat([...synced, ...unsynced]), way);
    expect(messageTypes(answer)).toBe('12CZ');
    const check = await fixtures[way === 'js' ? 'js' : 'auto']!.direct();
    const { rows } = await check.query('SELECT v FROM sink WHERE v IN ($1, $2) ORDER BY v', [marker, marker + 1]);
    expect(rows).toEqual([{ v: marker }]);
  });

  it('rolls back an extended batch that never got its Sync', async () => {
    const marker = { direct: 101, auto: 202, js: 303 }[way];
    const answer = await sendThenHalfClose(Buffer.concat([parse('', `INSERT INTO sink VALUES (${marker})`), bind('', '', []), execute('')]), way);
    expect(messageTypes(answer)).not.toMatch(/[CZ]/);
    const check = await fixtures[way === 'js' ? 'js' : 'auto']!.direct();
    const { rows } = await check.query('SELECT count(*)::int AS n FROM sink WHERE v = $1', [marker]);
    expect(rows[0].n).toBe(0);
  });

  it('answers (and does not cancel) a statement pipelined before a Terminate', async () => {
    const marker = { direct: 121, auto: 232, js: 343 }[way];
    const raw = await takeOverClient(fixtures[way === 'js' ? 'js' : 'auto']!, { direct: way === 'direct' });
    // Not half-closed: Terminate is the end of input by itself.
    raw.socket.write(Buffer.concat([queryMessage(`INSERT INTO sink SELECT ${marker} FROM pg_sleep(0.2)`), TERMINATE]));
    await raw.closed;
    expect(messageTypes(raw.received().subarray(6))).toBe('CZ');
    const check = await fixtures[way === 'js' ? 'js' : 'auto']!.direct();
    const { rows } = await check.query('SELECT count(*)::int AS n FROM sink WHERE v = $1', [marker]);
    expect(rows[0].n).toBe(1);
  });

  it('answers the startup, the password and a statement sent in one write before the half-close', async () => {
    const fx = fixtures[way === 'js' ? 'js' : 'auto']!;
    const url = new URL(fx.directUrl);
    const password = Buffer.from(`p\0\0\0\0${decodeURIComponent(url.password)}\0`);
    password.writeInt32BE(password.length - 1, 1);
    const bytes = Buffer.concat([startupPacket(url.username, url.pathname.slice(1)), password, queryMessage('SELECT 42')]);
    const send = async (port: number): Promise<Buffer> => {
      const raw = await rawClient(port);
      raw.socket.end(bytes);
      await raw.closed;
      return raw.received();
    };
    const answer = await send(way === 'direct' ? Number(url.port) : fx.proxy.port);
    // The same bytes straight to Postgres: the proxy answers as it does, whatever it asks for.
    expect(messageTypes(answer)).toBe(messageTypes(await send(Number(url.port))));
    // A server that asks for the password in clear text (AuthenticationCleartextPassword, the
    // run's embedded one) takes it sent ahead and answers the statement; MD5 and SCRAM need
    // the server's salt first, so there the password sent ahead is refused by both.
    if (answer.readInt32BE(5) === 3) {
      expect(messageTypes(answer)).toMatch(/^RR(S+)KZTDCZ$/);
      expect(dataRowNumbers(answer)).toEqual([42]);
    } else {
      expect(messageTypes(answer)).toBe('RE');
    }
  });

  it('refuses a statement sent instead of the password before the half-close, at once', async () => {
    const fx = fixtures[way === 'js' ? 'js' : 'auto']!;
    const url = new URL(fx.directUrl);
    const raw = await rawClient(way === 'direct' ? Number(url.port) : fx.proxy.port);
    const started = Date.now();
    raw.socket.end(Buffer.concat([startupPacket(url.username, url.pathname.slice(1)), queryMessage('SELECT 42')]));
    await raw.closed;
    // Postgres reads the Query as the password response: "expected password response, got message type 81".
    expect(messageTypes(raw.received())).toBe('RE');
    expect(errorCodes(raw.received())).toEqual(['08P01']);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe.each([
  ['through the proxy', 'auto'],
  ['through the proxy, JavaScript relay', 'js'],
] as const)('half-close %s', (_how, way) => {
  it('answers a model statement the proxy runs itself, then closes', async () => {
    const answer = await sendThenHalfClose(queryMessage('SELECT (y * 1000)::int FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) ORDER BY id'), way);
    expect(messageTypes(answer)).toBe(`T${'D'.repeat(20)}CZ`);
    const expected = Array.from({ length: 20 }, (_, k) => Math.round((LINEAR.weights[0] * (k + 1) * 0.5 + LINEAR.weights[1] * (10 - (k + 1)) + LINEAR.bias) * 1000));
    expect(dataRowNumbers(answer)).toEqual(expected);
  });

  it('answers a relayed statement queued behind a model statement', async () => {
    const answer = await sendThenHalfClose(Buffer.concat([queryMessage('SELECT count(*)::int FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b))'), queryMessage('SELECT 7')]), way);
    expect(messageTypes(answer)).toBe('TDCZTDCZ');
    expect(dataRowNumbers(answer)).toEqual([20, 7]);
  });

  it('answers a model statement of an extended batch', async () => {
    const sql = 'SELECT (y * 1000)::int FROM ML_PREDICT(TABLE pts, MODEL lin, DESCRIPTOR(a, b)) WHERE id <= $1 ORDER BY id';
    const answer = await sendThenHalfClose(Buffer.concat([parse('', sql), bind('', '', ['3']), execute(''), SYNC]), way);
    expect(messageTypes(answer)).toBe('12DDDCZ');
    expect(dataRowNumbers(answer)).toEqual([27_000, 25_000, 23_000]);
  });

  it('closes at once a session with nothing in flight', async () => {
    const raw = await takeOverClient(fixtures[way]!);
    raw.socket.end();
    await raw.closed;
    expect(raw.received().length).toBe(6);
  });

  it('counts half-closed sessions and CancelRequest connections as closed once their sockets are', async () => {
    const fx = fixtures[way]!;
    const before = fx.proxy.connections;
    const raw = await takeOverClient(fx);
    raw.socket.end(queryMessage('SELECT 1'));
    await raw.closed;
    const cancel = await rawClient(fx.proxy.port);
    cancel.socket.end(cancelRequest(1, Buffer.alloc(4)));
    await cancel.closed;
    await eventually(async () => fx.proxy.connections === before, 5000, `${before} connections`);
  });
});

test('the proxy’s close does not wait for a half-closed client that does not read its answer', async () => {
  const fx = await proxyFixture({ metrics: 0 });
  try {
    const raw = await takeOverClient(fx);
    raw.socket.pause();
    raw.socket.end(queryMessage(`SELECT repeat('x', 1000) FROM generate_series(1, 200000)`));
    // The answer fills the socket buffers both ways.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = Date.now();
    await fx.proxy.close();
    expect(Date.now() - started).toBeLessThan(3000);
    raw.socket.destroy();
  } finally {
    await fx.close();
  }
});
