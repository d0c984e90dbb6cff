/**
 * Runs the built CLI (`node dist/cli/main.js`) as a subprocess: `npm test` builds first;
 * by hand, run `npx tsc -p tsconfig.json` before jest. `MODELSQL_TEST_CLI` may name another
 * build of main.js.
 */
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (the CLI's working directory in tests). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The CLI's entry point. */
export const MAIN = process.env['MODELSQL_TEST_CLI'] ?? join(ROOT, 'dist', 'cli', 'main.js');

/** What a CLI run gave. */
export interface CliRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI with `args`, feeding `input` on stdin (a pipe, so not a terminal). */
export function runCli(args: readonly string[], input: string | Uint8Array = '', env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runProcess(process.execPath, [MAIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, input });
}

/** Runs `command` with `args` in `cwd` with exactly `env`, feeding `input` on stdin; resolves when it exits. */
export function runProcess(
  command: string,
  args: readonly string[],
  options: { readonly cwd: string; readonly env: NodeJS.ProcessEnv; readonly input?: string | Uint8Array },
): Promise<CliRun> {
  const { cwd, env, input = '' } = options;
  return new Promise((done, fail) => {
    const child = spawn(command, args, { cwd, env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.on('error', fail);
    child.on('close', (status) => done({ status, stdout, stderr }));
    child.stdin.end(input);
  });
}
