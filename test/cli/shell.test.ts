import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ResultPrinter } from '../../cli/format.js';
import { ProgressReporter } from '../../cli/progress.js';
import { CONTINUATION_PROMPT, defaultHistoryFile, loadHistory, PROMPT, runShell, saveHistory } from '../../cli/shell.js';
import { executeScript } from '../../cli/script-runner.js';
import { ModelSqlError, QueryCanceledError } from '../../core/errors.js';
import type { Session, SessionEvents } from '../../core/session/session.js';
import type { QueryResult } from '../../core/model-types.js';

/** A session that answers `select N` with N, fails on `fail`, and waits for cancel() on `slow`. */
class FakeSession implements Session {
  readonly events = new EventEmitter<SessionEvents>();
  readonly texts: string[] = [];
  cancels = 0;
  private wake?: () => void;

  async sql(text: string): Promise<QueryResult> {
    let last: QueryResult | undefined;
    for await (const r of this.run(text)) last = r;
    return last ?? { command: 'EMPTY', columns: [], rows: [] };
  }

  async *run(text: string): AsyncIterable<QueryResult> {
    this.texts.push(text);
    for (const stmt of text.split(';').map((s) => s.trim()).filter(Boolean)) {
      if (stmt === 'fail') throw new ModelSqlError('42601', 'syntax error at or near "fail"', { position: { offset: 0, line: 1, column: 1 }, sqlText: 'fail' });
      if (stmt === 'slow') {
        await new Promise<void>((resolve) => (this.wake = resolve));
        throw new QueryCanceledError();
      }
      if (stmt.startsWith('create')) {
        yield { command: 'CREATE MODEL', columns: [], rows: [] };
        continue;
      }
      const n = /select\s+(\d+)/s.exec(stmt)?.[1] ?? '0';
      yield { command: 'SELECT', columns: [{ name: 'n', type: 'INTEGER' }], rows: [[Number(n)]] };
    }
  }

  async *stream(): AsyncIterable<never> {
    // not used by the shell
  }

  cancel(): void {
    this.cancels++;
    this.wake?.();
  }

  async close(): Promise<void> {}
}

class Terminal {
  readonly input = new PassThrough();
  readonly output = new PassThrough();
  text = '';
  constructor() {
    this.output.on('data', (chunk: Buffer) => (this.text += chunk.toString('utf8')));
  }
  type(keys: string): void {
    this.input.write(keys);
  }
  async until(predicate: (text: string) => boolean): Promise<void> {
    for (let i = 0; i < 200 && !predicate(this.text); i++) await new Promise((r) => setTimeout(r, 10));
    if (!predicate(this.text)) throw new Error(`timed out; output so far:\n${this.text}`);
  }
}

describe('executeScript', () => {
  it('prints every result and stops at the first error', async () => {
    const session = new FakeSession();
    let out = '';
    let err = '';
    const ok = await executeScript(session, 'select 1; fail; select 2;', {
      printer: new ResultPrinter((s) => (out += s), 'json'),
      writeError: (s) => (err += s),
    });
    expect(ok).toBe(false);
    expect(out).toBe('[{"n":1}]\n');
    expect(err).toBe('ERROR:  42601: syntax error at or near "fail"\nLINE 1: fail\n        ^\n');
  });
});

describe('history file', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'modelsql-history-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults to ~/.modelsql_history, MODELSQL_HISTORY overrides, empty turns it off', () => {
    expect(defaultHistoryFile({})).toMatch(/\.modelsql_history$/);
    expect(defaultHistoryFile({ MODELSQL_HISTORY: '/x/h' })).toBe('/x/h');
    expect(defaultHistoryFile({ MODELSQL_HISTORY: '' })).toBeUndefined();
  });

  it('round-trips oldest first on disk, newest first in memory, owner-only', () => {
    const file = join(dir, 'h');
    saveHistory(file, ['newest', 'older', 'oldest']);
    expect(readFileSync(file, 'utf8')).toBe('oldest\nolder\nnewest\n');
    expect(statSync(file).mode & 0o077).toBe(0);
    expect(loadHistory(file)).toEqual(['newest', 'older', 'oldest']);
    expect(loadHistory(join(dir, 'missing'))).toEqual([]);
  });
});

describe('runShell (terminal)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'modelsql-shell-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('runs multi-line statements, keeps history and quits with .quit', async () => {
    const historyFile = join(dir, 'history');
    writeFileSync(historyFile, 'select 0;\n');
    const session = new FakeSession();
    const term = new Terminal();
    const done = runShell({ session, input: term.input, output: term.output, terminal: true, historyFile });
    await term.until((t) => t.includes(PROMPT));
    term.type('select\r');
    await term.until((t) => t.includes(CONTINUATION_PROMPT));
    term.type('  7;\r');
    await term.until((t) => t.includes('(1 row)'));
    expect(session.texts).toEqual(['select\n  7;']);
    expect(term.text).toMatch(/│ 7 │/);
    term.type('fail;\r');
    await term.until((t) => t.includes('ERROR:  42601'));
    term.type('.format json\r');
    term.type('select 3;\r');
    await term.until((t) => t.includes('[{"n":3}]'));
    term.type('.quit\r');
    await expect(done).resolves.toBe(0);
    expect(readFileSync(historyFile, 'utf8').split('\n')).toEqual(['select 0;', 'select', '  7;', 'fail;', '.format json', 'select 3;', '.quit', '']);
  });

  it('Ctrl-C clears the input; Ctrl-C while running cancels; Ctrl-D leaves', async () => {
    const session = new FakeSession();
    const term = new Terminal();
    const done = runShell({ session, input: term.input, output: term.output, terminal: true });
    await term.until((t) => t.includes(PROMPT));
    term.type('select 1\r');
    await term.until((t) => t.includes(CONTINUATION_PROMPT));
    term.type('half typed\x03');
    term.type('select 5;\r');
    await term.until((t) => t.includes('│ 5 │'));
    expect(session.texts).toEqual(['select 5;']);

    term.type('slow;\r');
    await term.until(() => session.texts.length === 2);
    term.type('\x03');
    await term.until((t) => t.includes('57014'));
    expect(session.cancels).toBe(1);

    term.type('\x04');
    await expect(done).resolves.toBe(0);
  });

  it('prints command tags and help, and rejects unknown commands', async () => {
    const session = new FakeSession();
    const term = new Terminal();
    const done = runShell({ session, input: term.input, output: term.output, terminal: true });
    term.type('create model m;\r');
    await term.until((t) => t.includes('CREATE MODEL'));
    term.type('.help\r');
    await term.until((t) => t.includes('.mode [table|csv|json|line]'));
    term.type('.nope\r');
    await term.until((t) => t.includes('unknown command ".nope"'));
    term.type('\\q\r');
    await expect(done).resolves.toBe(0);
  });
});

describe('ProgressReporter', () => {
  const event = (rowsDone: number, rowsTotal: number | undefined, finished = false) => ({ model: 'm', rowsDone, rowsTotal, rate: 100, errors: 0, finished });

  function fakeStderr(isTTY: boolean): { stream: NodeJS.WriteStream; text: () => string } {
    let text = '';
    const stream = Object.assign(new PassThrough(), { isTTY, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
    stream.on('data', (c: Buffer) => (text += c.toString()));
    return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
  }

  it('shows nothing for small or fast stages, or when stderr is not a terminal', () => {
    let now = 0;
    for (const [tty, total, elapsed] of [
      [true, 500, 2_000],
      [true, 50_000, 500],
      [false, 50_000, 10_000],
    ] as const) {
      const session = new FakeSession();
      const { stream } = fakeStderr(tty);
      const progress = new ProgressReporter(session, { stream, now: () => now });
      now = 0;
      session.events.emit('progress', event(0, total));
      now = elapsed;
      session.events.emit('progress', event(10, total));
      expect(progress.active).toBe(false);
      progress.dispose();
    }
  });

  it('shows a bar for a long large stage, and for any stage after 5 s, and clears it at the end', () => {
    let now = 0;
    const session = new FakeSession();
    const { stream } = fakeStderr(true);
    const progress = new ProgressReporter(session, { stream, now: () => now });
    session.events.emit('progress', event(0, 20_000));
    now = 1_500;
    session.events.emit('progress', event(5_000, 20_000));
    expect(progress.active).toBe(true);
    session.events.emit('progress', event(20_000, 20_000, true));
    expect(progress.active).toBe(false);

    now = 0;
    session.events.emit('progress', event(0, 50));
    now = 6_000;
    session.events.emit('progress', event(10, 50));
    expect(progress.active).toBe(true);
    progress.dispose();
    expect(progress.active).toBe(false);
    expect(session.events.listenerCount('progress')).toBe(0);
  });
});
