#!/usr/bin/env node
/**
 * `modelsql`: the command-line interface (see docs/cli.md).
 *
 * - `modelsql [shell] [--db file.duckdb]`: the interactive shell; with a non-terminal
 *   stdin, runs stdin as a script.
 * - `modelsql run (-c SQL | -f file.sql) [--db file.duckdb] [--format table|csv|json]`.
 * - `modelsql catalog export-onnx <model> [--db file.duckdb] --out file.onnx`: a trained
 *   model's ONNX graph.
 * - `modelsql catalog upgrade LOC [--dry-run] [--json]`: applies the catalog's pending
 *   layout migrations (cli/catalog/upgrade.ts, docs/catalog-upgrade.md).
 * - `modelsql catalog export | import | migrate | diff`: moving model catalogs between
 *   DuckDB files and Postgres databases (cli/catalog/, docs/catalog-migration.md).
 * - `modelsql proxy --upstream postgres://host:5432/db [--listen 127.0.0.1:6432]
 *   [--tls-cert F --tls-key F]`: the Postgres wire-protocol proxy (docs/proxy.md).
 *
 * Exit status: 0 success, 1 a statement failed (or the database could not be opened),
 * 2 bad usage, 130 interrupted by Ctrl-C.
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ModelSqlError, formatError } from '../core/errors.js';
import { DEFAULT_MAX_SCRIPT_BYTES, readBoundedInput } from './bounded-input.js';
import type { Session } from '../core/session/session.js';
import type { SessionOptions } from '../core/session/model-session.js';
import { OUTPUT_FORMATS, ResultPrinter } from './format.js';
import type { OutputFormat } from './format.js';
import { isPostgresUrl, resolvePostgresUrl } from './connection-settings.js';
import { executeScript } from './script-runner.js';
import { parseDuration } from '../core/sql/ml-call.js';
import { capsFromArgs, modelFileLimitsFromArgs, withLimitFlags } from './proxy-limit-flags.js';
import type { ModelFileLimits } from '../core/runtime/onnx-model-loader.js';
import type { ResourceCaps } from '../core/runtime/resource-caps.js';

/** Exit status of a failed statement. */
export const EXIT_ERROR = 1;
/** Exit status of bad usage. */
export const EXIT_USAGE = 2;
/** Exit status after Ctrl-C (128 + SIGINT). */
export const EXIT_INTERRUPTED = 130;

const write = (text: string): void => {
  process.stdout.write(text);
};
const writeError = (text: string): void => {
  process.stderr.write(text);
};

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Where a session opens: a DuckDB file (in memory when neither is given) or a Postgres URL;
 * and, when given, where its models may read files and which URLs they may reach.
 */
interface Target {
  readonly db?: string;
  readonly postgres?: string;
  readonly modelDir?: readonly string[];
  readonly allowEndpoint?: readonly string[];
}

/** The access options of `--model-dir` / `--allow-endpoint` (unset flags: no limit). */
function accessOptions(target: Pick<Target, 'modelDir' | 'allowEndpoint'>): SessionOptions {
  return {
    ...(target.modelDir !== undefined ? { allowedDirectories: target.modelDir } : {}),
    ...(target.allowEndpoint !== undefined ? { allowedUrlPrefixes: target.allowEndpoint } : {}),
  };
}

/**
 * Opens the session the flags ask for: `--db` a DuckDB file; `--postgres [URL]` Postgres,
 * its settings completed from `DATABASE_URL` and the `PG*` variables (cli/connection-settings.ts);
 * neither: Postgres at `DATABASE_URL` when it is set, else DuckDB in memory.
 */
async function connect(target: Target, env: NodeJS.ProcessEnv = process.env): Promise<Session> {
  const options = accessOptions(target);
  // Each adapter is loaded when it is used: start-up pays only for the database it opens.
  if (target.db === undefined && (target.postgres !== undefined || env['DATABASE_URL'])) {
    const url = resolvePostgresUrl(target.postgres, env, 'client');
    return (await import('../adapters/postgres/index.js')).connectPostgres(url, options);
  }
  return (await import('../adapters/duckdb/index.js')).openDuckDB(target.db, options);
}

/** Opens the session the flags ask for, or prints why it cannot and returns undefined. */
async function openSession(target: Target): Promise<Session | undefined> {
  try {
    return await connect(target);
  } catch (error) {
    writeError(`${formatError(error)}\n`);
    return undefined;
  }
}

/**
 * Reads the SQL script `file` (`-`: stdin) as text, within `--max-script-bytes`; prints
 * the error and resolves to undefined when it cannot (54000 past the limit, 58P01, 42501, 58030).
 */
async function readScript(file: string, maxBytes = DEFAULT_MAX_SCRIPT_BYTES): Promise<string | undefined> {
  const name = file === '-' ? 'on stdin' : file;
  try {
    const tooLarge = (size: number | undefined) =>
      new ModelSqlError('54000', `script ${name} ${size === undefined ? `has more than ${maxBytes} bytes` : `is ${size} bytes`}, over the limit of ${maxBytes} bytes (--max-script-bytes)`);
    return (await readBoundedInput(file, 0, () => ({ limit: maxBytes, tooLarge }))).toString('utf8');
  } catch (error) {
    writeError(`${formatError(error)}\n`);
    return undefined;
  }
}

/**
 * Runs a script with progress bars, the first Ctrl-C cancelling the running statement and
 * a second one leaving at once. Resolves to the exit status.
 */
async function runScript(session: Session, text: string, format: OutputFormat): Promise<number> {
  let interrupted = false;
  const onSigint = (): void => {
    if (interrupted) process.exit(EXIT_INTERRUPTED);
    interrupted = true;
    session.cancel();
  };
  process.on('SIGINT', onSigint);
  // Bars are drawn only on a terminal: cli-progress is not loaded otherwise.
  const progress = process.stderr.isTTY ? new (await import('./progress.js')).ProgressReporter(session) : undefined;
  try {
    const ok = await executeScript(session, text, { printer: new ResultPrinter(write, format), writeError, progress });
    if (interrupted) return EXIT_INTERRUPTED;
    return ok ? 0 : EXIT_ERROR;
  } finally {
    progress?.dispose();
    process.off('SIGINT', onSigint);
  }
}

/** `modelsql run`. */
async function runCommand(args: Target & { command?: string; file?: string; format: OutputFormat; maxScriptBytes?: number }): Promise<number> {
  let text: string;
  if (args.command !== undefined) {
    text = args.command;
  } else {
    const read = await readScript(args.file ?? '-', args.maxScriptBytes);
    if (read === undefined) return EXIT_ERROR;
    text = read;
  }
  return runScriptOn(args, text, args.format);
}

/** Opens the session `target` names, runs `text` on it and closes it; resolves to the exit status. */
async function runScriptOn(target: Target, text: string, format: OutputFormat): Promise<number> {
  const session = await openSession(target);
  if (!session) return EXIT_ERROR;
  try {
    return await runScript(session, text, format);
  } finally {
    await session.close().catch(() => undefined);
  }
}

/** `modelsql shell` (also the default command). */
async function shellCommand(args: Target & { format: OutputFormat; maxScriptBytes?: number }): Promise<number> {
  if (!process.stdin.isTTY) {
    const text = await readScript('-', args.maxScriptBytes);
    return text === undefined ? EXIT_ERROR : runScriptOn(args, text, args.format);
  }
  let session = await openSession(args);
  if (!session) return EXIT_ERROR;
  const terminal = Boolean(process.stdout.isTTY);
  // With stdout redirected readline gets no raw keys: Ctrl-C arrives as a signal.
  const onSigint = (): void => session?.cancel();
  if (!terminal) process.on('SIGINT', onSigint);
  // `.open FILE` opens a DuckDB file, `.open postgres://...` a Postgres database, with this command's access flags.
  const open = async (location: string | undefined): Promise<Session> => {
    const postgres = location !== undefined && isPostgresUrl(location);
    session = await connect({ ...args, db: postgres ? undefined : (location ?? ':memory:'), postgres: postgres ? location : undefined });
    return session;
  };
  // The shell (readline, completion, pager) is loaded only for an interactive session.
  const [{ ProgressReporter }, { defaultHistoryFile, runShell }, { pagerCommand }] = await Promise.all([import('./progress.js'), import('./shell.js'), import('./pager.js')]);
  try {
    // The shell closes its sessions.
    return await runShell({
      session,
      input: process.stdin,
      output: process.stdout,
      errorOutput: process.stderr,
      terminal,
      historyFile: defaultHistoryFile(),
      format: args.format,
      progress: (s) => new ProgressReporter(s),
      open,
      pager: pagerCommand(),
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/**
 * `modelsql proxy`: serves until SIGINT/SIGTERM, then closes every connection. Resolves to
 * the exit status.
 */
async function proxyCommand(args: {
  upstream?: string;
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  secretKeyFile?: string;
  modelDir: readonly string[];
  allowEndpoint: readonly string[];
  maxRowsPerCall?: number;
  maxInferences?: number;
  maxClientInferences?: number;
  maxMessageBytes?: number;
  caps: Partial<ResourceCaps>;
  modelFiles: ModelFileLimits;
  /** Largest answer of a remote model's server (`--max-response-bytes`). */
  maxResponseBytes?: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  shutdownGraceMs: number;
  metrics?: string;
  refresh: boolean;
  refreshUrl?: string;
  relay: 'auto' | 'js';
  relayScheduling: 'batch' | 'normal';
}): Promise<number> {
  let upstreamUrl: string;
  try {
    upstreamUrl = resolvePostgresUrl(args.upstream, process.env, 'upstream');
  } catch (error) {
    writeError(`${formatError(error)}\n`);
    return EXIT_ERROR;
  }
  const { startProxy } = await import('../adapters/postgres/proxy/index.js');
  let tls: { cert: Buffer; key: Buffer } | undefined;
  try {
    if (args.tlsCert !== undefined && args.tlsKey !== undefined) tls = { cert: await readFile(args.tlsCert), key: await readFile(args.tlsKey) };
  } catch (error) {
    writeError(`modelsql: cannot read the TLS certificate or key: ${(error as Error).message}\n`);
    return EXIT_ERROR;
  }
  let secretKey: string | undefined;
  try {
    if (args.secretKeyFile !== undefined) secretKey = (await readFile(args.secretKeyFile, 'utf8')).trim();
  } catch (error) {
    writeError(`modelsql: cannot read --secret-key-file: ${(error as NodeJS.ErrnoException).code ?? 'error'}\n`);
    return EXIT_ERROR;
  }
  // The refreshers' role: --refresh-url, else $MODELSQL_REFRESH_URL; never the upstream's role by default
  // (a refresher runs every owner's query in one session: docs/security.md, "Materialized tables").
  const refreshUrl = args.refresh ? (args.refreshUrl ?? (process.env['MODELSQL_REFRESH_URL'] || undefined)) : undefined;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  try {
    proxy = await startProxy({
      ...(refreshUrl === undefined ? {} : { refreshUrl }),
      upstream: upstreamUrl,
      listen: args.listen,
      tls,
      session: {
        allowedDirectories: args.modelDir,
        allowedUrlPrefixes: args.allowEndpoint,
        resourceCaps: args.caps,
        ...args.modelFiles,
        ...(args.maxResponseBytes === undefined ? {} : { maxResponseBytes: args.maxResponseBytes }),
        ...(secretKey === undefined ? {} : { secretKey }),
      },
      limits: { maxRowsPerCall: args.maxRowsPerCall, maxInferences: args.maxInferences, maxClientInferences: args.maxClientInferences },
      maxMessageBytes: args.maxMessageBytes,
      logLevel: args.logLevel,
      relay: args.relay,
      relayScheduling: args.relayScheduling,
      ...(args.metrics === undefined ? {} : { metrics: args.metrics }),
    });
  } catch (error) {
    writeError(`modelsql: cannot start the proxy: ${(error as Error).message}\n`);
    return EXIT_ERROR;
  }
  const upstream = new URL(upstreamUrl);
  // Under `node --expose-gc` (diagnostics only), SIGUSR2 runs a full collection and reports the
  // memory and open connections on stderr: the load benchmark measures the proxy's memory so.
  const gc = (globalThis as { gc?: () => void }).gc;
  const reportMemory = (): void => {
    // Twice, a turn of the event loop apart: buffers released by the first collection's
    // finalizers go in the second.
    gc!();
    setImmediate(() => {
      gc!();
      const m = process.memoryUsage();
      writeError(`modelsql proxy memory: rss=${m.rss} heapUsed=${m.heapUsed} external=${m.external} connections=${proxy.connections}\n`);
    });
  };
  if (gc) process.on('SIGUSR2', reportMemory);
  // Signals: SIGTERM and SIGINT shut down gracefully (a second one closes at once); SIGHUP
  // and SIGUSR2 (without --expose-gc) are logged and ignored, never fatal.
  const { ProxyLog } = await import('../adapters/postgres/proxy/proxy-log.js');
  const log = new ProxyLog(args.logLevel, (line) => writeError(line));
  const ignore = (signal: NodeJS.Signals): void => log.warn('signal ignored', { signal });
  const ignored: NodeJS.Signals[] = gc ? ['SIGHUP'] : ['SIGHUP', 'SIGUSR2'];
  for (const signal of ignored) process.on(signal, ignore);
  // Announced once the hook is in place: a SIGUSR2 sent on reading this line must find it.
  writeError(
    `modelsql proxy listening on ${proxy.host}:${proxy.port}${tls ? ' (TLS)' : ''}, upstream ${upstream.host || upstream.searchParams.get('host') || 'localhost'}${upstream.pathname}; ` +
      `model files from: ${args.modelDir.join(', ') || 'none (only models the catalog holds)'}; endpoints: ${args.allowEndpoint.join(', ') || 'none'}` +
      `${proxy.metrics ? `; metrics on http://${proxy.metrics.host}:${proxy.metrics.port}/metrics` : ''}` +
      `; materialized tables ${refreshUrl === undefined ? `not refreshed (${args.refresh ? 'no --refresh-url' : '--no-refresh'})` : `refreshed as ${decodeURIComponent(new URL(refreshUrl).username) || 'the default user'}`}\n`,
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (name: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(name);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  const now = (): void => void proxy.close();
  process.once('SIGINT', now);
  process.once('SIGTERM', now);
  log.info('signal received: shutting down', { signal });
  await proxy.shutdown(args.shutdownGraceMs);
  process.off('SIGINT', now);
  process.off('SIGTERM', now);
  process.off('SIGUSR2', reportMemory);
  for (const s of ignored) process.off(s, ignore);
  return 0;
}

/** `modelsql catalog export-onnx`: writes a trained model's stored ONNX artifact to a file. */
async function exportOnnxCommand(args: Target & { model: string; out: string }): Promise<number> {
  const session = await openSession(args);
  if (!session) return EXIT_ERROR;
  try {
    const { readModelArtifact } = await import('../core/training/export-artifact.js');
    const bytes = await readModelArtifact(session, args.model);
    await writeFile(args.out, bytes);
    writeError(`wrote ${bytes.byteLength} bytes to ${args.out}\n`);
    return 0;
  } catch (error) {
    writeError(`${formatError(error)}\n`);
    return EXIT_ERROR;
  } finally {
    await session.close().catch(() => undefined);
  }
}

/** Flushes stdout and stderr, then exits with `code`. */
function exit(code: number): void {
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

/** Parses `argv` and runs the command; resolves to the exit status. */
export async function main(argv: readonly string[]): Promise<number> {
  let status = 0;
  // `catalog`'s subcommands (and the modules behind them) are loaded only when asked for.
  const catalog = argv.includes('catalog') ? await import('./catalog/catalog-commands.js') : undefined;
  const dbOption = {
    type: 'string',
    describe: 'DuckDB database file (created if missing); in memory when omitted',
    requiresArg: true,
  } as const;
  const postgresOption = {
    type: 'string',
    describe: 'a Postgres database instead of DuckDB: postgres://user:password@host:5432/db; without a URL, DATABASE_URL; missing parts from PGHOST, PGUSER, ... (docs/cli.md)',
    conflicts: 'db',
  } as const;
  const modelDirOption = {
    type: 'string',
    array: true,
    requiresArg: true,
    describe: 'read model files only from this directory (repeatable; symbolic links and .. cannot escape it)',
  } as const;
  const allowEndpointOption = {
    type: 'string',
    array: true,
    requiresArg: true,
    describe: "let models reach only URLs under this prefix: model URLs, provider endpoints (repeatable; '*' for any)",
  } as const;
  const limitOption = (describe: string) => ({ type: 'number', requiresArg: true, describe }) as const;
  const positive = (args: Record<string, unknown>, names: readonly string[]): true => {
    for (const name of names) {
      const v = args[name];
      if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v > 0)) throw new Error(`--${name} must be a positive integer`);
    }
    return true;
  };
  const maxScriptBytesOption = limitOption(`the largest SQL script read from a file or stdin, in bytes; larger: 54000 (default: ${DEFAULT_MAX_SCRIPT_BYTES}, 256 MiB)`);
  const checkMaxScriptBytes = (args: Record<string, unknown>): true => positive(args, ['max-script-bytes']);
  const formatOption = {
    choices: OUTPUT_FORMATS,
    default: 'table' as OutputFormat,
    describe: 'output format',
  } as const;
  const parser = yargs([...argv])
    .scriptName('modelsql')
    .usage('$0 [command] [options]\n\nModel SQL (FLIP-437: CREATE MODEL, ML_PREDICT, ...) on DuckDB and Postgres.')
    .command(
      ['shell', '$0'],
      'interactive shell (runs stdin as a script when it is not a terminal)',
      (y) => y.option('db', dbOption).option('postgres', postgresOption).option('format', formatOption).option('model-dir', modelDirOption).option('allow-endpoint', allowEndpointOption).option('max-script-bytes', maxScriptBytesOption).check(checkMaxScriptBytes),
      async (args) => {
        status = await shellCommand({ db: args.db, postgres: args.postgres, format: args.format as OutputFormat, modelDir: args['model-dir'], allowEndpoint: args['allow-endpoint'], maxScriptBytes: args['max-script-bytes'] });
      },
    )
    .command(
      'run',
      'run SQL statements and print their results',
      (y) =>
        y
          .option('command', { alias: 'c', type: 'string', describe: 'SQL text to run', requiresArg: true })
          .option('file', { alias: 'f', type: 'string', describe: 'SQL file to run ("-" for stdin)', requiresArg: true })
          .option('db', dbOption).option('postgres', postgresOption)
          .option('format', formatOption)
          .option('model-dir', modelDirOption)
          .option('allow-endpoint', allowEndpointOption)
          .option('max-script-bytes', maxScriptBytesOption)
          .conflicts('command', 'file')
          .check((args) => {
            if (args.command === undefined && args.file === undefined) throw new Error('give -c SQL or -f file.sql');
            if (Array.isArray(args.command) || Array.isArray(args.file)) throw new Error('give -c or -f once');
            return checkMaxScriptBytes(args);
          })
          .example('$0 run -c "select 42 as x"', 'run one statement')
          .example('$0 run -f script.sql --db app.duckdb --format csv', 'run a script against a file'),
      async (args) => {
        status = await runCommand({
          command: args.command,
          file: args.file,
          db: args.db,
          postgres: args.postgres,
          format: args.format as OutputFormat,
          modelDir: args['model-dir'],
          allowEndpoint: args['allow-endpoint'],
          maxScriptBytes: args['max-script-bytes'],
        });
      },
    )
    .command(
      'proxy',
      'serve the Postgres wire protocol in front of a Postgres server, adding model SQL (docs/proxy.md)',
      (y) =>
        withLimitFlags(y)
          .option('upstream', { type: 'string', requiresArg: true, describe: 'the Postgres server: postgres://host:5432/db (clients bring their own credentials); default DATABASE_URL; missing parts from PGHOST, PGPORT, PGDATABASE, PGSSLMODE' })
          .option('listen', { type: 'string', default: '127.0.0.1:6432', requiresArg: true, describe: 'address and port to listen on' })
          .option('tls-cert', { type: 'string', requiresArg: true, describe: 'PEM certificate (chain) for TLS toward clients' })
          .option('tls-key', { type: 'string', requiresArg: true, describe: 'PEM private key for TLS toward clients' })
          .option('secret-key-file', { type: 'string', requiresArg: true, describe: 'file holding the key literal model secrets are sealed with (32 bytes, hex or base64; default: $MODELSQL_SECRET_KEY)' })
          .option('model-dir', { ...modelDirOption, describe: `${modelDirOption.describe}; none by default: only models whose bytes the catalog holds` })
          .option('allow-endpoint', { ...allowEndpointOption, describe: `${allowEndpointOption.describe}; none by default: models reach no network` })
          .option('max-rows-per-call', limitOption('rows one ML_PREDICT / ML_EVALUATE call may send to a model (default: no limit)'))
          .option('max-inferences', limitOption('model inferences running at once on the proxy (default: no limit)'))
          .option('max-client-inferences', limitOption('model inferences running at once for one user (default: no limit)'))
          .option('log-level', { choices: ['debug', 'info', 'warn', 'error', 'silent'] as const, default: 'info' as const, describe: 'operations log on stderr, logfmt: info logs connections and model runs, error only unexpected errors' })
          .option('shutdown-grace', { type: 'string', default: '30s', requiresArg: true, describe: 'on SIGTERM or SIGINT, time running statements get to finish before their connections are closed (a duration: 30s, 2min)' })
          .option('metrics', { type: 'string', requiresArg: true, describe: 'serve /healthz and Prometheus /metrics over HTTP at HOST:PORT (e.g. 127.0.0.1:9187)' })
          .option('max-message-bytes', limitOption('longest protocol message a client may send, in bytes; longer: FATAL 54000 (default: 268435456, 256 MiB)'))
          .option('max-response-bytes', limitOption("largest answer a remote model's server may send, in bytes (after decompression); larger: 54000 (default: 67108864, 64 MiB)"))
          .option('refresh-url', { type: 'string', requiresArg: true, describe: 'keep materialized tables fresh as this role: postgres://role@host:port/ (its database replaced by each database clients use; password from the URL, PGPASSWORD or ~/.pgpass); default $MODELSQL_REFRESH_URL; without either, nothing is refreshed' })
          .option('relay', { choices: ['auto', 'js'] as const, default: (process.env['MODELSQL_PROXY_RELAY'] === 'js' ? 'js' : 'auto') as 'auto' | 'js', describe: 'how plain pass-through traffic is relayed: auto uses the native relay when it was built at install (Linux), js always the JavaScript relay; default $MODELSQL_PROXY_RELAY, else auto' })
          .option('relay-scheduling', { choices: ['batch', 'normal'] as const, default: 'batch' as const, describe: "the native relay thread's Linux scheduling policy: batch (SCHED_BATCH) spends less CPU per statement when the proxy's own traffic saturates the cores, normal (SCHED_OTHER) has lower latency while other CPU-bound processes share them" })
          .option('refresh', { type: 'boolean', default: true, describe: 'refresh materialized tables when a refresh role is given (--no-refresh: never)' })
          .check((args) => {
            positive(args, ['max-rows-per-call', 'max-inferences', 'max-client-inferences', 'max-message-bytes', 'max-response-bytes']);
            capsFromArgs(args);
            modelFileLimitsFromArgs(args);
            parseDuration(args['shutdown-grace'], 'shutdown-grace');
            if ((args['tls-cert'] === undefined) !== (args['tls-key'] === undefined)) throw new Error('give --tls-cert and --tls-key together');
            if (args.upstream === undefined && !process.env['DATABASE_URL'] && !process.env['PGHOST']) throw new Error('give --upstream, or set DATABASE_URL or PGHOST');
            return true;
          })
          .example('$0 proxy --upstream postgres://localhost:5432/shop', 'then: psql "postgresql://me@127.0.0.1:6432/shop"')
          .example('$0 proxy --upstream postgres://db:5432/shop --model-dir /srv/models --allow-endpoint https://api.openai.com/v1/', 'models from /srv/models, remote models on OpenAI only'),
      async (args) => {
        status = await proxyCommand({
          upstream: args.upstream,
          listen: args.listen,
          tlsCert: args['tls-cert'],
          tlsKey: args['tls-key'],
          secretKeyFile: args['secret-key-file'],
          modelDir: args['model-dir'] ?? [],
          allowEndpoint: args['allow-endpoint'] ?? [],
          maxRowsPerCall: args['max-rows-per-call'],
          maxInferences: args['max-inferences'],
          maxClientInferences: args['max-client-inferences'],
          maxMessageBytes: args['max-message-bytes'],
          maxResponseBytes: args['max-response-bytes'],
          caps: capsFromArgs(args),
          logLevel: args['log-level'],
          shutdownGraceMs: parseDuration(args['shutdown-grace'], 'shutdown-grace'),
          metrics: args.metrics,
          modelFiles: modelFileLimitsFromArgs(args),
          refresh: args.refresh,
          relay: args.relay,
          relayScheduling: args['relay-scheduling'],
          ...(args['refresh-url'] === undefined ? {} : { refreshUrl: args['refresh-url'] }),
        });
      },
    )
    .command(
      'worker',
      'keep the materialized tables of a database fresh (docs/continuous-predictions.md)',
      (y) =>
        y
          .option('db', { ...dbOption, describe: 'DuckDB database file whose materialized tables to refresh' })
          .option('postgres', postgresOption)
          .option('model-dir', modelDirOption)
          .option('allow-endpoint', allowEndpointOption)
          .option('once', { type: 'boolean', default: false, describe: 'refresh every ACTIVE table once, then exit' })
          .check((args) => {
            // An in-memory database has no materialized tables: the worker would wait on nothing for ever.
            if (args.db === undefined && args.postgres === undefined && !process.env['DATABASE_URL']) throw new Error('give --db FILE or --postgres URL (or set DATABASE_URL): the database whose materialized tables to keep fresh');
            return true;
          })
          .example('$0 worker --postgres postgres://localhost:5432/shop', 'refreshes changed sources as their changes commit'),
      async (args) => {
        const target: Target = { db: args.db, postgres: args.postgres, modelDir: args['model-dir'], allowEndpoint: args['allow-endpoint'] };
        const session = await openSession(target);
        if (!session) {
          status = EXIT_ERROR;
          return;
        }
        try {
          const onPostgres = target.db === undefined && (target.postgres !== undefined || process.env['DATABASE_URL'] !== undefined);
          const postgres = onPostgres ? resolvePostgresUrl(target.postgres, process.env, 'client') : undefined;
          const { runWorker } = await import('./worker-command.js');
          status = await runWorker(session, { ...(postgres !== undefined ? { postgres } : {}), once: args.once }, { write, writeError, formatError });
        } catch (error) {
          writeError(`${formatError(error)}\n`);
          status = EXIT_ERROR;
        } finally {
          await session.close().catch(() => undefined);
        }
      },
    )
    .command('catalog', 'model catalog tools', (y) =>
      catalog!.catalogCommands(y, {
        onStatus: (s) => (status = s),
        write,
        writeError,
        sessionOptions: (c) => c.option('db', dbOption).option('postgres', postgresOption),
        exportOnnx: exportOnnxCommand,
      }),
    )
    .strict()
    .version(version())
    .help()
    .alias('h', 'help')
    .alias('V', 'version')
    .wrap(null)
    .fail((message: string | undefined, error: Error | undefined, y) => {
      if (error && !message) throw error;
      y.showHelp((s: string) => writeError(`${s}\n`));
      writeError(`\n${message ?? error?.message ?? 'bad usage'}\n`);
      // Throwing stops yargs before it runs the command's handler.
      throw new UsageError();
    });
  skipHelpCache(parser, argv);
  try {
    await parser.parseAsync();
  } catch (error) {
    if (error instanceof UsageError) return EXIT_USAGE;
    throw error;
  }
  return status;
}

/**
 * Stops yargs from rendering the chosen command's whole help text before running it.
 *
 * yargs formats and keeps a command's help before its handler runs, in case the handler asks
 * for it later (`cacheHelpMessage`, yargs' lib/command.js): laying out every option with
 * cliui and string-width, a visible share of a `modelsql run` start-up. No handler here asks
 * for help (usage errors are reported before a handler runs, and `--help` is answered
 * without one), so, as Angular's CLI does (angular/angular-cli#34087), the step is skipped
 * unless help is asked for. A yargs without this internal hook just renders the help.
 */
function skipHelpCache(parser: unknown, argv: readonly string[]): void {
  if (argv.some((a) => a === '--help' || a === '-h')) return;
  type Internals = { getInternalMethods?: () => { getUsageInstance?: () => { cacheHelpMessage?: () => void } } };
  const usage = (parser as Internals).getInternalMethods?.().getUsageInstance?.();
  if (usage?.cacheHelpMessage) usage.cacheHelpMessage = () => undefined;
}

/** Thrown by the yargs failure handler once the usage message is printed. */
class UsageError extends Error {}

// `modelsql run ... | head`: a closed pipe ends the program quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

main(hideBin(process.argv)).then(exit, (error: unknown) => {
  writeError(`${formatError(error)}\n`);
  exit(EXIT_ERROR);
});
