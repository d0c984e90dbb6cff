/**
 * Model DDL (SPEC §1.1): name resolution, TEMPORARY models, versions, and the SHOW /
 * DESCRIBE statements. Persistent models live in the `CatalogStore`; temporary ones in
 * this object, for the life of the session. A temporary model shadows a persistent one
 * of the same name, as in Flink.
 */
import { userInfo } from 'node:os';
import {
  DuplicateModelError,
  InvalidOptionError,
  ModelSqlError,
  UndefinedModelError,
  UnsupportedFeatureError,
  positionAt,
} from '../errors.js';
import type { Host } from '../host.js';
import type { QueryResult } from '../session/session.js';
import type {
  AlterModelStatement,
  ColumnDef,
  CreateModelStatement,
  DescribeModelStatement,
  DropModelStatement,
  ModelName,
  OptionEntry,
  ShowModelsStatement,
  Statement,
} from '../sql/ast.js';
import { formatCreateModel, quoteIdentifier } from '../sql/format.js';
import { formatType } from '../sql/types.js';
import type { ModelColumn } from '../runtime/model-runtime.js';
import type { RuntimeLoader } from '../runtime/runtime-loader.js';
import { CatalogStore, timestampText, type ModelEntry, type ModelKey, type ModelVersion } from './catalog-store.js';
import { displayOptionValue, resolveModelOptions } from './model-options.js';

/** A model name resolved to schema and name, with the `$version` it addressed. */
export interface QualifiedModelName extends ModelKey {
  readonly version?: number;
}

/** A model resolved for use: its entry and the version to run. */
export interface ResolvedModel {
  readonly entry: ModelEntry;
  readonly version: ModelVersion;
}

type ModelStatement = Extract<Statement, { kind: `${string}-model${string}` | 'show-models' }>;

/**
 * The model catalog of one session.
 *
 * @example
 * const catalog = new ModelCatalog(host, loader);
 * const { version } = await catalog.resolve(call.modelName, scriptText);
 */
export class ModelCatalog {
  readonly store: CatalogStore;
  private readonly temporary = new Map<string, ModelEntry>();

  constructor(
    private readonly host: Host,
    private readonly loader: RuntimeLoader,
  ) {
    this.store = new CatalogStore(host);
  }

  /** Resolves `[catalog.][schema.]name` against the current database and schema. */
  async qualify(name: ModelName, sqlText: string): Promise<QualifiedModelName> {
    const parts = name.parts.map((p) => p.value);
    if (parts.length === 3) {
      const database = await this.host.currentDatabase();
      if (parts[0] !== database) {
        throw new UnsupportedFeatureError(
          `models live in the current database ('${database}'); '${parts[0]}' is another one`,
          positionAt(sqlText, name.span.start),
        );
      }
    }
    const schema = parts.length > 1 ? parts[parts.length - 2]! : await this.host.currentSchema();
    return { schema, name: parts[parts.length - 1]!, version: name.version };
  }

  /** Finds a model and the version to use (the named one, else the default); 42704 when missing. */
  async resolve(name: ModelName, sqlText: string): Promise<ResolvedModel> {
    const q = await this.qualify(name, sqlText);
    const entry = await this.find(q);
    const position = positionAt(sqlText, name.span.start);
    if (!entry) throw new UndefinedModelError(`model ${displayName(q)} does not exist`, position);
    const wanted = q.version ?? entry.defaultVersion;
    const version = entry.versions.find((v) => v.version === wanted);
    if (!version) throw new UndefinedModelError(`model ${displayName(q)} has no version ${wanted}`, position);
    return { entry, version };
  }

  /** Runs one model statement. */
  async execute(statement: ModelStatement, sqlText: string): Promise<QueryResult> {
    switch (statement.kind) {
      case 'create-model':
        return this.create(statement, sqlText);
      case 'alter-model':
        return this.alter(statement, sqlText);
      case 'drop-model':
        return this.drop(statement, sqlText);
      case 'show-models':
        return this.showModels(statement, sqlText);
      case 'show-create-model': {
        const { version, entry } = await this.resolve(statement.name, sqlText);
        return result('SHOW CREATE MODEL', [['create_statement', 'VARCHAR']], [[showCreate(entry, version)]]);
      }
      case 'describe-model':
        return this.describe(statement, sqlText);
      case 'show-model-versions': {
        const { entry } = await this.resolve({ ...statement.name, version: undefined }, sqlText);
        return result(
          'SHOW MODEL VERSIONS',
          [['version', 'INTEGER'], ['is_default', 'BOOLEAN'], ['provider', 'VARCHAR'], ['task', 'VARCHAR'], ['comment', 'VARCHAR'], ['created_at', 'VARCHAR']],
          entry.versions.map((v) => [v.version, v.version === entry.defaultVersion, v.provider, v.task ?? null, v.comment ?? null, v.createdAt]),
        );
      }
      case 'grant-model':
      case 'revoke-model':
        throw new UnsupportedFeatureError(`${statement.kind === 'grant-model' ? 'GRANT' : 'REVOKE'} USAGE ON MODEL needs a host with roles (PostgreSQL); ${this.host.name} has none`, positionAt(sqlText, statement.span.start));
    }
  }

  private async find(q: ModelKey): Promise<ModelEntry | undefined> {
    return this.temporary.get(tempKey(q)) ?? (await this.store.get(q));
  }

  private async create(stmt: CreateModelStatement, sqlText: string): Promise<QueryResult> {
    const at = (offset: number) => positionAt(sqlText, offset);
    if (stmt.name.version !== undefined) throw new ModelSqlError('42601', 'CREATE MODEL takes a name without $version', { position: at(stmt.name.span.start) });
    if (stmt.asQuery) {
      throw new UnsupportedFeatureError('CREATE MODEL ... AS <query> (training inside the database) is not available in this version of modelsql', at(stmt.asQuery.span.start));
    }
    const q = await this.qualify(stmt.name, sqlText);
    await this.checkSchema(q.schema, at(stmt.name.span.start));
    const existing = stmt.temporary ? this.temporary.get(tempKey(q)) : await this.store.get(q);
    if (existing && !stmt.orReplace) {
      if (stmt.ifNotExists) return result('CREATE MODEL', [], []);
      throw new DuplicateModelError(`model ${displayName(q)} already exists`, at(stmt.name.span.start));
    }
    const options = stmt.options.map((o) => [o.key, o.value] as const);
    const defaultVersionOption = stmt.options.find((o) => o.key.toLowerCase() === 'default-version');
    if (defaultVersionOption) {
      throw new InvalidOptionError(`'default-version' is set with ALTER MODEL ... SET, not at CREATE`, at(defaultVersionOption.keySpan.start));
    }
    const resolved = resolveModelOptions(options, optionPositions(stmt.options, sqlText));
    const checked = await this.loader.check(options, stmt.input?.map(modelColumn), stmt.output?.map(modelColumn));
    const versionNumber = existing ? Math.max(...existing.versions.map((v) => v.version)) + 1 : 1;
    const version: ModelVersion = {
      schema: q.schema,
      name: q.name,
      version: versionNumber,
      provider: resolved.provider,
      task: resolved.task,
      input: checked.input,
      output: checked.output,
      options,
      comment: stmt.comment,
      createdAt: timestampText(new Date()),
    };
    if (stmt.temporary) {
      const now = timestampText(new Date());
      this.temporary.set(tempKey(q), {
        schema: q.schema,
        name: q.name,
        defaultVersion: versionNumber,
        owner: currentUser(),
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
        temporary: true,
        versions: [...(existing?.versions ?? []), version],
      });
    } else {
      await this.store.addVersion(version, currentUser());
    }
    return result('CREATE MODEL', [], []);
  }

  private async alter(stmt: AlterModelStatement, sqlText: string): Promise<QueryResult> {
    const q = await this.qualify(stmt.name, sqlText);
    const entry = await this.find(q);
    if (!entry) {
      if (stmt.ifExists) return result('ALTER MODEL', [], []);
      throw new UndefinedModelError(`model ${displayName(q)} does not exist`, positionAt(sqlText, stmt.name.span.start));
    }
    const action = stmt.action;
    if (action.kind === 'rename') {
      const to = await this.qualify(action.newName, sqlText);
      if (action.newName.version !== undefined || q.version !== undefined) {
        throw new ModelSqlError('42601', 'RENAME TO renames every version; give names without $version', { position: positionAt(sqlText, action.newName.span.start) });
      }
      await this.checkSchema(to.schema, positionAt(sqlText, action.newName.span.start));
      if (await this.find(to)) throw new DuplicateModelError(`model ${displayName(to)} already exists`, positionAt(sqlText, action.newName.span.start));
      if (entry.temporary) {
        this.temporary.delete(tempKey(q));
        this.temporary.set(tempKey(to), { ...entry, schema: to.schema, name: to.name, versions: entry.versions.map((v) => ({ ...v, schema: to.schema, name: to.name })) });
      } else {
        await this.store.rename(q, to);
      }
      return result('ALTER MODEL', [], []);
    }
    const target = entry.versions.find((v) => v.version === (q.version ?? entry.defaultVersion));
    if (!target) throw new UndefinedModelError(`model ${displayName(q)} has no version ${q.version}`, positionAt(sqlText, stmt.name.span.start));
    let options = [...target.options];
    let defaultVersion: number | undefined;
    if (action.kind === 'set') {
      for (const o of action.options) {
        if (o.key.toLowerCase() === 'default-version') {
          defaultVersion = /^[1-9][0-9]*$/.test(o.value) ? Number(o.value) : Number.NaN;
          if (!entry.versions.some((v) => v.version === defaultVersion)) {
            throw new InvalidOptionError(`model ${displayName(q)} has no version '${o.value}'; versions: ${entry.versions.map((v) => v.version).join(', ')}`, positionAt(sqlText, o.valueSpan.start));
          }
          continue;
        }
        const i = options.findIndex(([k]) => k.toLowerCase() === o.key.toLowerCase());
        if (i >= 0) options[i] = [o.key, o.value];
        else options.push([o.key, o.value]);
      }
    } else {
      for (const { key, span } of action.keys) {
        if (!options.some(([k]) => k.toLowerCase() === key.toLowerCase())) {
          throw new InvalidOptionError(`option '${key}' is not set on model ${displayName(q)}`, positionAt(sqlText, span.start));
        }
        options = options.filter(([k]) => k.toLowerCase() !== key.toLowerCase());
      }
    }
    const positions = action.kind === 'set' ? optionPositions(action.options, sqlText) : undefined;
    const resolved = resolveModelOptions(options, positions);
    const changed = JSON.stringify(options) !== JSON.stringify(target.options);
    if (changed) await this.loader.check(options, target.input, target.output);
    const updated: ModelVersion = { ...target, options, provider: resolved.provider, task: resolved.task };
    if (entry.temporary) {
      this.temporary.set(tempKey(q), {
        ...entry,
        defaultVersion: defaultVersion ?? entry.defaultVersion,
        versions: entry.versions.map((v) => (v.version === target.version ? updated : v)),
      });
    } else {
      await this.host.transaction(async () => {
        if (changed) await this.store.updateVersion(updated);
        if (defaultVersion !== undefined) await this.store.setDefaultVersion(q, defaultVersion);
      });
    }
    return result('ALTER MODEL', [], []);
  }

  private async drop(stmt: DropModelStatement, sqlText: string): Promise<QueryResult> {
    const q = await this.qualify(stmt.name, sqlText);
    const entry = stmt.temporary ? this.temporary.get(tempKey(q)) : await this.find(q);
    const missing = (what: string) => new UndefinedModelError(what, positionAt(sqlText, stmt.name.span.start));
    if (!entry) {
      if (stmt.ifExists) return result('DROP MODEL', [], []);
      throw missing(`${stmt.temporary ? 'temporary ' : ''}model ${displayName(q)} does not exist`);
    }
    if (q.version !== undefined && !entry.versions.some((v) => v.version === q.version)) {
      if (stmt.ifExists) return result('DROP MODEL', [], []);
      throw missing(`model ${displayName(q)} has no version ${q.version}`);
    }
    if (entry.temporary) {
      const versions = entry.versions.filter((v) => q.version !== undefined && v.version !== q.version);
      if (versions.length === 0) this.temporary.delete(tempKey(q));
      else {
        const defaultVersion = versions.some((v) => v.version === entry.defaultVersion) ? entry.defaultVersion : versions[versions.length - 1]!.version;
        this.temporary.set(tempKey(q), { ...entry, versions, defaultVersion });
      }
    } else {
      await this.store.drop(q, q.version);
    }
    return result('DROP MODEL', [], []);
  }

  private async showModels(stmt: ShowModelsStatement, sqlText: string): Promise<QueryResult> {
    let schema: string | undefined;
    if (stmt.schema) {
      const parts = stmt.schema.map((p) => p.value);
      schema = parts[parts.length - 1]!;
      const position = positionAt(sqlText, stmt.schema[0]!.span.start);
      if (parts.length === 2 && parts[0] !== (await this.host.currentDatabase())) {
        throw new UnsupportedFeatureError(`models live in the current database ('${await this.host.currentDatabase()}'); '${parts[0]}' is another one`, position);
      }
      await this.checkSchema(schema, position);
    }
    const persistent = await this.store.list(schema);
    const temporary = [...this.temporary.values()].filter((m) => schema === undefined || m.schema === schema);
    const shadowed = new Set(temporary.map(tempKey));
    let models = [...temporary, ...persistent.filter((m) => !shadowed.has(tempKey(m)))];
    if (stmt.like) {
      const matches = likeMatcher(stmt.like.pattern);
      models = models.filter((m) => matches(m.name) !== stmt.like!.not);
    }
    models.sort((a, b) => (a.schema === b.schema ? compare(a.name, b.name) : compare(a.schema, b.schema)));
    return result(
      'SHOW MODELS',
      [['model_name', 'VARCHAR'], ['schema_name', 'VARCHAR'], ['provider', 'VARCHAR'], ['task', 'VARCHAR'], ['default_version', 'INTEGER'], ['temporary', 'BOOLEAN'], ['comment', 'VARCHAR']],
      models.map((m) => {
        const v = m.versions.find((x) => x.version === m.defaultVersion)!;
        return [m.name, m.schema, v.provider, v.task ?? null, m.defaultVersion, m.temporary, v.comment ?? null];
      }),
    );
  }

  private async describe(stmt: DescribeModelStatement, sqlText: string): Promise<QueryResult> {
    const { entry, version } = await this.resolve(stmt.name, sqlText);
    const rows: unknown[][] = [
      ...version.input.map((c) => [c.name, c.type, !c.type.endsWith('NOT NULL'), 'input', c.comment ?? null]),
      ...version.output.map((c) => [c.name, c.type, !c.type.endsWith('NOT NULL'), 'output', c.comment ?? null]),
    ];
    if (stmt.extended) {
      rows.push(['provider', version.provider, null, 'property', null]);
      rows.push(['version', String(version.version), null, 'property', version.version === entry.defaultVersion ? 'default' : null]);
      rows.push(['versions', entry.versions.map((v) => v.version).join(', '), null, 'property', null]);
      rows.push(['owner', entry.owner, null, 'property', null]);
      rows.push(['temporary', String(entry.temporary), null, 'property', null]);
      rows.push(['created_at', version.createdAt, null, 'property', null]);
      if (version.comment !== undefined) rows.push(['comment', version.comment, null, 'property', null]);
      for (const [k, v] of version.options) rows.push([k, displayOptionValue(k, v), null, 'option', null]);
      if (!entry.temporary) for (const [metric, value] of await this.store.metrics(version)) rows.push([metric, String(value), null, 'metric', null]);
    }
    return result(
      'DESCRIBE MODEL',
      [['name', 'VARCHAR'], ['type', 'VARCHAR'], ['nullable', 'BOOLEAN'], ['kind', 'VARCHAR'], ['comment', 'VARCHAR']],
      rows,
    );
  }

  private async checkSchema(schema: string, position: ReturnType<typeof positionAt>): Promise<void> {
    const found = await this.host.execute('SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1', [schema]);
    if (Number(found.rows[0]![0]) === 0) throw new ModelSqlError('3F000', `schema "${schema}" does not exist`, { position });
  }
}

/** The CREATE MODEL statement that recreates one version, secrets masked (SPEC §1.1). */
export function showCreate(entry: ModelEntry, version: ModelVersion): string {
  return formatCreateModel({
    name: `${quoteIdentifier(version.schema)}.${quoteIdentifier(version.name)}`,
    temporary: entry.temporary,
    input: version.input,
    output: version.output,
    comment: version.comment,
    options: version.options.map(([k, v]) => [k, displayOptionValue(k, v)] as const),
    asQuery: version.asQuery,
  });
}

function modelColumn(c: ColumnDef): ModelColumn {
  return c.comment === undefined ? { name: c.name.value, type: formatType(c.type) } : { name: c.name.value, type: formatType(c.type), comment: c.comment };
}

function optionPositions(options: readonly OptionEntry[], sqlText: string): Map<string, ReturnType<typeof positionAt>> {
  return new Map(options.map((o) => [o.key.toLowerCase(), positionAt(sqlText, o.keySpan.start)]));
}

function tempKey(q: ModelKey): string {
  return JSON.stringify([q.schema, q.name]);
}

function displayName(q: QualifiedModelName): string {
  return `${quoteIdentifier(q.schema)}.${quoteIdentifier(q.name)}${q.version === undefined ? '' : `$${q.version}`}`;
}

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** SQL LIKE semantics: `%` any run, `_` one character, `\` escapes; case-sensitive. */
function likeMatcher(pattern: string): (s: string) => boolean {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i]!);
    else if (ch === '%') source += '[\\s\\S]*';
    else if (ch === '_') source += '[\\s\\S]';
    else source += escapeRegExp(ch);
  }
  const re = new RegExp(`${source}$`, 'u');
  return (s) => re.test(s);
}

function escapeRegExp(ch: string): string {
  return ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function result(command: string, columns: readonly (readonly [string, string])[], rows: readonly (readonly unknown[])[]): QueryResult {
  return { command, columns: columns.map(([name, type]) => ({ name, type })), rows };
}
