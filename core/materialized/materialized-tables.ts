/**
 * The statements of materialized tables (Flink's FLIP-435, SPEC §1.5): CREATE, ALTER
 * (SUSPEND, RESUME, REFRESH, SET FRESHNESS, SET REFRESH_MODE), DROP, SHOW, DESCRIBE, and
 * the guard that keeps `DROP TABLE` off a materialized table's source and result.
 *
 * A materialized table is an ordinary host table (its result) plus a catalog row
 * (materialized-store.ts); a CONTINUOUS one also has a state table and, on Postgres,
 * change capture on its source (materialized-refresh.ts). CREATE runs the first refresh;
 * a CREATE that fails leaves nothing behind.
 */
import { ArgumentError, ModelSqlError, QueryCanceledError, UnsupportedFeatureError, positionAt } from '../errors.js';
import type { CaptureSpec, ChangeCaptureDialect, Host } from '../host.js';
import type { ModelCatalog } from '../catalog/model-catalog.js';
import { readCatalogVersion } from '../catalog/catalog-layout.js';
import type { AlterModelStatement, CreateMaterializedTableStatement, DropModelStatement, Freshness, Identifier, MaterializedTableStatement, RefreshMode, Span } from '../sql/ast.js';
import { isSymbol, isWord, tokenize } from '../sql/lexer.js';
import { parseDataType } from '../sql/types.js';
import { carriesColumn, incrementalShape, type IncrementalShape } from './incremental-query.js';
import { MaterializedStore, type MaterializedTable, type RefreshOutcome } from './materialized-store.js';
import {
  INPUT_DIGEST,
  ROW_DIGEST,
  definitionShape,
  emptyResultQuery,
  outputNames,
  privateNames,
  refreshContinuous,
  refreshFull,
  resultName,
  type RefreshContext,
} from './materialized-refresh.js';
import type { QueryResult } from '../model-types.js';

/** The shortest FRESHNESS accepted, in seconds. */
export const MIN_FRESHNESS_SECONDS = 1;
/** The longest FRESHNESS accepted, in seconds (a year). */
export const MAX_FRESHNESS_SECONDS = 366 * 86400;
/** Without REFRESH_MODE, a freshness under this is CONTINUOUS (when the query allows it), else FULL: Flink's `materialized-table.refresh-mode.freshness-threshold` default. */
export const FRESHNESS_THRESHOLD_SECONDS = 30 * 60;
/** Rows of a remote model per prediction statement of a refresh (see `chunkRows`). */
export const REMOTE_CHUNK_ROWS = 32;
/** First and longest pause, in ms, of `ALTER ... REFRESH` waiting for another session's refresh of the table to end. */
const CLAIM_POLL_MS = 10;
const CLAIM_POLL_MAX_MS = 250;
/** The catalog layout that holds materialized tables. */
const MATERIALIZED_LAYOUT = 5;

/**
 * Materialized tables of one session.
 *
 * @example
 * const tables = new MaterializedTables(host, catalog, (sql) => session.sql(sql), tempName);
 * await tables.execute(statement, text);
 */
export class MaterializedTables {
  readonly store: MaterializedStore;
  /** The running statement's (`execute`); none for refreshes started elsewhere. */
  private waiting: StatementWaiting = {};

  constructor(
    private readonly host: Host,
    private readonly catalog: ModelCatalog,
    private readonly run: (sql: string) => Promise<QueryResult>,
    private readonly tempName: (role: string) => string,
  ) {
    this.store = new MaterializedStore(host, catalog.store);
  }

  /**
   * Runs one materialized-table statement of `text`. `waiting.signal` stops a wait for
   * another connection's refresh (57014), and `waiting.beforeWait` is called before one
   * starts (the session arms its statement timer there).
   */
  async execute(statement: MaterializedTableStatement, text: string, waiting: StatementWaiting = {}): Promise<QueryResult> {
    this.waiting = waiting;
    try {
      return await this.executeNow(statement, text);
    } finally {
      this.waiting = {};
    }
  }

  private async executeNow(statement: MaterializedTableStatement, text: string): Promise<QueryResult> {
    switch (statement.kind) {
      case 'create-materialized-table':
        await this.create(statement, text);
        return done('CREATE MATERIALIZED TABLE');
      case 'drop-materialized-table': {
        const table = await this.find(statement.table, statement.tableSpan, text, statement.ifExists);
        if (table) await this.whileNotRefreshed(table, () => this.drop(table), true);
        return done('DROP MATERIALIZED TABLE');
      }
      case 'alter-materialized-table':
        return this.alter(statement, text);
      case 'show-materialized-tables':
        return this.show();
      case 'describe-materialized-table':
        return this.describe((await this.find(statement.table, statement.tableSpan, text, false))!);
    }
  }

  /**
   * Refreshes a materialized table now. With `wait` false, returns undefined at once when
   * another connection is refreshing it (Postgres: it holds the table's refresh claim); with
   * `wait` true, waits for that refresh to end and refreshes after it.
   */
  async refresh(table: MaterializedTable, wait: boolean): Promise<RefreshOutcome | undefined> {
    return this.refreshWith(table, wait);
  }

  /**
   * A refresher's refresh ({@link refresh} with `wait` false): on a host with roles it acts
   * as the table's owner for the refresh, confined (`Host.actAs`; Postgres: `SET ROLE owner`,
   * the refresh's statements inside a `SECURITY DEFINER` function of the owner's, the
   * session reset and checked before and after), so that the owner's query runs with the
   * owner's rights alone and its answers go to the owner's prediction cache.
   */
  async refreshAsOwner(table: MaterializedTable): Promise<RefreshOutcome | undefined> {
    if (this.host.actAs) return this.host.actAs(table.owner, () => this.refreshWith(table, false));
    return this.refreshWith(table, false);
  }

  private async refreshWith(table: MaterializedTable, wait: boolean): Promise<RefreshOutcome | undefined> {
    const capture = this.host.dialect.changeCapture;
    if (capture && !(await this.claim(table, capture, wait))) return undefined;
    try {
      // Read again under the claim: another refresher may have moved it on, or dropped it.
      const current = await this.store.byId(table.id);
      if (!current) return undefined;
      try {
        if (current.mode === 'FULL') return await refreshFull(this.context(), current);
        const model = await this.catalog.resolve(definitionShape(current).binding.model, current.definition);
        return await refreshContinuous(this.context(), current, model.version.output.map((c) => c.name), false, chunkRows(model.version.provider));
      } catch (error) {
        await this.store.recordError(current.id, error instanceof Error ? error.message : String(error)).catch(() => undefined);
        throw error;
      }
    } finally {
      if (capture) await this.host.execute(capture.release, [table.id]);
    }
  }

  /**
   * Claims the refresh of `table` (Postgres: its catalog row, through modelsql's functions):
   * false when another session holds it and `wait` is false; with `wait`, polls until the
   * holder releases it. A table the catalog refuses to refresh (its source no longer its
   * owner's table) gets the error recorded and thrown.
   */
  private async claim(table: MaterializedTable, capture: ChangeCaptureDialect, wait: boolean): Promise<boolean> {
    try {
      return wait ? await this.claimWaiting(table.id, capture) : (await this.host.execute(capture.claim, [table.id])).rows[0]![0] === true;
    } catch (error) {
      if (error instanceof ModelSqlError && error.sqlstate !== '42P01') await this.store.recordError(table.id, error.message).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Claims the refresh of table `id`, polling until its holder releases it; resolves to true.
   * The statement's signal ends the wait with 57014 (the polls' pauses run in Node, where
   * neither a host cancel nor the host's statement timeout reaches).
   */
  private async claimWaiting(id: number, capture: ChangeCaptureDialect): Promise<true> {
    const { signal, beforeWait } = this.waiting;
    for (let pause = CLAIM_POLL_MS; ; pause = Math.min(pause * 2, CLAIM_POLL_MAX_MS)) {
      if ((await this.host.execute(capture.claim, [id])).rows[0]![0] === true) return true;
      await beforeWait?.();
      await abortablePause(pause, signal);
    }
  }

  /**
   * Refuses a host `DROP TABLE` of a materialized table's source (2BP01) or of its result
   * (42809: DROP MATERIALIZED TABLE drops it), before the host runs it.
   */
  async checkHostStatement(statementText: string, text: string, offset: number): Promise<void> {
    const tokens = tokenize(statementText);
    if (!isWord(tokens[0], 'drop') || !isWord(tokens[1], 'table')) return;
    if ((await readCatalogVersion(this.host)) < MATERIALIZED_LAYOUT) return;
    // A role that may not read the catalog's materialized tables is not checked: on Postgres
    // the source is kept by the database itself (a view over it, change-capture.ts).
    const readable = this.host.dialect.changeCapture?.catalogReadable;
    if (readable !== undefined && (await this.host.execute(readable)).rows[0]![0] !== true) return;
    let i = 2;
    if (isWord(tokens[i], 'if') && isWord(tokens[i + 1], 'exists')) i += 2;
    const names: { parts: Identifier[]; span: Span }[] = [];
    let parts: Identifier[] = [];
    for (; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t.kind === 'identifier' || t.kind === 'quoted-identifier') {
        if (parts.length > 0 && !isSymbol(tokens[i - 1], '.')) break;
        parts.push({ kind: 'identifier', value: t.value, quoted: t.kind === 'quoted-identifier', span: t.span });
      } else if (isSymbol(t, ',')) {
        names.push({ parts, span: { start: parts[0]!.span.start, end: t.span.start } });
        parts = [];
      } else if (!isSymbol(t, '.')) break;
    }
    if (parts.length > 0) names.push({ parts, span: { start: parts[0]!.span.start, end: parts[parts.length - 1]!.span.end } });
    await this.checkDrop(names, text, offset);
  }

  /**
   * Refuses (2BP01), before the catalog runs it, `DROP MODEL` of a model a CONTINUOUS
   * materialized table reads, `DROP MODEL m$n` of the version whose predictions it holds,
   * and `ALTER MODEL ... RENAME` of such a model: a table knows the version of its
   * predictions by its number alone, and a model (or version) made again under that name
   * starts again at that number, which a refresh could not tell from the one its
   * predictions came from (it would keep them). Tables the session may not see (Postgres:
   * other roles') are not checked.
   */
  async checkModelStatement(statement: DropModelStatement | AlterModelStatement, text: string): Promise<void> {
    const drop = statement.kind === 'drop-model';
    if (drop ? statement.temporary : statement.action.kind !== 'rename') return;
    if ((await readCatalogVersion(this.host)) < MATERIALIZED_LAYOUT) return;
    let entry;
    try {
      entry = (await this.catalog.resolve({ ...statement.name, version: undefined }, text)).entry;
    } catch {
      return; // the catalog reports a missing model (or skips it, IF EXISTS)
    }
    if (entry.temporary || (entry.database !== undefined && entry.database !== (await this.host.currentDatabase()))) return;
    const version = drop ? statement.name.version : undefined;
    const readers = (await this.store.list()).filter(
      (t) => t.mode === 'CONTINUOUS' && t.model?.schema === entry.schema && t.model.name === entry.name && (version === undefined || t.modelVersion === version),
    );
    if (readers.length === 0) return;
    const what = version !== undefined ? `drop version ${version} of model "${entry.name}": materialized table` : `${drop ? 'drop' : 'rename'} model "${entry.name}": materialized table`;
    const tables = readers.map((r) => `"${r.name}"`).join(', ');
    throw new ModelSqlError(
      '2BP01',
      `cannot ${what} ${tables} ${version !== undefined ? (readers.length === 1 ? 'holds its predictions' : 'hold its predictions') : readers.length === 1 ? 'reads it' : 'read it'}; ` +
        (version !== undefined ? 'make another version the default and refresh first, or drop the materialized table' : `drop ${readers.length === 1 ? 'it' : 'them'} first (DROP MATERIALIZED TABLE)`),
      { position: positionAt(text, statement.name.span.start) },
    );
  }

  private async checkDrop(names: readonly { parts: Identifier[]; span: Span }[], text: string, offset: number): Promise<void> {
    for (const name of names) {
      const { schema, table } = await this.qualify(name.parts);
      const position = positionAt(text, offset + name.span.start);
      const own = await this.store.get(schema, table);
      if (own) throw new ModelSqlError('42809', `"${table}" is a materialized table: drop it with DROP MATERIALIZED TABLE`, { position });
      const readers = await this.store.readersOf(schema, table);
      if (readers.length > 0) {
        throw new ModelSqlError('2BP01', `cannot drop table "${table}": materialized table ${readers.map((r) => `"${r.name}"`).join(', ')} reads it; drop ${readers.length === 1 ? 'it' : 'them'} first (DROP MATERIALIZED TABLE)`, { position });
      }
    }
  }

  private context(): RefreshContext {
    return {
      host: this.host,
      store: this.store,
      run: this.run,
      tempName: this.tempName,
      modelVersion: async (table) => (await this.catalog.resolve(definitionShape(table).binding.model, table.definition)).version.version,
    };
  }

  private async create(statement: CreateMaterializedTableStatement, text: string): Promise<void> {
    checkFreshness(statement.freshness, text);
    const { schema, table: name } = await this.qualify(statement.table);
    if (await this.store.get(schema, name)) throw new ModelSqlError('42P07', `materialized table "${name}" already exists`, { position: positionAt(text, statement.tableSpan.start) });
    // Before anything runs: the host would say so only at CREATE TABLE, without a position.
    if (await this.relationExists(schema, name)) throw new ModelSqlError('42P07', `relation "${name}" already exists`, { position: positionAt(text, statement.tableSpan.start) });
    const shape = incrementalShape(statement, text);
    const incremental = 'call' in shape;
    const mode: RefreshMode = statement.refreshMode?.mode ?? (incremental && statement.freshness.seconds < FRESHNESS_THRESHOLD_SECONDS ? 'CONTINUOUS' : 'FULL');
    if (mode === 'CONTINUOUS' && !incremental) {
      throw new UnsupportedFeatureError(`REFRESH_MODE = CONTINUOUS needs an incremental query (one ML_PREDICT over one table with a primary key, with projections and filters on its rows): ${shape.reason}; use REFRESH_MODE = FULL`, shape.position);
    }
    // The definition is stored alone, so that its spans index into it.
    const definition = text.slice(statement.span.start, statement.span.end);
    const base = { schema, name, definition, query: statement.asQuery.text, mode, freshnessSeconds: statement.freshness.seconds, status: 'ACTIVE' as const, ...(statement.comment !== undefined ? { comment: statement.comment } : {}) };
    if (mode === 'FULL') return this.createFull(base);
    await this.createContinuous(base, statement, shape as IncrementalShape, text);
  }

  private async createFull(base: Omit<MaterializedTable, 'id' | 'stats' | 'owner'>): Promise<void> {
    const staged = this.tempName('create');
    const d = this.host.dialect;
    try {
      await this.run(`CREATE TEMP TABLE ${d.quoteIdentifier(staged)} AS ${base.query}`);
      await this.host.transaction(async () => {
        await this.host.execute(`CREATE TABLE ${resultName(this.host, base)} AS SELECT * FROM ${d.quoteIdentifier(staged)}`);
        const id = await this.store.insert(base);
        const rows = Number((await this.host.execute(`SELECT count(*) FROM ${resultName(this.host, base)}`)).rows[0]![0]);
        await this.store.recordRefresh(id, { durationMs: 0, rowsRefreshed: rows, rowsPredicted: rows, rowsDeleted: 0, providerRows: 0 }, new Date());
      });
    } finally {
      await this.host.dropTempTable(staged).catch(() => undefined);
    }
  }

  private async createContinuous(base: Omit<MaterializedTable, 'id' | 'stats' | 'owner'>, statement: CreateMaterializedTableStatement, shape: IncrementalShape, text: string): Promise<void> {
    const host = this.host;
    const d = host.dialect;
    const sourceSpan = shape.binding.input.span;
    const sourcePosition = positionAt(text, sourceSpan.start);
    const source = await this.qualify(shape.source);
    const keys = await this.primaryKey(source.schema, source.table);
    if (keys === undefined) throw new ModelSqlError('42P01', `relation "${source.table}" does not exist`, { position: sourcePosition });
    if (keys.length === 0) {
      throw new ModelSqlError('55000', `REFRESH_MODE = CONTINUOUS needs a source with a primary key, and table "${source.table}" has none; add one (ALTER TABLE ... ADD PRIMARY KEY) or use REFRESH_MODE = FULL`, { position: sourcePosition });
    }
    const missing = keys.filter((k) => !carriesColumn(shape.items, k));
    if (missing.length > 0) {
      throw new UnsupportedFeatureError(`REFRESH_MODE = CONTINUOUS needs the source's primary key in the result: select ${missing.map((k) => `"${k}"`).join(', ')} unchanged`, positionAt(text, statement.asQuery.span.start));
    }
    if (statement.primaryKey) {
      const declared = statement.primaryKey.map((k) => k.value);
      if (declared.length !== keys.length || declared.some((k) => !keys.includes(k))) {
        throw new ModelSqlError('42P10', `the declared PRIMARY KEY (${declared.join(', ')}) is not the source's primary key (${keys.join(', ')})`, { position: positionAt(text, statement.primaryKey[0]!.span.start) });
      }
    }
    const model = await this.catalog.resolve(shape.binding.model, text);
    const sourceColumns = (await host.describe(`SELECT * FROM ${d.quoteIdentifier(source.schema)}.${d.quoteIdentifier(source.table)}`)).map((c) => c.name);
    for (const id of shape.binding.columns) {
      if (!sourceColumns.some((c) => (id.quoted ? c === id.value : c.toLowerCase() === id.value.toLowerCase()))) {
        throw new ArgumentError('42703', `column "${id.value}" does not exist in the input; columns: ${sourceColumns.join(', ')}`, positionAt(text, id.span.start));
      }
    }
    if (shape.binding.columns.length !== model.version.input.length) {
      throw new ArgumentError('42804', `DESCRIPTOR has ${shape.binding.columns.length} columns but the model takes ${model.version.input.length} inputs`, positionAt(text, shape.binding.descriptorSpan.start));
    }
    const table: MaterializedTable = await host.transaction(async () => {
      const row = { ...base, source: { schema: source.schema, name: source.table }, sourceKey: keys, model: { schema: model.entry.schema, name: model.entry.name } };
      // The result table first: the catalog takes a name only with the creator's own table behind it.
      const names = await outputNames(host, row, model.version.output.map((c) => c.name));
      const typed = model.version.output.map((o, i) => ({ name: names[i]!, type: d.hostType(parseDataType(o.type)) }));
      await host.execute(`CREATE TABLE ${resultName(host, row)} AS SELECT * FROM (${emptyResultQuery(host, row, definitionShape(row), typed)}) AS q LIMIT 0`);
      const created = (await this.store.byId(await this.store.insert(row)))!;
      const spec = await this.captureSpec(created, model.version.output);
      await this.createPrivate(created, spec);
      for (const sql of d.changeCapture?.pin(spec) ?? []) await host.execute(sql);
      return created;
    });
    try {
      await refreshContinuous(this.context(), table, model.version.output.map((c) => c.name), true, chunkRows(model.version.provider));
    } catch (error) {
      await this.drop(table).catch(() => undefined);
      throw error;
    }
  }

  /** What change capture of a CONTINUOUS table works with (`outputs`: the model's; empty when only removing). */
  private async captureSpec(table: MaterializedTable, outputs: readonly { name: string; type: string }[]): Promise<CaptureSpec> {
    const d = this.host.dialect;
    const names = privateNames(this.host, table.id);
    const inResult = outputs.length === 0 ? [] : await outputNames(this.host, table, outputs.map((o) => o.name));
    return {
      id: table.id,
      source: `${d.quoteIdentifier(table.source!.schema)}.${d.quoteIdentifier(table.source!.name)}`,
      keys: table.sourceKey!,
      changes: names.changes,
      prefix: names.prefix,
      state: names.state,
      digests: [INPUT_DIGEST, ROW_DIGEST],
      outputs: outputs.map((o, i) => ({ name: inResult[i]!, type: d.hostType(parseDataType(o.type)) })),
      result: resultName(this.host, table),
    };
  }

  /** The state table (and, with change capture, the capture that records the source's changes) of a CONTINUOUS table. */
  private async createPrivate(table: MaterializedTable, spec: CaptureSpec): Promise<void> {
    const host = this.host;
    const d = host.dialect;
    if (d.changeCapture) {
      for (const sql of d.changeCapture.install(spec)) await host.execute(sql);
      return;
    }
    const names = privateNames(host, table.id);
    const keys = table.sourceKey!.map((k) => d.quoteIdentifier(k));
    const typed = spec.outputs.map((o) => `CAST(NULL AS ${o.type}) AS ${d.quoteIdentifier(o.name)}`);
    await host.execute(
      `CREATE TABLE ${names.state} AS SELECT ${keys.map((k) => `s.${k}`).join(', ')}, CAST(NULL AS ${d.catalogTypes.text}) AS ${INPUT_DIGEST}, CAST(NULL AS ${d.catalogTypes.text}) AS ${ROW_DIGEST}, ${typed.join(', ')} FROM ${spec.source} AS s LIMIT 0`,
    );
    await host.execute(`CREATE INDEX ${names.stateKeyIndex} ON ${names.state} (${keys.join(', ')})`);
  }

  /** Removes the state table and change capture of a CONTINUOUS table. */
  private async dropPrivate(table: MaterializedTable): Promise<void> {
    const capture = this.host.dialect.changeCapture;
    if (capture) for (const sql of capture.uninstall(await this.captureSpec(table, []))) await this.host.execute(sql);
    else await this.host.execute(`DROP TABLE IF EXISTS ${privateNames(this.host, table.id).state}`);
  }

  /** Drops the result, the private objects and the catalog row, in one transaction. */
  private async drop(table: MaterializedTable): Promise<void> {
    const host = this.host;
    await host.transaction(async () => {
      if (table.mode === 'CONTINUOUS' || table.source) await this.dropPrivate(table);
      await host.execute(`DROP TABLE IF EXISTS ${resultName(host, table)}`);
      await this.store.delete(table.id);
    });
  }

  private async alter(statement: Extract<MaterializedTableStatement, { kind: 'alter-materialized-table' }>, text: string): Promise<QueryResult> {
    const table = (await this.find(statement.table, statement.tableSpan, text, false))!;
    const action = statement.action;
    switch (action.kind) {
      case 'suspend':
        if (table.status === 'SUSPENDED') throw new ModelSqlError('55000', `materialized table "${table.name}" is already suspended`, { position: positionAt(text, statement.span.start) });
        await this.store.update(table.id, { status: 'SUSPENDED' });
        break;
      case 'resume':
        if (action.options.length > 0) throw new UnsupportedFeatureError('RESUME WITH (...) options are not supported', positionAt(text, action.options[0]!.keySpan.start));
        await this.store.update(table.id, { status: 'ACTIVE' });
        break;
      case 'refresh':
        await this.refresh(table, true);
        break;
      case 'set-freshness':
        checkFreshness(action.freshness, text);
        await this.store.update(table.id, { freshnessSeconds: action.freshness.seconds });
        break;
      case 'set-refresh-mode':
        if (action.mode !== table.mode) await this.changeMode(table, action.mode, positionAt(text, action.span.start));
        break;
    }
    return done('ALTER MATERIALIZED TABLE');
  }

  /** SET REFRESH_MODE: FULL drops the state; CONTINUOUS needs an incremental query and builds the state. */
  private async changeMode(table: MaterializedTable, mode: RefreshMode, position: ReturnType<typeof positionAt>): Promise<void> {
    if (mode === 'CONTINUOUS') {
      throw new UnsupportedFeatureError(`SET REFRESH_MODE = CONTINUOUS on a FULL materialized table is not supported: drop "${table.name}" and create it with REFRESH_MODE = CONTINUOUS`, position);
    }
    await this.whileNotRefreshed(
      table,
      () =>
        this.host.transaction(async () => {
          await this.dropPrivate(table);
          await this.store.update(table.id, { mode });
        }),
      false,
    );
  }

  /**
   * Runs `work` (a DROP or a change of mode, which drop the table's private objects) holding
   * the table's refresh claim, waited for as `ALTER ... REFRESH` waits: a refresh another
   * connection is running ends first, and none starts until `work` is done. Without the
   * claim, the two take their locks in opposite orders (the refresh its change records,
   * then the result; DROP the result, then the change records) and Postgres ends one of
   * them as a deadlock (40P01). A table the claim refuses (its source no longer its
   * owner's table, refreshed by no one) is changed without it. `dropsRow`: `work` removes
   * the catalog row, and the claim with it.
   */
  private async whileNotRefreshed(table: MaterializedTable, work: () => Promise<void>, dropsRow: boolean): Promise<void> {
    const capture = this.host.dialect.changeCapture;
    let claimed = false;
    if (capture) {
      try {
        claimed = await this.claimWaiting(table.id, capture);
      } catch (error) {
        if (!(error instanceof ModelSqlError && error.sqlstate === '42501')) throw error;
      }
    }
    try {
      await work();
    } catch (error) {
      if (claimed) await this.host.execute(capture!.release, [table.id]).catch(() => undefined);
      throw error;
    }
    if (claimed && !dropsRow) await this.host.execute(capture!.release, [table.id]);
  }

  private async show(): Promise<QueryResult> {
    const tables = await this.store.list();
    return {
      command: 'SHOW MATERIALIZED TABLES',
      columns: [
        { name: 'schema_name', type: 'VARCHAR' },
        { name: 'table_name', type: 'VARCHAR' },
        { name: 'refresh_mode', type: 'VARCHAR' },
        { name: 'freshness', type: 'VARCHAR' },
        { name: 'status', type: 'VARCHAR' },
        { name: 'last_refresh_at', type: 'VARCHAR' },
      ],
      rows: tables.map((t) => [t.schema, t.name, t.mode, freshnessText(t.freshnessSeconds), t.status, t.stats.lastRefreshAt ?? null]),
    };
  }

  private async describe(table: MaterializedTable): Promise<QueryResult> {
    const columns = await this.host.describe(`SELECT * FROM ${resultName(this.host, table)}`);
    const s = table.stats;
    let pending: number | null = null;
    if (table.mode === 'CONTINUOUS' && this.host.dialect.changeCapture) {
      pending = Number((await this.host.execute(`SELECT count(*) FROM ${privateNames(this.host, table.id).changes}`)).rows[0]![0]);
    }
    const rows: [string, string | null][] = [
      ...columns.map((c): [string, string] => [`column ${c.name}`, c.type]),
      ['refresh_mode', table.mode],
      ['freshness', freshnessText(table.freshnessSeconds)],
      ['status', table.status],
      ['query', table.query],
      ['source', table.source ? `${table.source.schema}.${table.source.name}` : null],
      ['source_key', table.sourceKey ? table.sourceKey.join(', ') : null],
      ['model', table.model ? `${table.model.schema}.${table.model.name}` : null],
      ['model_version', table.modelVersion === undefined ? null : String(table.modelVersion)],
      ['last_refresh_at', s.lastRefreshAt ?? null],
      ['last_refresh_ms', s.lastRefreshMs === undefined ? null : String(Math.round(s.lastRefreshMs))],
      ['lag_ms', s.lastLagMs === undefined ? null : String(Math.round(s.lastLagMs))],
      ['pending_changes', pending === null ? null : String(pending)],
      ['refresh_count', String(s.refreshCount)],
      ['rows_refreshed', String(s.rowsRefreshed)],
      ['rows_predicted', String(s.rowsPredicted)],
      ['rows_deleted', String(s.rowsDeleted)],
      ['provider_rows', String(s.providerRows)],
      ['error_count', String(s.errorCount)],
      ['last_error', s.lastError ?? null],
      ['comment', table.comment ?? null],
    ];
    return { command: 'DESCRIBE MATERIALIZED TABLE', columns: [{ name: 'property', type: 'VARCHAR' }, { name: 'value', type: 'VARCHAR' }], rows };
  }

  /** A materialized table by name; 42P01 when missing (undefined with `ifExists`). */
  private async find(parts: readonly Identifier[], span: Span, text: string, ifExists: boolean): Promise<MaterializedTable | undefined> {
    const { schema, table } = await this.qualify(parts);
    const found = await this.store.get(schema, table);
    if (!found && !ifExists) throw new ModelSqlError('42P01', `materialized table "${table}" does not exist`, { position: positionAt(text, span.start) });
    return found;
  }

  /** `[catalog.][schema.]table` → schema and table (the current schema when none is written). */
  private async qualify(parts: readonly Identifier[]): Promise<{ schema: string; table: string }> {
    const table = parts[parts.length - 1]!.value;
    const schema = parts.length > 1 ? parts[parts.length - 2]!.value : await this.host.currentSchema();
    return { schema, table };
  }

  /** Whether a table or view `schema.table` exists (that the session may see: information_schema). */
  private async relationExists(schema: string, table: string): Promise<boolean> {
    // The host's own `=` (catalog-layout.ts, readCatalogVersion).
    const eq = (left: string, right: string) => this.host.dialect.operator(left, '=', right);
    const exists = await this.host.execute(`SELECT count(*) FROM information_schema.tables WHERE ${eq('table_schema', '$1')} AND ${eq('table_name', '$2')}`, [schema, table]);
    return Number(exists.rows[0]![0]) > 0;
  }

  /** The primary-key columns of a table in key order; [] without one; undefined when the table does not exist. */
  private async primaryKey(schema: string, table: string): Promise<string[] | undefined> {
    const eq = (left: string, right: string) => this.host.dialect.operator(left, '=', right);
    if (!(await this.relationExists(schema, table))) return undefined;
    const r = await this.host.execute(
      `SELECT kcu.column_name FROM information_schema.table_constraints AS tc JOIN information_schema.key_column_usage AS kcu ON ${eq('kcu.constraint_name', 'tc.constraint_name')} AND ${eq('kcu.table_schema', 'tc.table_schema')} ` +
        `AND ${eq('kcu.table_name', 'tc.table_name')} WHERE ${eq('tc.constraint_type', "'PRIMARY KEY'")} AND ${eq('tc.table_schema', '$1')} AND ${eq('tc.table_name', '$2')} ORDER BY kcu.ordinal_position`,
      [schema, table],
    );
    return r.rows.map((row) => String(row[0]));
  }
}

/**
 * Rows per prediction statement of a refresh: remote models (whose answers the prediction
 * cache keeps) {@link REMOTE_CHUNK_ROWS}, so that a refresh killed midway loses at most one
 * chunk's answers; local models all at once.
 */
function chunkRows(provider: string): number {
  return provider === 'onnx' || provider === 'internal' ? Infinity : REMOTE_CHUNK_ROWS;
}

/** 22023 for a FRESHNESS below {@link MIN_FRESHNESS_SECONDS} or above {@link MAX_FRESHNESS_SECONDS}. */
function checkFreshness(freshness: Freshness, text: string): void {
  if (freshness.seconds < MIN_FRESHNESS_SECONDS || freshness.seconds > MAX_FRESHNESS_SECONDS) {
    throw new ModelSqlError('22023', `FRESHNESS must be between ${MIN_FRESHNESS_SECONDS} second and 366 days, found INTERVAL '${freshness.amount}' ${freshness.unit}`, { position: positionAt(text, freshness.span.start) });
  }
}

/** `INTERVAL '5' SECOND`, in the largest unit that divides the seconds. */
function freshnessText(seconds: number): string {
  for (const [unit, size] of [['DAY', 86400], ['HOUR', 3600], ['MINUTE', 60]] as const) if (seconds % size === 0) return `INTERVAL '${seconds / size}' ${unit}`;
  return `INTERVAL '${seconds}' SECOND`;
}

function done(command: string): QueryResult {
  return { command, columns: [], rows: [] };
}


/** What a materialized-table statement's waits answer to (`MaterializedTables.execute`). */
export interface StatementWaiting {
  readonly signal?: AbortSignal;
  readonly beforeWait?: () => Promise<void>;
}

/** Waits `ms`; rejects with 57014 as soon as `signal` aborts. */
function abortablePause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.reject(new QueryCanceledError());
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new QueryCanceledError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
