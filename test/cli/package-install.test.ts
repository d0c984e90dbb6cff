/**
 * modelsql installed from its packed tarball, as a user without the repository gets it:
 * `npm pack`, `npm install -g --ignore-scripts` into a scratch prefix, then `modelsql` from
 * that prefix's bin directory (docs/cli.md "Installing"). Uses the build `npm test` made.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, runProcess, type CliRun } from '../support/run-cli.js';

/** The environment without what an enclosing `npm test` exports (npm_config_*, npm_package_*). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));
}

const run = (command: string, args: readonly string[], cwd: string): Promise<CliRun> => runProcess(command, args, { cwd, env: cleanEnv() });

let scratch: string;
beforeAll(() => (scratch = mkdtempSync(join(tmpdir(), 'modelsql-install-'))));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

it('installs from the packed tarball without a warning and runs --version and the quickstart', async () => {
  // --ignore-scripts: the build is already there (prepack would rebuild it).
  const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], ROOT);
  expect(pack.status).toBe(0);
  const [{ filename }] = JSON.parse(pack.stdout) as [{ filename: string }];
  const prefix = join(scratch, 'prefix');
  const install = await run('npm', ['install', '-g', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--prefix', prefix, join(scratch, filename)], scratch);
  expect(install.stderr).toBe('');
  expect(install.status).toBe(0);

  const modelsql = join(prefix, 'bin', 'modelsql');
  const version = await run(modelsql, ['--version'], scratch);
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  expect(version).toEqual({ status: 0, stdout: `${pkg.version}\n`, stderr: '' });

  // The quickstart names its model file relative to the package directory.
  const installed = join(prefix, 'lib', 'node_modules', 'modelsql');
  const quickstart = await run(modelsql, ['run', '-f', 'examples/quickstart.sql', '--format', 'csv'], installed);
  expect(quickstart.stderr).toBe('');
  expect(quickstart.status).toBe(0);
  expect(quickstart.stdout).toMatch(/^mae,rmse,r2\r\n[\d.]+,[\d.]+,0\.99\d*\r\n/m);
}, 600_000);
