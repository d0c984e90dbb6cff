/**
 * The built CLI's interactive shell in a pseudo-terminal (@lydell/node-pty), with helpers
 * to type and to wait for output.
 */
import * as pty from '@lydell/node-pty';
import { MAIN, ROOT } from './run-cli.js';

/** A running shell. */
export interface PtyShell {
  readonly term: pty.IPty;
  /** Resolves to the exit status. */
  readonly exited: Promise<number>;
  /** Waits until the output from offset `from` on matches `pattern` (20 s at most). */
  until(pattern: RegExp, from?: number): Promise<void>;
  /** Everything the shell printed so far, without terminal control sequences. */
  output(): string;
}

/** Starts `modelsql ARGS` in a 120×40 pseudo-terminal with `env` added to the environment. */
export function startShell(args: readonly string[], env: NodeJS.ProcessEnv, cwd: string = ROOT): PtyShell {
  const term = pty.spawn(process.execPath, [MAIN, ...args], {
    cols: 120,
    rows: 40,
    cwd,
    env: { ...process.env, ...env } as Record<string, string>,
  });
  let output = '';
  // without terminal control sequences (cursor moves, line clears)
  // eslint-disable-next-line no-control-regex
  term.onData((d) => (output += d.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')));
  const exited = new Promise<number>((r) => term.onExit(({ exitCode }) => r(exitCode)));
  const until = async (pattern: RegExp, from = 0): Promise<void> => {
    const deadline = Date.now() + 20_000;
    while (!pattern.test(output.slice(from))) {
      if (Date.now() > deadline) throw new Error(`no ${pattern} in:\n${output.slice(from)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { term, exited, until, output: () => output };
}
