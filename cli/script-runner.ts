/**
 * Runs a script's statements one after another, printing each result: the part of the CLI
 * that `modelsql run` and the interactive shell share.
 */
import { formatError } from '../core/errors.js';
import type { Session } from '../core/session/session.js';
import type { ResultPrinter } from './format.js';
import type { ProgressReporter } from './progress.js';

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
