/**
 * pgbouncer (Debian's package) in front of the benchmark server, in session pooling mode,
 * the reference the proxy's pass-through is measured against: the same server, reached the
 * same way (TCP, or its Unix socket), clients over TCP on loopback.
 *
 * pgbouncer refuses to run as root; as root it runs as the `postgres` user (`runuser`).
 * Configuration: https://www.pgbouncer.org/config.html
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running pgbouncer. */
export interface PgbouncerProcess {
  /** Where clients connect, with the server's user, password and database. */
  readonly url: string;
  /** pgbouncer's process id (for CPU accounting). */
  readonly pid: number;
  close(): Promise<void>;
}

/**
 * What the benchmark's pgbouncer runs with, in words: session pooling and pgbouncer's own
 * defaults for everything on the relay path (`pkt_buf` 4096, `sbuf_loopcnt` 5; it sets
 * `TCP_NODELAY` on every TCP socket itself). Per transaction it makes one `recvfrom` and
 * one `sendto` each way, the least a relay can: no setting makes that path shorter.
 */
export const PGBOUNCER_SETTINGS = 'in session pooling, one server connection per client, its defaults otherwise (pkt_buf 4096, sbuf_loopcnt 5, TCP_NODELAY)';

/** Whether pgbouncer is installed (`apt-get install pgbouncer`). */
export function pgbouncerAvailable(): boolean {
  try {
    execFileSync('pgbouncer', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A free TCP port on loopback. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Waits until something accepts connections on `port`. */
async function waitForPort(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`pgbouncer exited (${child.exitCode}): ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`pgbouncer did not listen: ${log()}`);
}

/**
 * Starts pgbouncer in session pooling mode in front of `serverUrl` (a `?host=<dir>` URL
 * reaches the server over its Unix socket), with as many server connections as clients.
 */
export async function startPgbouncer(serverUrl: string, clients: number): Promise<PgbouncerProcess> {
  const u = new URL(serverUrl);
  const user = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  const database = u.pathname.slice(1);
  const host = u.searchParams.get('host') ?? u.hostname;
  const dir = mkdtempSync(join(tmpdir(), 'modelsql-pgbouncer-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  const quote = (s: string): string => `"${s.replace(/"/g, '""')}"`;
  writeFileSync(join(dir, 'users.txt'), `${quote(user)} ${quote(password)}\n`, { mode: 0o644 });
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    `[databases]
${database} = host=${host} port=${u.port || 5432} dbname=${database} user=${user} password=${password}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = plain
auth_file = ${join(dir, 'users.txt')}
pool_mode = session
default_pool_size = ${clients}
max_client_conn = ${clients * 4}
logfile = ${join(dir, 'pgbouncer.log')}
pidfile = ${join(dir, 'pgbouncer.pid')}
`,
    { mode: 0o644 },
  );
  const asRoot = process.getuid?.() === 0;
  const [command, args] = asRoot ? ['runuser', ['-u', 'postgres', '--', 'pgbouncer', join(dir, 'pgbouncer.ini')]] : ['pgbouncer', [join(dir, 'pgbouncer.ini')]];
  if (asRoot) execFileSync('chown', ['-R', 'postgres', dir]);
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  await waitForPort(port, child, () => stderr);
  const through = new URL(serverUrl);
  through.host = `127.0.0.1:${port}`;
  through.search = '';
  // Run as root, the child is `runuser`; pgbouncer's own pid is in its pidfile (CPU accounting).
  const pidFile = join(dir, 'pgbouncer.pid');
  const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) || child.pid! : child.pid!;
  return {
    url: through.toString(),
    pid,
    async close() {
      if (child.exitCode === null) {
        const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        await done;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
