/**
 * Postgres connection settings the way libpq takes them
 * (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS and
 * https://www.postgresql.org/docs/current/libpq-envars.html): a `postgres://` URL, whose
 * missing parts come from the `PG*` environment variables, then the defaults. When no URL
 * is given, `DATABASE_URL` is the URL.
 *
 * `PGPASSFILE` and `PGCONNECT_TIMEOUT` are read by the Postgres client (node-postgres) itself.
 *
 * Nothing is dropped quietly: a URL parameter or a set `PG*` variable that modelsql does
 * not apply is an error naming it, as is a URL of another scheme, so that a mistyped
 * setting never connects somewhere else.
 */
import { ModelSqlError } from '../core/errors.js';

/** Who connects: the CLI's own Postgres client (`--postgres`), or the proxy to its upstream (`--upstream`). */
export type ConnectionPurpose = 'client' | 'upstream';

/** URL parameter → the `PG*` variable that supplies it when the URL does not (libpq's table). */
const SETTINGS: Readonly<Record<string, string>> = {
  host: 'PGHOST',
  port: 'PGPORT',
  dbname: 'PGDATABASE',
  user: 'PGUSER',
  password: 'PGPASSWORD',
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
  application_name: 'PGAPPNAME',
  options: 'PGOPTIONS',
};

/** The settings the proxy applies to its upstream: clients bring their own user, password and session settings. */
const UPSTREAM_SETTINGS: ReadonlySet<string> = new Set(['host', 'port', 'dbname', 'sslmode']);

/** Settings of the client's session, which the proxy leaves to each client (their variables are not read for it). */
const CLIENT_SESSION_SETTINGS: ReadonlySet<string> = new Set(['user', 'password', 'application_name', 'options']);

/** libpq's other connection variables: modelsql does not apply them, so setting one is an error. */
const UNSUPPORTED_VARIABLES: readonly string[] = [
  'PGHOSTADDR', 'PGSERVICE', 'PGSERVICEFILE', 'PGREQUIRESSL', 'PGSSLCOMPRESSION', 'PGSSLCERTMODE', 'PGSSLCRL',
  'PGSSLCRLDIR', 'PGSSLSNI', 'PGSSLNEGOTIATION', 'PGREQUIREPEER', 'PGREQUIREAUTH', 'PGCHANNELBINDING',
  'PGSSLMINPROTOCOLVERSION', 'PGSSLMAXPROTOCOLVERSION', 'PGMINPROTOCOLVERSION', 'PGMAXPROTOCOLVERSION',
  'PGGSSENCMODE', 'PGGSSDELEGATION', 'PGKRBSRVNAME', 'PGGSSLIB', 'PGTARGETSESSIONATTRS', 'PGLOADBALANCEHOSTS',
  'PGCLIENTENCODING', 'PGDATESTYLE', 'PGTZ', 'PGGEQO',
];

/**
 * sslmode values by purpose. The proxy negotiates TLS itself and falls back as libpq does;
 * node-postgres cannot fall back to plain text, so `allow` and `prefer` are refused for the
 * client rather than made stricter or looser than they say.
 */
const SSL_MODES: Readonly<Record<ConnectionPurpose, readonly string[]>> = {
  client: ['disable', 'require', 'verify-ca', 'verify-full'],
  upstream: ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'],
};

/** 22023: a connection setting modelsql cannot apply. */
function invalid(message: string): ModelSqlError {
  return new ModelSqlError('22023', message);
}

/** Whether `text` is a Postgres URL (`postgres://` or `postgresql://`). */
export function isPostgresUrl(text: string): boolean {
  return /^postgres(ql)?:\/\//i.test(text);
}

/**
 * The complete URL to connect with: `given` (else `DATABASE_URL`, else none), its missing
 * settings filled from the `PG*` variables of `env`. The result names every setting it
 * applies; for the client, an sslmode is applied with libpq's meaning.
 *
 * @throws ModelSqlError 22023 for a URL that is not `postgres://`, an unknown URL parameter,
 *   a set `PG*` variable modelsql does not apply, several hosts, a bad port or sslmode.
 *
 * @example
 * // PGHOST=db.internal PGUSER=ann
 * resolvePostgresUrl('postgres:///shop', process.env, 'client') // 'postgresql://ann@db.internal/shop'
 */
export function resolvePostgresUrl(given: string | undefined, env: NodeJS.ProcessEnv, purpose: ConnectionPurpose): string {
  const source = given !== undefined && given !== '' ? given : env['DATABASE_URL'] || 'postgresql://';
  const from = given !== undefined && given !== '' ? 'the URL' : env['DATABASE_URL'] ? 'DATABASE_URL' : 'the environment';
  if (!isPostgresUrl(source)) throw invalid(`${from} is not a postgres:// URL: ${redact(source)}`);
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw invalid(`${from} is not a valid URL: ${redact(source)}`);
  }
  const settings = new Map<string, string>();
  const put = (key: string, value: string): void => {
    if (value !== '') settings.set(key, value);
  };
  put('user', decodeURIComponent(url.username));
  put('password', decodeURIComponent(url.password));
  put('host', decodeURIComponent(url.hostname.replace(/^\[|\]$/g, '')));
  put('port', url.port);
  put('dbname', decodeURIComponent(url.pathname.replace(/^\//, '')));
  for (const [key, value] of url.searchParams) {
    if (!(key in SETTINGS)) throw invalid(`unknown connection setting "${key}" in ${from}; modelsql applies ${Object.keys(SETTINGS).join(', ')}`);
    put(key, value);
  }

  const unsupported = UNSUPPORTED_VARIABLES.filter((name) => env[name] !== undefined && env[name] !== '');
  if (unsupported.length) throw invalid(`${unsupported.join(', ')} ${unsupported.length === 1 ? 'is' : 'are'} set, but modelsql does not apply ${unsupported.length === 1 ? 'it' : 'them'}: unset ${unsupported.length === 1 ? 'it' : 'them'}`);
  for (const [key, variable] of Object.entries(SETTINGS)) {
    if (purpose === 'upstream' && CLIENT_SESSION_SETTINGS.has(key)) continue;
    const value = env[variable];
    if (!settings.has(key) && value !== undefined) put(key, value);
  }

  if (purpose === 'upstream') {
    const extra = [...settings.keys()].filter((key) => !UPSTREAM_SETTINGS.has(key) && !CLIENT_SESSION_SETTINGS.has(key));
    if (extra.length) throw invalid(`the proxy's upstream takes only ${[...UPSTREAM_SETTINGS].join(', ')}; not ${extra.join(', ')}`);
  }
  const host = settings.get('host');
  if (host?.includes(',')) throw invalid(`several hosts (${host}) are not supported: give one`);
  const port = settings.get('port');
  if (port !== undefined && !(/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535)) throw invalid(`invalid port "${port}"`);
  const sslmode = settings.get('sslmode');
  if (sslmode !== undefined && !SSL_MODES[purpose].includes(sslmode)) {
    throw invalid(`sslmode "${sslmode}" is not supported${purpose === 'client' ? ' by the Postgres client' : ''}: use one of ${SSL_MODES[purpose].join(', ')}`);
  }
  return formatUrl(settings, purpose);
}

/** Writes the settings as one URL; a Unix-socket host (a directory) goes in `?host=`. */
function formatUrl(settings: ReadonlyMap<string, string>, purpose: ConnectionPurpose): string {
  const enc = encodeURIComponent;
  const user = settings.get('user');
  const password = settings.get('password');
  const host = settings.get('host') ?? '';
  const socket = host.startsWith('/');
  let out = 'postgresql://';
  if (user !== undefined && purpose === 'client') out += `${enc(user)}${password !== undefined ? `:${enc(password)}` : ''}@`;
  if (!socket) out += host.includes(':') ? `[${host}]` : enc(host);
  // A URL cannot carry a port without a host: with a socket directory it goes beside ?host=.
  if (settings.has('port') && !socket) out += `:${settings.get('port')}`;
  out += `/${enc(settings.get('dbname') ?? '')}`;
  const params = new URLSearchParams();
  if (socket) params.set('host', host);
  if (socket && settings.has('port')) params.set('port', settings.get('port')!);
  for (const key of ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'application_name', 'options']) {
    const value = settings.get(key);
    if (value !== undefined && (purpose === 'client' || UPSTREAM_SETTINGS.has(key))) params.set(key, value);
  }
  // node-postgres gives sslmode its libpq meaning only when asked to.
  if (purpose === 'client' && settings.has('sslmode')) params.set('uselibpqcompat', 'true');
  const query = params.toString();
  return query ? `${out}?${query}` : out;
}

/** A URL with its password replaced by `******`, for messages. */
export function redact(text: string): string {
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@?#]*:)[^@/?#]*@/i, '$1******@');
}
