/**
 * What the proxy benchmarks share: a Postgres server (`MODELSQL_BENCH_POSTGRES_URL`, or an
 * embedded one started for the run) and proxies in front of it, each in its own process
 * (`node dist/cli/main.js proxy ...`, as users run it), so that the benchmark's own clients
 * never share the proxy's event loop.
 *
 * `BENCH_PROXY_NODE_ARGS` passes extra Node flags to the proxy processes (for example
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile them).
 *
 * The server's Unix socket is looked for in `MODELSQL_BENCH_POSTGRES_SOCKET_DIR` (default
 * `/tmp`, where the embedded server puts it); without one, the Unix-socket variants are
 * skipped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startPostgres } from '../test/support/global-setup.js';

/** A server and how to reach it directly. */
export interface BenchServer {
  /** Over TCP. */
  readonly directUrl: string;
  /** Over the server's Unix socket (`?host=<dir>`), when it has one on this machine. */
  readonly directSocketUrl: string | undefined;
  close(): Promise<void>;
}

/** A proxy process in front of the server. */
export interface ProxyProcess {
  /** Where clients connect (TCP on 127.0.0.1), with the server's user, password and database. */
  readonly url: string;
  /** The proxy's process id (for CPU accounting). */
  readonly pid: number;
  /** Rejects when the proxy process ends (so a wait on its output cannot hang). */
  readonly exited: Promise<never>;
  /** Sends the proxy a signal. */
  signal(name: NodeJS.Signals): void;
  close(): Promise<void>;
}

/** Starts (or reuses) the benchmark server. */
export async function openBenchServer(): Promise<BenchServer> {
  const given = process.env.MODELSQL_BENCH_POSTGRES_URL;
  const server = given ? undefined : await startPostgres();
  const directUrl = given ?? server!.url;
  const u = new URL(directUrl);
  const dir = process.env.MODELSQL_BENCH_POSTGRES_SOCKET_DIR ?? '/tmp';
  const local = u.hostname === '127.0.0.1' || u.hostname === 'localhost' || u.hostname === '[::1]';
  let directSocketUrl: string | undefined;
  if (local && existsSync(`${dir}/.s.PGSQL.${u.port || 5432}`)) {
    const s = new URL(directUrl);
    s.hostname = 'localhost';
    s.searchParams.set('host', dir);
    directSocketUrl = s.toString();
  }
  return { directUrl, directSocketUrl, close: async () => void (await server?.stop()) };
}

/** The benchmarks' models are files in temporary directories: the proxy may read any file and reach any URL. */
const OPEN_ACCESS = ['--model-dir', '/', '--allow-endpoint', '*'];

/** How {@link startProxyProcess} runs the proxy; every field optional. */
export interface ProxyProcessOptions {
  /** How the proxy reaches the server: `'unix'` over its socket directory (default `'tcp'`). */
  readonly via?: 'tcp' | 'unix';
  /** Node flags before the CLI (default: `BENCH_PROXY_NODE_ARGS`, split on spaces). */
  readonly nodeArgs?: readonly string[];
  /** More `modelsql proxy` flags (default: `BENCH_PROXY_ARGS`, split on spaces; e.g. `--relay-scheduling normal`). */
  readonly proxyArgs?: readonly string[];
  /** The proxy's environment (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  /** Each line the proxy prints on stderr once listening (default: echoed on this process's stderr). */
  readonly onLine?: (line: string) => void;
}

/**
 * Starts `modelsql proxy` in a child process on a free port, in front of the server at
 * `serverUrl`, with open file and endpoint access ({@link OPEN_ACCESS}).
 */
export async function startProxyProcess(serverUrl: string, options: ProxyProcessOptions = {}): Promise<ProxyProcess> {
  const u = new URL(serverUrl);
  const upstream =
    options.via === 'unix' ? `postgres://${u.pathname}?host=${encodeURIComponent(u.searchParams.get('host') ?? '/tmp')}&port=${u.port || 5432}` : `postgres://${u.host}${u.pathname}?sslmode=disable`;
  const cli = fileURLToPath(new URL('../cli/main.js', import.meta.url));
  const nodeArgs = options.nodeArgs ?? process.env.BENCH_PROXY_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
  const proxyArgs = options.proxyArgs ?? process.env.BENCH_PROXY_ARGS?.split(/\s+/).filter(Boolean) ?? [];
  const onLine = options.onLine ?? ((line: string) => process.stderr.write(`${line}\n`));
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, cli, 'proxy', '--upstream', upstream, '--listen', '127.0.0.1:0', '--log-level', 'warn', ...OPEN_ACCESS, ...proxyArgs], {
    stdio: ['ignore', 'inherit', 'pipe'],
    env: options.env ?? process.env,
  });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(new Error(`the proxy exited (${code ?? signal})`))));
  exited.catch(() => undefined);
  let listening: ((port: number) => void) | undefined;
  const port = new Promise<number>((resolve) => (listening = resolve));
  let buffered = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      const m = listening && /listening on [^\s]*:(\d+)/.exec(line);
      if (m) {
        listening!(Number(m[1]));
        listening = undefined;
      } else onLine(line);
    }
  });
  const through = new URL(serverUrl);
  through.host = `127.0.0.1:${await Promise.race([port, exited])}`;
  through.search = '';
  return {
    url: through.toString(),
    pid: child.pid!,
    exited,
    signal: (name) => void child.kill(name),
    async close() {
      if (child.exitCode !== null) return;
      const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      await done;
    },
  };
}

/** User and system CPU seconds a process has used so far (Linux `/proc/<pid>/stat`); undefined elsewhere. */
export async function processCpuSeconds(pid: number): Promise<{ user: number; system: number } | undefined> {
  const fields = await statFields(pid);
  // Fields 14 and 15 of stat(5) (utime, stime); clock ticks are 100 Hz on Linux.
  return fields ? { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 } : undefined;
}

/**
 * The whole machine's busy CPU seconds so far (user, nice, system, irq, softirq; not idle,
 * I/O wait or steal) and its context switches, from `/proc/stat` (Linux; undefined elsewhere).
 */
export async function machineCpu(): Promise<{ busy: number; switches: number } | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    const stat = await readFile('/proc/stat', 'utf8');
    const cpu = /^cpu +(.*)$/m.exec(stat)![1]!.split(/\s+/).map(Number);
    const switches = Number(/^ctxt (\d+)$/m.exec(stat)![1]);
    // user nice system idle iowait irq softirq steal: clock ticks of 100 Hz.
    return { busy: (cpu[0]! + cpu[1]! + cpu[2]! + cpu[5]! + cpu[6]!) / 100, switches };
  } catch {
    return undefined;
  }
}

/** The fields of `/proc/<pid>/stat` after the command name (stat(5) field n is at index n - 3). */
async function statFields(pid: number): Promise<string[] | undefined> {
  const { readFile } = await import('node:fs/promises');
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds (user + system) a Postgres server has used so far, from `/proc` (Linux, a server
 * on this machine; undefined elsewhere): the postmaster's own, that of its children that have
 * ended (parallel workers, earlier sessions: stat(5) cutime and cstime), and that of its live
 * children (backends, parallel workers still running, background processes). The difference of
 * two readings is what the server spent between them.
 */
export async function serverCpuSeconds(postmasterPid: number): Promise<number | undefined> {
  const { readdir } = await import('node:fs/promises');
  const own = await statFields(postmasterPid);
  if (!own) return undefined;
  // utime, stime, cutime, cstime: stat(5) fields 14-17; clock ticks are 100 Hz on Linux.
  let ticks = [11, 12, 13, 14].reduce((s, i) => s + Number(own[i]), 0);
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = await statFields(Number(entry));
    if (fields && Number(fields[1]) === postmasterPid) ticks += Number(fields[11]) + Number(fields[12]); // field 4: the parent
  }
  return ticks / 100;
}

/** The postmaster of the server a session is connected to: the parent of its backend (`/proc`); undefined when the server is not on this machine. */
export async function postmasterOf(backendPid: number): Promise<number | undefined> {
  const fields = await statFields(backendPid);
  return fields ? Number(fields[1]) : undefined;
}
