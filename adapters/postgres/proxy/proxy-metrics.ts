/**
 * The proxy's Prometheus metrics (prom-client, one registry per proxy): clients, statements,
 * errors, bytes relayed, model runs, rows and tokens, and a histogram of provider request
 * latency. Counts that change on the relay's hot path are kept as plain numbers by each
 * connection ({@link ConnectionCounts}) and summed when the metrics are scraped.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ModelRunEvent, ProviderRequestEvent } from '../../../core/model-types.js';

/** What one client connection has done so far. */
export interface ConnectionCounts {
  /** Statements completed upstream and relayed (CommandComplete). */
  readonly hostStatements: number;
  /** Statements the proxy ran with modelsql (model DDL, ML queries). */
  readonly modelStatements: number;
  /** Errors sent to the client (relayed or the proxy's own). */
  readonly errors: number;
  /** Bytes read from the client and written to it. */
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Messages the native relay carried (native-relay.ts), both ways. */
  readonly nativeMessages: number;
}

const ZERO: ConnectionCounts = Object.freeze({ hostStatements: 0, modelStatements: 0, errors: 0, bytesIn: 0, bytesOut: 0, nativeMessages: 0 });

function add(a: ConnectionCounts, b: ConnectionCounts): ConnectionCounts {
  return {
    hostStatements: a.hostStatements + b.hostStatements,
    modelStatements: a.modelStatements + b.modelStatements,
    errors: a.errors + b.errors,
    bytesIn: a.bytesIn + b.bytesIn,
    bytesOut: a.bytesOut + b.bytesOut,
    nativeMessages: a.nativeMessages + b.nativeMessages,
  };
}

/**
 * The metrics of one proxy. `live` lists the counts of the connections open now.
 *
 * @example
 * const metrics = new ProxyMetrics(() => [...connections].map((c) => c.counts));
 * response.end(await metrics.text());
 */
export class ProxyMetrics {
  readonly registry = new Registry();
  /** Counts of the connections already closed. */
  private closed: ConnectionCounts = ZERO;
  private readonly connections: Counter;
  private readonly runs: Counter<'provider'>;
  private readonly rows: Counter<'provider'>;
  private readonly rowErrors: Counter<'provider'>;
  private readonly tokens: Counter<'provider'>;
  private readonly latency: Histogram<'provider' | 'outcome'>;

  constructor(live: () => readonly ConnectionCounts[]) {
    const registers = [this.registry];
    const total = (): ConnectionCounts => live().reduce(add, this.closed);
    new Gauge({
      name: 'modelsql_proxy_clients',
      help: 'Client connections open now.',
      registers,
      collect() {
        this.set(live().length);
      },
    });
    this.connections = new Counter({ name: 'modelsql_proxy_connections_total', help: 'Client connections accepted.', registers });
    summed(registers, 'modelsql_proxy_statements_total', 'Statements run for clients: host (relayed to Postgres) and model (run by modelsql).', 'kind', () => {
      const t = total();
      return { host: t.hostStatements, model: t.modelStatements };
    });
    new Counter({
      name: 'modelsql_proxy_errors_total',
      help: 'Errors sent to clients (ErrorResponse), relayed from Postgres or the proxy own.',
      registers,
      collect() {
        this.reset();
        this.inc(total().errors);
      },
    });
    summed(registers, 'modelsql_proxy_bytes_total', 'Bytes read from clients (in) and written to them (out).', 'direction', () => {
      const t = total();
      return { in: t.bytesIn, out: t.bytesOut };
    });
    new Counter({
      name: 'modelsql_proxy_native_relayed_messages_total',
      help: 'Messages carried by the native relay (plain pass-through traffic relayed without entering JavaScript), both ways.',
      registers,
      collect() {
        this.reset();
        this.inc(total().nativeMessages);
      },
    });
    this.runs = new Counter({ name: 'modelsql_proxy_model_runs_total', help: 'Model stages finished (ML calls through ONNX or remote models).', labelNames: ['provider'], registers });
    this.rows = new Counter({ name: 'modelsql_proxy_model_rows_total', help: 'Rows sent through models.', labelNames: ['provider'], registers });
    this.rowErrors = new Counter({ name: 'modelsql_proxy_model_row_errors_total', help: 'Rows whose inference failed.', labelNames: ['provider'], registers });
    this.tokens = new Counter({ name: 'modelsql_proxy_model_tokens_total', help: 'Tokens reported by remote providers.', labelNames: ['provider'], registers });
    this.latency = new Histogram({
      name: 'modelsql_proxy_provider_request_duration_seconds',
      help: 'Latency of requests to remote model servers.',
      labelNames: ['provider', 'outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
  }

  /** A client connection was accepted. */
  connectionOpened(): void {
    this.connections.inc();
  }

  /** A client connection closed with `counts`. */
  connectionClosed(counts: ConnectionCounts): void {
    this.closed = add(this.closed, counts);
  }

  /** A model stage finished. */
  modelRun(event: ModelRunEvent): void {
    const labels = { provider: event.provider };
    this.runs.inc(labels);
    this.rows.inc(labels, event.rows);
    this.rowErrors.inc(labels, event.errors);
    if (event.tokens !== undefined) this.tokens.inc(labels, event.tokens);
  }

  /** A request to a remote model's server ended. */
  providerRequest(event: ProviderRequestEvent): void {
    this.latency.observe({ provider: event.provider, outcome: event.failed ? 'error' : 'ok' }, event.seconds);
  }

  /** The metrics in Prometheus's text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A counter with one label whose values are summed when scraped (`values`: label value to total). */
function summed(registers: Registry[], name: string, help: string, label: string, values: () => Readonly<Record<string, number>>): void {
  new Counter({
    name,
    help,
    labelNames: [label],
    registers,
    collect() {
      this.reset();
      for (const [value, n] of Object.entries(values())) this.inc({ [label]: value }, n);
    },
  });
}
