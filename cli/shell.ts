/**
 * The interactive shell of the `modelsql` CLI (statements run through cli/script-runner.ts,
 * as with `modelsql run`).
 *
 * The shell reads lines with node:readline, gathers them until the text is a complete
 * statement (ends with a top-level `;`), runs it and prints each statement's result.
 * Keys: Enter continues or runs, Tab completes (cli/shell-completer.ts), Ctrl-C cancels the
 * running statement or clears the input, Ctrl-D (on an empty line) or `.quit` / `.exit` /
 * `\q` leaves. History is kept in a file. The dot commands of the DuckDB shell (`.tables`,
 * `.models`, `.mode`, `.timer`, `.read`, `.open`) and psql's `\x` are described in {@link HELP}
 * and docs/cli.md; long results go through a pager (cli/pager.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Interface } from 'node:readline';
import { formatError } from '../core/errors.js';
import type { Session } from '../core/session/session.js';
import { isStatementComplete } from '../core/sql/lexer.js';
import { EXPANDED_MODES, OUTPUT_FORMATS, ResultPrinter } from './format.js';
import type { ExpandedMode, OutputFormat } from './format.js';
import { needsPager, PAGER_MODES, runPager } from './pager.js';
import type { PagerMode } from './pager.js';
import type { ProgressReporter } from './progress.js';
import { executeScript } from './script-runner.js';
import { ShellCompleter } from './shell-completer.js';

/** The prompt before a new statement. */
export const PROMPT = 'modelsql> ';
/** The prompt of a statement's continuation lines (as wide as {@link PROMPT}). */
export const CONTINUATION_PROMPT = '     ...> ';
/** How many history entries are kept. */
export const HISTORY_SIZE = 1000;

/**
 * The history file: `$MODELSQL_HISTORY` when set (an empty value turns history off), else
 * `~/.modelsql_history`.
 */
export function defaultHistoryFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env['MODELSQL_HISTORY'];
  if (fromEnv !== undefined) return fromEnv === '' ? undefined : fromEnv;
  return join(homedir(), '.modelsql_history');
}

/** Reads a history file (oldest entry first, one per line) into readline's order (newest first). */
export function loadHistory(file: string | undefined): string[] {
  if (file === undefined) return [];
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line.trim() !== '')
      .slice(-HISTORY_SIZE)
      .reverse();
  } catch {
    return [];
  }
}

/** Writes readline's history (newest first) to a file, oldest first, readable by its owner only. */
export function saveHistory(file: string | undefined, history: readonly string[]): void {
  if (file === undefined) return;
  try {
    const lines = history.slice(0, HISTORY_SIZE).reverse();
    writeFileSync(file, lines.length ? `${lines.join('\n')}\n` : '', { mode: 0o600 });
  } catch {
    // A history that cannot be written must not break the shell.
  }
}

/** What {@link runShell} needs. */
export interface ShellOptions {
  readonly session: Session;
  readonly input: NodeJS.ReadableStream;
  readonly output: NodeJS.WritableStream;
  /** Where errors go; default `output`. */
  readonly errorOutput?: NodeJS.WritableStream;
  /** Whether `input`/`output` are a terminal (raw keys, prompts, history, completion, Ctrl-C). */
  readonly terminal: boolean;
  /** The history file; `undefined` keeps no history. */
  readonly historyFile?: string;
  /** The initial output format; default `table`. */
  readonly format?: OutputFormat;
  /** Progress bars for a session's model stages (made again for the session `.open` opens). */
  readonly progress?: (session: Session) => ProgressReporter;
  /**
   * Opens the database `.open` names: a DuckDB file, a `postgres://` URL, or, with no
   * argument, a new in-memory DuckDB database. Without it `.open` is refused.
   */
  readonly open?: (location: string | undefined) => Promise<Session>;
  /** The pager command line (`$PAGER`), `undefined` for none; used only when `output` is a terminal. */
  readonly pager?: string;
}

/** The shell's commands, with the words they take (`undefined`: a file name), for help and completion. */
export const SHELL_COMMANDS: ReadonlyMap<string, readonly string[] | undefined> = new Map<string, readonly string[] | undefined>([
  ['.help', []],
  ['.quit', []],
  ['.exit', []],
  ['.tables', []],
  ['.models', []],
  ['.mode', OUTPUT_FORMATS],
  ['.format', OUTPUT_FORMATS],
  ['.timer', ['on', 'off']],
  ['.pager', PAGER_MODES],
  ['.read', undefined],
  ['.open', undefined],
  ['\\x', EXPANDED_MODES],
  ['\\q', []],
  ['\\?', []],
]);

/** The text of `.help`. */
export const HELP = `Enter SQL statements ending with ";" (they may span several lines). Tab completes.
  .help, \\?                      this help
  .tables                        list tables and views
  .models                        list models (SHOW MODELS)
  .mode [table|csv|json|line]    show or set the output format (also .format)
  \\x [on|off|auto]               expanded display of table output, one block per row
  .timer [on|off]                show the run time of each statement
  .pager [on|off|auto]           page long output through $PAGER (auto: when it does not fit)
  .read FILE                     run the statements of FILE
  .open [FILE|URL]               open a DuckDB file or a postgres:// URL (none: in memory)
  .quit, .exit, \\q               leave (or Ctrl-D)
Ctrl-C cancels the running statement, or clears the current input.
`;

/**
 * SQL of `.tables`: the tables and views of the user's schemas (information_schema is on both
 * hosts). Its columns are compared as text: on Postgres they are domains no pg_catalog
 * operator takes exactly, so an unqualified comparison would find an operator another role
 * planted in a schema of the path (test/security/information-schema-operators.test.ts).
 */
export const TABLES_SQL = `SELECT table_schema AS schema, table_name AS name, table_type AS type FROM information_schema.tables
 WHERE CAST(table_schema AS TEXT) NOT IN ('information_schema', 'pg_catalog', 'ml_catalog') ORDER BY 1, 2`;

/** The readline method that ends the current line without submitting it (undocumented, as the Node REPL uses it). */
interface ClearableLine {
  clearLine?: () => void;
}

/** `on`/`off` (and the other words a setting takes) of a dot command, or an error message. */
function setting<T extends string>(command: string, wanted: string | undefined, allowed: readonly T[], current: T, toggle?: T): T | Error {
  if (wanted === undefined) return toggle ?? current;
  const word = wanted.toLowerCase() as T;
  if (allowed.includes(word)) return word;
  return new Error(`${command}: unknown setting "${wanted}": use one of ${allowed.join(', ')}`);
}

/** The seconds of `ms` milliseconds, three decimals. */
const seconds = (ms: number): string => (ms / 1000).toFixed(3);

/**
 * Runs the interactive shell until `.quit` or end of input. Resolves to the exit status
 * (always 0: errors of statements are printed and the shell goes on). The shell owns its
 * session: it closes it when it ends, or when `.open` replaces it.
 *
 * @example
 * await runShell({ session, input: process.stdin, output: process.stdout, terminal: true,
 *                  historyFile: defaultHistoryFile() });
 */
export function runShell(options: ShellOptions): Promise<number> {
  const { output, terminal } = options;
  const errorOutput = options.errorOutput ?? output;
  const screen = output as Partial<NodeJS.WriteStream>;
  let session = options.session;
  let progress = options.progress?.(session);
  let format: OutputFormat = options.format ?? 'table';
  let expanded: ExpandedMode = 'off';
  let timer = false;
  let pagerMode: PagerMode = options.pager === undefined ? 'off' : 'auto';
  let running = false;
  const completer = new ShellCompleter(() => session, SHELL_COMMANDS, () => running);
  const rl: Interface = createInterface({
    input: options.input,
    output,
    terminal,
    prompt: PROMPT,
    history: terminal ? loadHistory(options.historyFile) : [],
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: false,
    ...(terminal
      ? {
          completer: (line: string, callback: (error: Error | null, result: [string[], string]) => void): void => {
            completer.complete(line).then(
              (result) => callback(null, result),
              () => callback(null, [[], line]),
            );
          },
        }
      : {}),
  });
  if (terminal) rl.on('history', (history: string[]) => saveHistory(options.historyFile, history));

  let buffer: string[] = [];
  let closed = false;
  let chain: Promise<void> = Promise.resolve();

  const prompt = (): void => {
    if (closed) return;
    rl.setPrompt(buffer.length ? CONTINUATION_PROMPT : PROMPT);
    rl.prompt();
  };
  const fail = (message: string): void => {
    errorOutput.write(`${message}\n`);
  };

  /** Whether output goes through the pager: only on a terminal with a known size. */
  const paging = (): boolean => pagerMode !== 'off' && options.pager !== undefined && terminal && screen.isTTY === true && typeof screen.rows === 'number';

  /** Shows `text` on the terminal, through the pager when it is on or the text does not fit. */
  const show = async (text: string): Promise<void> => {
    if (text === '') return;
    const fits = !needsPager(text, screen.rows ?? Infinity, screen.columns ?? Infinity);
    if (!paging() || (pagerMode === 'auto' && fits)) {
      output.write(text);
      return;
    }
    const tty = options.input as Partial<NodeJS.ReadStream>;
    rl.pause();
    tty.setRawMode?.(false);
    const paged = await runPager(options.pager!, text);
    tty.setRawMode?.(true);
    rl.resume();
    if (!paged) output.write(text);
  };

  /** Runs SQL text, printing its results (gathered for the pager when it may be used) and the timer. */
  const execute = async (text: string): Promise<void> => {
    let gathered = '';
    const direct = !paging();
    const write = (s: string): void => {
      if (direct) output.write(s);
      else gathered += s;
    };
    let errors = '';
    await completer.idle();
    const started = performance.now();
    const cpu = process.cpuUsage();
    running = true;
    try {
      await executeScript(session, text, {
        printer: new ResultPrinter(write, format, { expanded, width: screen.columns }),
        // Shown after the results before it, which may be waiting for the pager.
        writeError: (s) => (direct ? errorOutput.write(s) : (errors += s)),
        progress,
      });
    } finally {
      running = false;
      completer.invalidate();
    }
    await show(gathered);
    if (errors !== '') errorOutput.write(errors);
    if (timer) {
      const used = process.cpuUsage(cpu);
      output.write(`Run Time (s): real ${seconds(performance.now() - started)} user ${seconds(used.user / 1000)} sys ${seconds(used.system / 1000)}\n`);
    }
  };

  /** `.open`: the new session replaces the current one, which is closed; on failure the current one stays. */
  const open = async (location: string | undefined): Promise<void> => {
    if (!options.open) return fail('.open is not available here');
    let next: Session;
    try {
      next = await options.open(location);
    } catch (error) {
      return fail(formatError(error));
    }
    progress?.dispose();
    await session.close().catch(() => undefined);
    session = next;
    progress = options.progress?.(session);
    completer.invalidate();
  };

  /** Runs a shell command; resolves to false when `line` is not one. */
  const command = async (line: string): Promise<boolean> => {
    const trimmed = line.trim();
    const [word = '', ...args] = trimmed.split(/\s+/);
    const rest = trimmed.slice(word.length).trim();
    switch (word.toLowerCase()) {
      case '.quit':
      case '.exit':
      case '\\q':
        rl.close();
        return true;
      case '.help':
      case '\\?':
        output.write(HELP);
        return true;
      case '.mode':
      case '.format': {
        const next = setting(word, args[0], OUTPUT_FORMATS, format);
        if (next instanceof Error) fail(next.message);
        else if (args[0] === undefined) output.write(`${format}\n`);
        else format = next;
        return true;
      }
      case '\\x': {
        const next = setting(word, args[0], EXPANDED_MODES, expanded, expanded === 'off' ? 'on' : 'off');
        if (next instanceof Error) return fail(next.message), true;
        expanded = next;
        output.write(`Expanded display is ${expanded === 'auto' ? 'used automatically' : expanded}.\n`);
        return true;
      }
      case '.timer': {
        const next = setting<'on' | 'off'>(word, args[0], ['on', 'off'], timer ? 'on' : 'off', timer ? 'off' : 'on');
        if (next instanceof Error) fail(next.message);
        else timer = next === 'on';
        return true;
      }
      case '.pager': {
        const next = setting(word, args[0], PAGER_MODES, pagerMode, pagerMode === 'off' ? 'auto' : 'off');
        if (next instanceof Error) fail(next.message);
        else if (next !== 'off' && options.pager === undefined) fail('.pager: no pager: set the PAGER environment variable');
        else pagerMode = next;
        return true;
      }
      case '.tables':
        await execute(TABLES_SQL);
        return true;
      case '.models':
        await execute('SHOW MODELS');
        return true;
      case '.read': {
        if (rest === '') return fail('.read: give a file name'), true;
        let text: string;
        try {
          text = await readFile(rest, 'utf8');
        } catch (error) {
          return fail(`.read: cannot read ${rest}: ${(error as Error).message}`), true;
        }
        await execute(text);
        return true;
      }
      case '.open':
        await open(rest === '' ? undefined : rest);
        return true;
      default:
        if (word.startsWith('.') || word.startsWith('\\')) {
          fail(`unknown command "${word}": try .help`);
          return true;
        }
        return false;
    }
  };

  const handleLine = async (line: string): Promise<void> => {
    if (buffer.length === 0) {
      if (line.trim() === '') return prompt();
      if (await command(line)) return prompt();
    }
    buffer.push(line);
    const text = buffer.join('\n');
    if (!isStatementComplete(text)) return prompt();
    buffer = [];
    await execute(text);
    prompt();
  };

  rl.on('line', (line: string) => {
    chain = chain.then(() => handleLine(line));
  });

  rl.on('SIGINT', () => {
    if (running) {
      session.cancel();
      return;
    }
    buffer = [];
    const clearable = rl as unknown as ClearableLine;
    if (typeof clearable.clearLine === 'function') clearable.clearLine();
    else output.write('\n');
    prompt();
  });

  return new Promise<number>((resolve) => {
    rl.on('close', () => {
      closed = true;
      if (terminal) output.write('\n');
      void chain.then(async () => {
        progress?.dispose();
        await session.close().catch(() => undefined);
        resolve(0);
      });
    });
    if (terminal) output.write('modelsql shell: end statements with ";", .help for help, .quit or Ctrl-D to leave.\n');
    prompt();
  });
}
