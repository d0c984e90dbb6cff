/**
 * The interactive shell of the `modelsql` CLI, and the script runner it shares with
 * `modelsql run`.
 *
 * The shell reads lines with node:readline, gathers them until the text is a complete
 * statement (ends with a top-level `;`), runs it and prints each statement's result.
 * Keys: Enter continues or runs, Ctrl-C cancels the running statement or clears the input,
 * Ctrl-D (on an empty line) or `.quit` / `.exit` / `\q` leaves. History is kept in a file.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Interface } from 'node:readline';
import { formatError } from '../core/errors.js';
import type { Session } from '../core/session/session.js';
import { isStatementComplete } from '../core/sql/lexer.js';
import { OUTPUT_FORMATS, ResultPrinter } from './format.js';
import type { OutputFormat } from './format.js';
import type { ProgressReporter } from './progress.js';

/** The prompt before a new statement. */
export const PROMPT = 'modelsql> ';
/** The prompt of a statement's continuation lines (as wide as {@link PROMPT}). */
export const CONTINUATION_PROMPT = '     ...> ';
/** How many history entries are kept. */
export const HISTORY_SIZE = 1000;

/** Where {@link ScriptIO} sends things. */
export interface ScriptIO {
  /** Prints results. */
  readonly printer: ResultPrinter;
  /** Writes error text (formatted with `formatError`). */
  readonly writeError: (text: string) => void;
  /** The progress bars to clear before printing, if any. */
  readonly progress?: ProgressReporter;
}

/**
 * Runs every statement of `text`, printing each statement's result as it completes, and
 * stops at the first failing statement, printing its error. Resolves to `true` when all
 * statements succeeded.
 *
 * @example
 * const ok = await executeScript(session, 'select 1; select 2;', {
 *   printer: new ResultPrinter((s) => process.stdout.write(s)),
 *   writeError: (s) => process.stderr.write(s),
 * });
 */
export async function executeScript(session: Session, text: string, io: ScriptIO): Promise<boolean> {
  try {
    for await (const result of session.run(text)) {
      io.progress?.stop();
      // As psql: notices on stderr, before the result.
      for (const notice of result.notices ?? []) io.writeError(`NOTICE:  ${notice}\n`);
      io.printer.print(result);
    }
    return true;
  } catch (error) {
    io.progress?.stop();
    io.writeError(`${formatError(error)}\n`);
    return false;
  } finally {
    io.progress?.stop();
  }
}

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
  /** Whether `input`/`output` are a terminal (raw keys, prompts, history, Ctrl-C). */
  readonly terminal: boolean;
  /** The history file; `undefined` keeps no history. */
  readonly historyFile?: string;
  /** The initial output format; default `table`. */
  readonly format?: OutputFormat;
  /** Progress bars for model stages. */
  readonly progress?: ProgressReporter;
}

const HELP = `Enter SQL statements ending with ";" (they may span several lines).
  .help, \\?                 this help
  .format [table|csv|json]  show or set the output format
  .quit, .exit, \\q          leave (or Ctrl-D)
Ctrl-C cancels the running statement, or clears the current input.
`;

/** The readline method that ends the current line without submitting it (undocumented, as the Node REPL uses it). */
interface ClearableLine {
  clearLine?: () => void;
}

/**
 * Runs the interactive shell until `.quit` or end of input. Resolves to the exit status
 * (always 0: errors of statements are printed and the shell goes on).
 *
 * @example
 * await runShell({ session, input: process.stdin, output: process.stdout, terminal: true,
 *                  historyFile: defaultHistoryFile() });
 */
export function runShell(options: ShellOptions): Promise<number> {
  const { session, output, terminal } = options;
  const errorOutput = options.errorOutput ?? output;
  let format: OutputFormat = options.format ?? 'table';
  const rl: Interface = createInterface({
    input: options.input,
    output,
    terminal,
    prompt: PROMPT,
    history: terminal ? loadHistory(options.historyFile) : [],
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: false,
  });
  if (terminal) rl.on('history', (history: string[]) => saveHistory(options.historyFile, history));

  let buffer: string[] = [];
  let running = false;
  let closed = false;
  let chain: Promise<void> = Promise.resolve();

  const prompt = (): void => {
    if (closed) return;
    rl.setPrompt(buffer.length ? CONTINUATION_PROMPT : PROMPT);
    rl.prompt();
  };

  const meta = (line: string): boolean => {
    const [word = '', ...args] = line.trim().split(/\s+/);
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
      case '.format': {
        const wanted = args[0];
        if (wanted === undefined) output.write(`${format}\n`);
        else if ((OUTPUT_FORMATS as readonly string[]).includes(wanted)) format = wanted as OutputFormat;
        else errorOutput.write(`unknown format "${wanted}": use one of ${OUTPUT_FORMATS.join(', ')}\n`);
        return true;
      }
      default:
        if (word.startsWith('.') || word.startsWith('\\')) {
          errorOutput.write(`unknown command "${word}": try .help\n`);
          return true;
        }
        return false;
    }
  };

  const handleLine = async (line: string): Promise<void> => {
    if (buffer.length === 0) {
      if (line.trim() === '') return prompt();
      if (meta(line)) return prompt();
    }
    buffer.push(line);
    const text = buffer.join('\n');
    if (!isStatementComplete(text)) return prompt();
    buffer = [];
    running = true;
    try {
      await executeScript(session, text, {
        printer: new ResultPrinter((s) => output.write(s), format),
        writeError: (s) => errorOutput.write(s),
        progress: options.progress,
      });
    } finally {
      running = false;
    }
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
      void chain.then(() => resolve(0));
    });
    if (terminal) output.write('modelsql shell: end statements with ";", .help for help, .quit or Ctrl-D to leave.\n');
    prompt();
  });
}
