/**
 * Showing long output through a pager, as psql does: when the shell's output is a terminal
 * and a result has more lines than the screen (or is wider than it), the text goes to
 * `$PAGER` (a shell command line; default `less`, with `LESS=FRSX` unless `LESS` is set,
 * as git does). `PAGER=''` or `.pager off` turns paging off.
 */
import { spawn } from 'node:child_process';
import { displayWidth } from './format.js';

/** Whether pages are shown through the pager: always, never, or when they do not fit. */
export const PAGER_MODES = ['on', 'off', 'auto'] as const;

/** One of {@link PAGER_MODES}. */
export type PagerMode = (typeof PAGER_MODES)[number];

/** The pager command line from the environment: `$PAGER`, else `less`; `undefined` when `PAGER` is set empty. */
export function pagerCommand(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const pager = env['PAGER'];
  if (pager === undefined) return 'less';
  return pager.trim() === '' ? undefined : pager;
}

/**
 * Whether `text` needs the pager on a screen of `rows` × `columns`: more lines than the
 * screen holds (keeping one for the prompt), or a line wider than the screen.
 */
export function needsPager(text: string, rows: number, columns: number): boolean {
  const lines = text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
  return lines > rows - 1 || displayWidth(text) > columns;
}

/**
 * Runs `command` through `sh -c` with `text` on its stdin and the terminal as its output;
 * resolves once it exits. Resolves to `false` when the pager could not be started (the
 * caller then prints the text itself). SIGINT is ignored meanwhile: the pager handles Ctrl-C.
 */
export function runPager(command: string, text: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  return new Promise((resolve) => {
    const ignore = (): void => {};
    process.on('SIGINT', ignore);
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: ['pipe', 'inherit', 'inherit'],
      env: { ...env, LESS: env['LESS'] ?? 'FRSX' },
    });
    let started = true;
    child.on('error', () => {
      started = false;
    });
    // A pager that quits before reading everything closes the pipe: not an error.
    child.stdin.on('error', () => undefined);
    child.stdin.end(text);
    child.on('close', (code) => {
      process.off('SIGINT', ignore);
      // 127: the shell did not find the command.
      resolve(started && code !== 127);
    });
  });
}
