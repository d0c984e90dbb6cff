/**
 * Model DDL (SPEC §1.1): name resolution, TEMPORARY models, versions, and the SHOW /
 * DESCRIBE statements. Persistent models live in the `CatalogStore`; temporary ones in
 * this object, for the life of the session. A temporary model shadows a persistent one
 * of the same name, as in Flink.
 */
import { randomUUID } from 'node:crypto';
import {
  DuplicateModelError,
  InsufficientPrivilegeError,
  InvalidOptionError,
  ModelSqlError,
  UndefinedModelError,
  UnsupportedFeatureError,
  positionAt,
  type SourcePosition,
} from '../errors.js';
import type { Host, HostFunction, SessionReading } from '../host.js';
import type {
  AlterModelStatement,
  ColumnDef,
  CreateModelStatement,
  DescribeModelStatement,
  DropModelStatement,
  GrantModelStatement,
  ModelName,
  OptionEntry,
  ShowModelsStatement,
  Statement,
} from '../sql/ast.js';
import { formatCreateModel, modelFunctionName, quoteIdentifier } from '../sql/format.js';
import { formatType, parseDataType } from '../sql/types.js';
import type { RuntimeLoader } from '../runtime/runtime-loader.js';
import { CatalogStore, timestampText, type CatalogLookup, type CatalogStoreOptions, type ModelRef } from './catalog-store.js';
import { checkOptionCaps, checkTextCap } from '../runtime/resource-caps.js';
import { canonicalOptionKey, canonicalOptions, displayOptionValue, resolveModelOptions } from './model-options.js';
import { hasStoredSecrets, splitSecrets } from '../secrets.js';
import { compileModel } from '../training/compile-sql.js';
import { ONNX_ARTIFACT, SPEC_ARTIFACT, parseTrainedModel, type Artifact, type TrainedModel, type TrainingResult } from '../training/trained-model.js';
import { parseTrainingOptions } from '../training/training-options.js';
import type { ModelColumn, ModelEntry, ModelKey, ModelVersion, QueryResult, ResolvedModel } from '../model-types.js';

/** A model name resolved to (database,) schema and name, with the `$version` it addressed. */
export interface QualifiedModelName extends ModelKey {
  readonly version?: number;
  /** The name was written with its database (three parts): messages name it too. */
  readonly withDatabase?: boolean;
}

/** Finds a model named in the statement a resolver was made for (`ModelCatalog.resolver`). */
export type ModelResolver = (name: ModelName) => Promise<ResolvedModel>;

/** What `ModelCatalog.resolver` read for one statement. */
export interface StatementModels {
  readonly resolve: ModelResolver;
  /**
   * The session's settings as the statement's catalog look-up read them, on hosts that
   * read some (`CatalogLookup.session`; of the look-up finding an unsafe search path, when
   * there are several). Absent when no look-up read them (no model named, or no reading).
   */
  readonly session?: SessionReading;
}

/** The model statements {@link ModelCatalog.execute} runs (CREATE MODEL goes through {@link ModelCatalog.create}). */
type ModelStatement = Exclude<Extract<Statement, { kind: `${string}-model${string}` | 'show-models' }>, CreateModelStatement>;

/**
 * A `CREATE MODEL ... AS <query>` the catalog has checked (name, ownership, options), to be
 * trained by the caller (core/session/create-model.ts) and stored with
 * {@link ModelCatalog.storeTrained}. The catalog itself never trains.
 */
export interface PendingTrainedModel {
  readonly kind: 'train';
  /** The training query, as written. */
  readonly query: string;
  /** The statement's options, canonical (`algorithm`, `label`, ...). */
  readonly options: readonly (readonly [string, string])[];
  /** Where the training query and each option (by lower-case key) start in the script, for errors. */
  readonly positions: { readonly query: SourcePosition; readonly option: (key: string) => SourcePosition | undefined };
  readonly statement: CreateModelStatement;
  readonly key: QualifiedModelName;
  readonly existing: ModelEntry | undefined;
  readonly versionNumber: number;
}

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
  /** Artifacts and training metrics of temporary trained models, by {@link artifactKey}. */
  private readonly temporaryArtifacts = new Map<string, Uint8Array>();
  private readonly temporaryMetrics = new Map<string, readonly (readonly [string, number])[]>();
  /** Parsed trained models by the sha256 of their spec artifact (see `trainedModel`). */
  private readonly trainedModels = new Map<string, TrainedModel>();
  /** The stores of attached databases' catalogs, by database (`storeOf`). */
  private readonly stores = new Map<string, CatalogStore>();

  /** `store`: the catalog of the current database, as the host resolves `ml_catalog`. */
  constructor(
    private readonly host: Host,
    private readonly loader: RuntimeLoader,
    private readonly storeOptions: CatalogStoreOptions = {},
  ) {
    this.store = new CatalogStore(host, storeOptions);
  }

  /**
   * Resolves `[database.][schema.]name` against the current database and schema. On hosts
   * with attached databases (DuckDB) the database is the first of three parts (3D000 when
   * none is attached by that name), else the current one; on others a three-part name must
   * name the current database (0A000, as Postgres's cross-database references).
   */
  async qualify(name: ModelName, sqlText: string): Promise<QualifiedModelName> {
    const parts = name.parts.map((p) => p.value);
    const database = await this.databaseOf(name, sqlText, () => this.host.currentDatabase());
    if (parts.length === 3 && !this.host.attachedDatabase) checkDatabase(parts[0]!, await this.host.currentDatabase(), positionAt(sqlText, name.span.start));
    const schema = parts.length > 1 ? parts[parts.length - 2]! : await this.host.currentSchema();
    return qualified(name, database, schema);
  }

  /**
   * The catalog store holding models of `key.database` (an attached database's own
   * `ml_catalog`, created there on first use), or of the current database when absent.
   */
  storeOf(key: { readonly database?: string }): CatalogStore {
    if (key.database === undefined) return this.store;
    let store = this.stores.get(key.database);
    if (!store) {
      store = new CatalogStore(this.host, { ...this.storeOptions, database: key.database });
      this.stores.set(key.database, store);
    }
    return store;
  }

  /** The store of the current database's catalog (on hosts with attached databases: of the one current now). */
  async currentStore(): Promise<CatalogStore> {
    return this.host.attachedDatabase ? this.storeOf({ database: await this.host.currentDatabase() }) : this.store;
  }

  /**
   * Where a run of `version` is logged (`prediction_runs`): its database's catalog; inside
   * an open transaction on a host with attached databases, the current database's, since a
   * DuckDB transaction writes to one database only (the one a statement normally writes:
   * the current one).
   */
  async runLog(version: ModelVersion): Promise<CatalogStore> {
    if (this.host.attachedDatabase && version.database !== undefined && (await this.host.inTransaction())) return this.currentStore();
    return this.storeOf(version);
  }

  /**
   * The database whose catalog holds a written model name, on hosts with attached
   * databases: the first of three parts (3D000 when none is attached under it), else the
   * current database (`current`, asked once per statement). Undefined on other hosts.
   */
  private async databaseOf(name: ModelName, sqlText: string, current: () => Promise<string>): Promise<string | undefined> {
    if (!this.host.attachedDatabase) return undefined;
    if (name.parts.length < 3) return current();
    const database = name.parts[0]!.value;
    await this.checkAttached(database, positionAt(sqlText, name.span.start));
    return database;
  }

  /**
   * Resolves the models of one statement with ONE catalog query per database they live in
   * (`CatalogStore.lookup`: current schema, models, versions) and returns what finds each
   * of them, to run: with the version's literal secrets, read only for a version that has
   * some. A name the queries did not cover is looked up on its own. Nothing outlives the
   * statement: the next one reads the catalog again. The session settings the look-ups
   * read come back with it (the search-path check, for the caller to act on before it
   * runs anything else).
   *
   * @example
   * const models = await catalog.resolver(namedModels(statement.calls), text);
   * const { entry, version } = await models.resolve(name);
   */
  async resolver(names: readonly ModelName[], sqlText: string): Promise<StatementModels> {
    const current = once(() => this.host.currentDatabase());
    const databases = new Map<ModelName, string | undefined>();
    for (const name of names) {
      // A name naming no database is reported when it is resolved (in the statement's error order).
      const database = await this.databaseOf(name, sqlText, current).catch(() => null);
      if (database !== null) databases.set(name, database);
    }
    const lookups = new Map<string | undefined, CatalogLookup>();
    for (const database of new Set(databases.values())) {
      const refs = names.filter((n) => databases.has(n) && databases.get(n) === database).map(modelRef);
      lookups.set(database, await this.storeOf({ database }).lookup(refs));
    }
    const readings = [...lookups.values()].flatMap((l) => (l.session === undefined ? [] : [l.session]));
    const resolve: ModelResolver = async (name) => {
      const database = databases.has(name) ? databases.get(name) : await this.databaseOf(name, sqlText, current);
      const lookup = lookups.get(database) ?? (await this.storeOf({ database }).lookup([modelRef(name)]));
      const { entry, version } = await this.pick(lookup, name, database, sqlText);
      return { entry, version: await this.withSecrets(entry, version) };
    };
    return { resolve, ...(readings.length === 0 ? {} : { session: readings.find((r) => r.unsafeSearchPath !== undefined) ?? readings[0] }) };
  }

  /**
   * Finds a model and the version to use (the named one, else the default), without its
   * secrets (for DESCRIBE and SHOW); 42704 when missing.
   */
  async resolve(name: ModelName, sqlText: string): Promise<ResolvedModel> {
    const database = await this.databaseOf(name, sqlText, () => this.host.currentDatabase());
    return this.pick(await this.storeOf({ database }).lookup([modelRef(name)]), name, database, sqlText);
  }

  /** Finds `name` (of `database`) in a look-up (a name it did not cover is read on its own). */
  private async pick(lookup: CatalogLookup, name: ModelName, database: string | undefined, sqlText: string): Promise<ResolvedModel> {
    const position = positionAt(sqlText, name.span.start);
    const parts = name.parts.map((p) => p.value);
    if (parts.length === 3 && !this.host.attachedDatabase) checkDatabase(parts[0]!, lookup.currentDatabase ?? (await this.host.currentDatabase()), position);
    const schema = parts.length > 1 ? parts[parts.length - 2]! : (lookup.currentSchema ?? (await this.host.currentSchema()));
    const q = qualified(name, database, schema);
    const entry = this.temporary.get(tempKey(q)) ?? (covers(lookup, q) ? lookup.models.find((m) => m.schema === q.schema && m.name === q.name) : await this.storeOf(q).get(q));
    if (!entry) throw new UndefinedModelError(`model ${displayName(q)} does not exist`, position);
    const wanted = q.version ?? entry.defaultVersion;
    const version = entry.versions.find((v) => v.version === wanted);
    if (!version) throw new UndefinedModelError(`model ${displayName(q)} has no version ${wanted}`, position);
    return { entry, version };
  }

  /** A persistent version with its stored literal secrets, read only when its options show some. */
  private async withSecrets(entry: ModelEntry, version: ModelVersion): Promise<ModelVersion> {
    if (entry.temporary || !hasStoredSecrets(version.options)) return version;
    const secrets = await this.storeOf(version).secrets(version, entry.owner);
    return secrets.length === 0 ? version : { ...version, secrets };
  }

  /** Runs one model statement. */
  async execute(statement: ModelStatement, sqlText: string): Promise<QueryResult> {
    switch (statement.kind) {
      case 'alter-model':
        return this.alter(statement, sqlText);
      case 'drop-model':
        return this.drop(statement, sqlText);
      case 'show-models':
        return this.showModels(statement, sqlText);
      case 'show-create-model': {
        const { version, entry } = await this.resolve(statement.name, sqlText);
        // A model of another database than the current one is named with its database.
        const elsewhere = entry.database !== undefined && entry.database !== (await this.host.currentDatabase());
        return result('SHOW CREATE MODEL', [['create_statement', 'VARCHAR']], [[showCreate(entry, version, elsewhere)]]);
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
        return this.grant(statement, sqlText);
    }
  }

  /**
   * `GRANT USAGE ON MODEL m TO role` / `REVOKE ... FROM role` (hosts with roles): by the
   * model's owner (a member of it, or the catalog's owner), on a persistent model; the
   * trained model's host function follows (EXECUTE granted or revoked alongside).
   */
  private async grant(stmt: GrantModelStatement, sqlText: string): Promise<QueryResult> {
    const verb = stmt.kind === 'grant-model' ? 'GRANT' : 'REVOKE';
    const roles = this.host.dialect.roles;
    if (!roles) throw new UnsupportedFeatureError(`${verb} USAGE ON MODEL needs a host with roles (PostgreSQL); ${this.host.name} has none`, positionAt(sqlText, stmt.span.start));
    const q = await this.qualify(stmt.name, sqlText);
    const entry = await this.find(q);
    const at = positionAt(sqlText, stmt.name.span.start);
    if (!entry) throw new UndefinedModelError(`model ${displayName(q)} does not exist`, at);
    if (entry.temporary) throw new UnsupportedFeatureError(`model ${displayName(q)} is temporary: it is visible to this session only, and cannot be granted`, at);
    await this.checkOwner(entry, q, stmt.name, sqlText);
    const role = stmt.role.value;
    const exists = (await this.host.execute(roles.roleExists, [role])).rows.length > 0;
    // REVOKE may still remove the grant of a role dropped since.
    if (!exists && (verb === 'GRANT' || !(await this.storeOf(entry).grantees(entry)).includes(role))) {
      throw new UndefinedModelError(`role ${quoteIdentifier(role)} does not exist`, positionAt(sqlText, stmt.role.span.start));
    }
    await this.host.transaction(async () => {
      await this.storeOf(entry).setGrant(entry, role, verb === 'GRANT');
      const trained = await this.trainedFunction(entry);
      if (trained && exists) await this.host.execute(roles.functionAccess(trained.fn, role, verb === 'GRANT'));
    });
    return result(verb, [], []);
  }

  /** 42501 unless the current role may change the model (SPEC §5; always on hosts without roles). */
  private async checkOwner(entry: ModelEntry, q: QualifiedModelName, name: ModelName, sqlText: string): Promise<void> {
    if (!(await this.store.mayAlter(entry))) {
      throw new InsufficientPrivilegeError(`must be owner of model ${displayName({ ...q, version: undefined })} (owned by ${quoteIdentifier(entry.owner)})`, positionAt(sqlText, name.span.start));
    }
  }

  private async find(q: ModelKey): Promise<ModelEntry | undefined> {
    return this.temporary.get(tempKey(q)) ?? (await this.storeOf(q).get(q));
  }

  /**
   * `CREATE MODEL`: checks the name, the owner and the options, then stores a model that
   * needs no training; a model to train (`CREATE MODEL ... AS <query>`) comes back as a
   * {@link PendingTrainedModel} for the caller to train and hand to {@link storeTrained}.
   */
  async create(stmt: CreateModelStatement, sqlText: string): Promise<QueryResult | PendingTrainedModel> {
    const at = (offset: number) => positionAt(sqlText, offset);
    if (stmt.name.version !== undefined) throw new ModelSqlError('42601', 'CREATE MODEL takes a name without $version', { position: at(stmt.name.span.start) });
    const q = await this.qualify(stmt.name, sqlText);
    if (!stmt.temporary) await this.storeOf(q).checkWritable(at(stmt.name.span.start));
    await this.checkSchema(q, at(stmt.name.span.start));
    const existing = stmt.temporary ? this.temporary.get(tempKey(q)) : await this.storeOf(q).get(q);
    if (existing && !stmt.orReplace) {
      if (stmt.ifNotExists) return result('CREATE MODEL', [], []);
      throw new DuplicateModelError(`model ${displayName(q)} already exists`, at(stmt.name.span.start));
    }
    if (existing) await this.checkOwner(existing, q, stmt.name, sqlText);
    else if (!stmt.temporary && (await this.storeOf(q).taken(q))) {
      if (stmt.ifNotExists) return result('CREATE MODEL', [], []);
      throw new DuplicateModelError(`model ${displayName(q)} already exists (owned by a role whose models this one may not see)`, at(stmt.name.span.start));
    }
    const defaultVersionOption = stmt.options.find((o) => o.key.toLowerCase() === 'default-version');
    if (defaultVersionOption) {
      throw new InvalidOptionError(`'default-version' is set with ALTER MODEL ... SET, not at CREATE`, at(defaultVersionOption.keySpan.start));
    }
    // Stored in canonical form (`'OPENAI.API_KEY'` → `api-key`), as SHOW CREATE MODEL prints them.
    const { options, positions } = canonicalOptions(stmt.options.map((o) => [o.key, o.value] as const), optionPositions(stmt.options, sqlText));
    const resolved = resolveModelOptions(options, positions);
    checkOptionCaps(options, this.loader.caps, (key) => positions.get(key.toLowerCase()));
    checkTextCap('the COMMENT of the model', stmt.comment, this.loader.caps, at(stmt.name.span.start));
    for (const c of [...(stmt.input ?? []), ...(stmt.output ?? [])]) checkTextCap(`the COMMENT of column ${c.name.value}`, c.comment, this.loader.caps, at(c.span.start));
    const versionNumber = existing ? Math.max(...existing.versions.map((v) => v.version)) + 1 : 1;
    if (stmt.asQuery || resolved.provider === 'internal') return this.pendingTrained(stmt, sqlText, q, existing, versionNumber, resolved.provider, options);
    const checked = await this.loader.check(options, stmt.input?.map(modelColumn), stmt.output?.map(modelColumn));
    // Literal secrets (api-key) are kept apart from the readable options (SPEC §5).
    const split = splitSecrets(options);
    const version: ModelVersion = {
      ...databaseOfKey(q),
      schema: q.schema,
      name: q.name,
      version: versionNumber,
      provider: resolved.provider,
      task: resolved.task,
      input: checked.input,
      output: checked.output,
      options: split.options,
      ...(split.secrets.length > 0 ? { secrets: split.secrets } : {}),
      comment: stmt.comment,
      createdAt: timestampText(new Date()),
    };
    await this.addVersion(q, existing, version, stmt.temporary, [], []);
    return result('CREATE MODEL', [], [], checked.notices);
  }

  /** Stores a new version (temporary or persistent) and keeps the model's host function in step. */
  private async addVersion(
    q: ModelKey,
    existing: ModelEntry | undefined,
    version: ModelVersion,
    temporary: boolean,
    artifacts: readonly Artifact[],
    metrics: readonly (readonly [string, number])[],
  ): Promise<void> {
    if (temporary) {
      const now = timestampText(new Date());
      for (const a of artifacts) this.temporaryArtifacts.set(artifactKey(version, a.name), a.content);
      this.temporaryMetrics.set(artifactKey(version, ''), metrics);
      this.temporary.set(tempKey(q), {
        ...databaseOfKey(q),
        schema: q.schema,
        name: q.name,
        defaultVersion: version.version,
        owner: await this.store.currentRole(),
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
        temporary: true,
        // A session's own: the runtime loader the proxy shares keys it apart from every other session's.
        versions: [...(existing?.versions ?? []), { ...version, storedId: `temporary ${randomUUID()}` }],
      });
      await this.syncFunction(existing, this.temporary.get(tempKey(q)));
      return;
    }
    await this.host.transaction(async () => {
      await this.storeOf(version).addVersion(version, artifacts, metrics);
      await this.syncFunction(existing, await this.storeOf(q).get(q));
    });
  }

  /** `CREATE MODEL ... AS <query>`: what to train, once the statement's options name an algorithm and a query. */
  private pendingTrained(
    stmt: CreateModelStatement,
    sqlText: string,
    q: QualifiedModelName,
    existing: ModelEntry | undefined,
    versionNumber: number,
    provider: string,
    options: readonly (readonly [string, string])[],
  ): PendingTrainedModel {
    const at = (offset: number) => positionAt(sqlText, offset);
    const positions = optionPositions(stmt.options, sqlText);
    if (!stmt.asQuery) {
      throw new InvalidOptionError(`'algorithm' trains a model from a query: write CREATE MODEL ... WITH (...) AS SELECT ...`, positions.get('algorithm'));
    }
    if (provider !== 'internal') {
      const key = stmt.options.find((o) => ['provider', 'type', 'format'].includes(o.key.toLowerCase()))!;
      throw new InvalidOptionError(`CREATE MODEL ... AS <query> trains a model inside the database: give 'algorithm' (and 'label'), not '${key.key}'`, at(key.keySpan.start));
    }
    return {
      kind: 'train',
      query: stmt.asQuery.text,
      options,
      positions: { query: at(stmt.asQuery.span.start), option: (key) => positions.get(key.toLowerCase()) },
      statement: stmt,
      key: q,
      existing,
      versionNumber,
    };
  }

  /** Stores the model a {@link PendingTrainedModel} trained to (only called when training succeeded). */
  async storeTrained(pending: PendingTrainedModel, trained: TrainingResult): Promise<QueryResult> {
    const { statement: stmt, key: q } = pending;
    const version: ModelVersion = {
      ...databaseOfKey(q),
      schema: q.schema,
      name: q.name,
      version: pending.versionNumber,
      provider: 'internal',
      task: trained.model.task,
      input: trained.model.input,
      output: trained.model.output,
      options: pending.options,
      comment: stmt.comment,
      asQuery: pending.query,
      createdAt: timestampText(new Date()),
      specSha256: trained.artifacts.find((a) => a.name === SPEC_ARTIFACT)?.sha256,
    };
    await this.addVersion(q, pending.existing, version, stmt.temporary, trained.artifacts, trained.metrics);
    return result('CREATE MODEL', [], []);
  }

  /** The stored bytes of an artifact of a version (temporary models keep theirs in the session). */
  async artifact(version: ModelVersion, name: string): Promise<Uint8Array | undefined> {
    return this.temporaryArtifacts.get(artifactKey(version, name)) ?? (await this.storeOf(version).artifact(version, name));
  }

  /**
   * The trained model behind a version, or undefined for other models. Parsed specs are
   * kept by the identity of the stored version and the sha256 of their bytes
   * (`ModelVersion.storedId`, `specSha256`, read with the version): the checksum is the
   * writer's (a catalog import keeps the bundle's), the identity the host's, so a cached
   * one is always the content the catalog holds now.
   */
  async trainedModel(version: ModelVersion): Promise<TrainedModel | undefined> {
    if (version.provider !== 'internal') return undefined;
    const key = version.specSha256 === undefined ? undefined : JSON.stringify([version.storedId ?? null, version.database ?? null, version.schema, version.name, version.version, version.specSha256]);
    const cached = key === undefined ? undefined : this.trainedModels.get(key);
    if (cached) return cached;
    const bytes = await this.artifact(version, SPEC_ARTIFACT);
    let spec: TrainedModel | undefined;
    try {
      spec = bytes ? parseTrainedModel(bytes) : undefined;
    } catch (error) {
      // Only a catalog written around modelsql (a hand-made import, plain SQL) holds such bytes.
      throw new ModelSqlError('XX001', `the training spec (${SPEC_ARTIFACT}) of model ${displayName({ schema: version.schema, name: version.name, version: version.version })} is damaged: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (spec && key !== undefined) this.trainedModels.set(key, spec);
    return spec;
  }

  /**
   * Keeps a trained model's host function (`ml_predict_<model>`: a DuckDB macro, a Postgres
   * SQL function) in step with the model's default version: dropped when the model (or its
   * name) goes away or its default is not a trained model, (re)created otherwise. Also
   * called by catalog imports (catalog-import.ts), which write the catalog rows themselves.
   */
  async syncFunction(before: ModelEntry | undefined, after: ModelEntry | undefined): Promise<void> {
    const d = this.host.dialect;
    if (!this.host.nativeFunctions || !d.createFunction || !d.dropFunction) return;
    // Before: the model's artifacts may be gone already (DROP), so its provider says it.
    const beforeDefault = before?.versions.find((x) => x.version === before.defaultVersion);
    const old = beforeDefault?.provider === 'internal' ? this.functionOf(before!, beforeDefault) : undefined;
    const now = await this.trainedFunction(after);
    // Hosts with overloading (Postgres) key a function by its parameter types: a changed type is another function.
    const signature = (fn: Omit<HostFunction, 'body' | 'returnType'>) => JSON.stringify([fn.schema, fn.name, fn.params.map((p) => p.type)]);
    if (old && (!now || signature(old) !== signature(now.fn))) await this.host.execute(d.dropFunction(old));
    if (now) {
      if (!now.fn.temporary) await this.refuseOtherFunctions(after!, now.fn, old && signature(old) === signature(now.fn) ? old : undefined);
      const body = compileModel(now.spec, d, now.fn.params.map((p) => d.quoteIdentifier(p.name)), true).outputs[0]!;
      await this.host.execute(d.createFunction({ ...now.fn, body, returnType: d.hostType(parseDataType(now.v.output[0]!.type)) }));
      // Hosts with roles: the function runs for the model's users only (SPEC §5), not for every role.
      if (d.roles && !after!.temporary) {
        await this.host.execute(d.roles.functionAccess(now.fn, 'public', false));
        for (const role of await this.storeOf(after!).grantees(after!)) {
          // A grantee role dropped since its grant keeps its row, but can be granted nothing.
          if ((await this.host.execute(d.roles.roleExists, [role])).rows.length > 0) await this.host.execute(d.roles.functionAccess(now.fn, role, true));
        }
      }
    }
  }

  /**
   * 42710 when the schema holds a function of the model function's name that modelsql did
   * not create for this model (`ours`, the model's function of the same signature, if any):
   * replacing it would run someone else's function, and standing beside it as an overload
   * would let it answer calls meant for the model.
   */
  private async refuseOtherFunctions(model: ModelKey, fn: Omit<HostFunction, 'body' | 'returnType'>, ours: Omit<HostFunction, 'body' | 'returnType'> | undefined): Promise<void> {
    const query = this.host.dialect.otherFunctions?.(fn, ours?.params.map((p) => p.type));
    if (!query) return;
    const [other] = (await this.host.execute(query.sql, query.params)).rows;
    if (other) {
      throw new DuplicateModelError(
        `function ${String(other[0])} already exists and was not created by modelsql for model ${displayName(model)}: drop or rename it, or give the model another name`,
      );
    }
  }

  /** The host function of a model whose default version is a trained model, else undefined. */
  private async trainedFunction(entry: ModelEntry | undefined): Promise<{ v: ModelVersion; spec: TrainedModel; fn: Omit<HostFunction, 'body' | 'returnType'> } | undefined> {
    const v = entry?.versions.find((x) => x.version === entry.defaultVersion);
    const spec = v ? await this.trainedModel(v) : undefined;
    return v && spec ? { v, spec, fn: this.functionOf(entry!, v) } : undefined;
  }

  /** `ml_predict_<model>(inputs...)` of a version, in the model's schema. */
  private functionOf(entry: ModelEntry, v: ModelVersion): Omit<HostFunction, 'body' | 'returnType'> {
    const d = this.host.dialect;
    return {
      ...databaseOfKey(entry),
      schema: entry.schema,
      name: modelFunctionName(entry.name),
      params: v.input.map((c) => ({ name: c.name, type: d.hostType(parseDataType(c.type)) })),
      temporary: entry.temporary,
    };
  }

  private async alter(stmt: AlterModelStatement, sqlText: string): Promise<QueryResult> {
    const q = await this.qualify(stmt.name, sqlText);
    const entry = await this.find(q);
    if (!entry) {
      if (stmt.ifExists) return result('ALTER MODEL', [], []);
      throw new UndefinedModelError(`model ${displayName(q)} does not exist`, positionAt(sqlText, stmt.name.span.start));
    }
    await this.checkOwner(entry, q, stmt.name, sqlText);
    if (!entry.temporary) await this.storeOf(q).checkWritable(positionAt(sqlText, stmt.name.span.start));
    const action = stmt.action;
    if (action.kind === 'rename') {
      const written = await this.qualify(action.newName, sqlText);
      if (action.newName.version !== undefined || q.version !== undefined) {
        throw new ModelSqlError('42601', 'RENAME TO renames every version; give names without $version', { position: positionAt(sqlText, action.newName.span.start) });
      }
      if (written.database !== q.database && action.newName.parts.length === 3) {
        throw new UnsupportedFeatureError(`RENAME TO keeps a model in its database ("${q.database}"), not "${written.database}"`, positionAt(sqlText, action.newName.parts[0]!.span.start));
      }
      // A plain new name keeps the model's schema (as ALTER TABLE ... RENAME TO does); the
      // model stays in its database whatever the name.
      const to: QualifiedModelName = { ...written, ...databaseOfKey(q), schema: action.newName.parts.length === 1 ? q.schema : written.schema };
      await this.checkSchema(to, positionAt(sqlText, action.newName.span.start));
      if (await this.find(to)) throw new DuplicateModelError(`model ${displayName(to)} already exists`, positionAt(sqlText, action.newName.span.start));
      if (entry.temporary) {
        this.temporary.delete(tempKey(q));
        const renamed: ModelEntry = { ...entry, schema: to.schema, name: to.name, versions: entry.versions.map((v) => ({ ...v, schema: to.schema, name: to.name })) };
        for (const v of entry.versions) {
          for (const [key, value] of [...this.temporaryArtifacts].filter(([k]) => k.startsWith(artifactKey(v, '').slice(0, -3)))) {
            this.temporaryArtifacts.delete(key);
            this.temporaryArtifacts.set(artifactKey({ ...v, schema: to.schema, name: to.name }, (JSON.parse(key) as string[])[4]!), value);
          }
          const metrics = this.temporaryMetrics.get(artifactKey(v, ''));
          if (metrics) this.temporaryMetrics.set(artifactKey({ ...v, schema: to.schema, name: to.name }, ''), metrics);
        }
        this.temporary.set(tempKey(to), renamed);
        await this.syncFunction(entry, renamed);
      } else {
        await this.host.transaction(async () => {
          await this.storeOf(q).rename(q, to);
          await this.syncFunction(entry, await this.storeOf(to).get(to));
        });
      }
      return result('ALTER MODEL', [], []);
    }
    const found = entry.versions.find((v) => v.version === (q.version ?? entry.defaultVersion));
    if (!found) throw new UndefinedModelError(`model ${displayName(q)} has no version ${q.version}`, positionAt(sqlText, stmt.name.span.start));
    const target = await this.withSecrets(entry, found);
    // Canonical keys throughout (an older catalog may hold `ONNX.path` as written).
    const provider = target.provider === 'internal' ? undefined : target.provider;
    let options = [...canonicalOptions(target.options, undefined, provider).options];
    let defaultVersion: number | undefined;
    let positions: ReturnType<typeof canonicalOptions>['positions'] | undefined;
    if (action.kind === 'set') {
      const versionOption = action.options.find((o) => o.key.toLowerCase() === 'default-version');
      if (versionOption) {
        defaultVersion = /^[1-9][0-9]*$/.test(versionOption.value) ? Number(versionOption.value) : Number.NaN;
        if (!entry.versions.some((v) => v.version === defaultVersion)) {
          throw new InvalidOptionError(`model ${displayName(q)} has no version '${versionOption.value}'; versions: ${entry.versions.map((v) => v.version).join(', ')}`, positionAt(sqlText, versionOption.valueSpan.start));
        }
      }
      const set = action.options.filter((o) => o !== versionOption);
      const canonical = canonicalOptions(set.map((o) => [o.key, o.value] as const), optionPositions(set, sqlText), provider);
      positions = canonical.positions;
      for (const [key, value] of canonical.options) {
        const i = options.findIndex(([k]) => k.toLowerCase() === key.toLowerCase());
        if (i >= 0) options[i] = [key, value];
        else options.push([key, value]);
      }
    } else {
      for (const { key: written, span } of action.keys) {
        const key = canonicalOptionKey(written, provider);
        if (!options.some(([k]) => k.toLowerCase() === key.toLowerCase())) {
          throw new InvalidOptionError(`option '${written}' is not set on model ${displayName(q)}`, positionAt(sqlText, span.start));
        }
        options = options.filter(([k]) => k.toLowerCase() !== key.toLowerCase());
      }
    }
    const resolved = resolveModelOptions(options, positions);
    checkOptionCaps(options, this.loader.caps, (key) => positions?.get(key.toLowerCase()));
    const changed = JSON.stringify(options) !== JSON.stringify(target.options);
    // An imported ONNX model pointed at another file no longer runs from the bytes a bundle
    // brought; with the same path, the held bytes are what is checked (the file may be gone).
    const held = target.provider === 'onnx' && target.onnxSha256 !== undefined;
    const repointed = held && resolveModelOptions(target.options).location !== resolved.location;
    const checked = changed ? await this.loader.check(options, target.input, target.output, held && !repointed ? (name) => this.artifact(target, name) : undefined) : undefined;
    const split = splitSecrets(options, target.secrets);
    const updated: ModelVersion = { ...target, options: split.options, secrets: split.secrets, provider: resolved.provider, task: resolved.task, ...(repointed ? { onnxSha256: undefined } : {}) };
    if (resolved.provider === 'internal') parseTrainingOptions(options, (key) => positions?.get(key.toLowerCase()));
    if (entry.temporary) {
      const after: ModelEntry = {
        ...entry,
        defaultVersion: defaultVersion ?? entry.defaultVersion,
        versions: entry.versions.map((v) => (v.version === target.version ? updated : v)),
      };
      this.temporary.set(tempKey(q), after);
      if (defaultVersion !== undefined) await this.syncFunction(entry, after);
    } else {
      await this.host.transaction(async () => {
        if (changed) await this.storeOf(updated).updateVersion(updated, entry.owner, repointed ? ONNX_ARTIFACT : undefined);
        if (defaultVersion !== undefined) {
          await this.storeOf(q).setDefaultVersion(q, defaultVersion);
          await this.syncFunction(entry, await this.storeOf(q).get(q));
        }
      });
    }
    return result('ALTER MODEL', [], [], checked?.notices);
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
    await this.checkOwner(entry, q, stmt.name, sqlText);
    if (!entry.temporary) await this.storeOf(q).checkWritable(positionAt(sqlText, stmt.name.span.start));
    if (entry.temporary) {
      const versions = entry.versions.filter((v) => q.version !== undefined && v.version !== q.version);
      let after: ModelEntry | undefined;
      if (versions.length === 0) this.temporary.delete(tempKey(q));
      else {
        const defaultVersion = versions.some((v) => v.version === entry.defaultVersion) ? entry.defaultVersion : versions[versions.length - 1]!.version;
        after = { ...entry, versions, defaultVersion };
        this.temporary.set(tempKey(q), after);
      }
      await this.syncFunction(entry, after);
      for (const v of entry.versions.filter((x) => !versions.includes(x))) {
        for (const key of [...this.temporaryArtifacts.keys()].filter((k) => k.startsWith(artifactKey(v, '').slice(0, -3)))) this.temporaryArtifacts.delete(key);
        this.temporaryMetrics.delete(artifactKey(v, ''));
      }
    } else {
      await this.host.transaction(async () => {
        await this.storeOf(q).drop(q, q.version);
        await this.syncFunction(entry, await this.storeOf(q).get(q));
      });
    }
    return result('DROP MODEL', [], []);
  }

  private async showModels(stmt: ShowModelsStatement, sqlText: string): Promise<QueryResult> {
    let schema: string | undefined;
    let database: string | undefined;
    const parts = stmt.schema?.map((p) => p.value) ?? [];
    const position = stmt.schema ? positionAt(sqlText, stmt.schema[0]!.span.start) : undefined;
    if (this.host.attachedDatabase) {
      // `FROM db.schema` reads that database's catalog; otherwise the current database's.
      database = parts.length === 2 ? parts[0]! : await this.host.currentDatabase();
      if (parts.length === 2) await this.checkAttached(database, position);
    } else if (parts.length === 2) {
      checkDatabase(parts[0]!, await this.host.currentDatabase(), position!);
    }
    if (stmt.schema) {
      schema = parts[parts.length - 1]!;
      await this.checkSchema({ ...(database === undefined ? {} : { database }), schema }, position!);
    }
    const persistent = await this.storeOf({ database }).list(schema);
    const temporary = [...this.temporary.values()].filter((m) => m.database === database && (schema === undefined || m.schema === schema));
    const shadowed = new Set(temporary.map(tempKey));
    let models = [...temporary, ...persistent.filter((m) => !shadowed.has(tempKey(m)))];
    if (stmt.like) {
      const matches = likeMatcher(stmt.like.pattern, stmt.like.caseInsensitive === true);
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
      // Hosts with roles: the grants the caller may see (all of them for the owner).
      if (this.host.dialect.roles && !entry.temporary) rows.push(['grants', (await this.storeOf(entry).grantees(entry)).join(', '), null, 'property', null]);
      rows.push(['temporary', String(entry.temporary), null, 'property', null]);
      rows.push(['created_at', version.createdAt, null, 'property', null]);
      if (version.comment !== undefined) rows.push(['comment', version.comment, null, 'property', null]);
      for (const [k, v] of version.options) rows.push([k, displayOptionValue(k, v), null, 'option', null]);
      const metrics = entry.temporary ? (this.temporaryMetrics.get(artifactKey(version, '')) ?? []) : await this.storeOf(version).metrics(version);
      for (const [metric, value] of metrics) rows.push([metric, String(value), null, 'metric', null]);
    }
    return result(
      'DESCRIBE MODEL',
      [['name', 'VARCHAR'], ['type', 'VARCHAR'], ['nullable', 'BOOLEAN'], ['kind', 'VARCHAR'], ['comment', 'VARCHAR']],
      rows,
    );
  }

  /** 3D000 unless a database is attached under `database` (hosts with attached databases). */
  private async checkAttached(database: string, position: ReturnType<typeof positionAt> | undefined): Promise<void> {
    if (!(await this.host.attachedDatabase?.(database))) {
      throw new ModelSqlError('3D000', `database ${quoteIdentifier(database)} does not exist (no database is attached under that name)`, { position });
    }
  }

  /** 3F000 unless `key.schema` exists in the key's database (default: the current one). */
  private async checkSchema(key: { readonly database?: string; readonly schema: string }, position: ReturnType<typeof positionAt>): Promise<void> {
    const found = await this.host.execute(
      `SELECT count(*) FROM information_schema.schemata WHERE ${this.host.dialect.operator('schema_name', '=', '$1')} AND ${this.host.dialect.operator('catalog_name', '=', key.database === undefined ? 'current_database()' : '$2')}`,
      key.database === undefined ? [key.schema] : [key.schema, key.database],
    );
    if (Number(found.rows[0]![0]) === 0) {
      throw new ModelSqlError('3F000', `schema ${key.database === undefined ? '' : `${quoteIdentifier(key.database)}.`}"${key.schema}" does not exist`, { position });
    }
  }
}

/**
 * The CREATE MODEL statement that recreates one version, secrets masked (SPEC §1.1); with
 * `withDatabase`, the name has the version's database too (`"db"."schema"."name"`).
 */
export function showCreate(entry: ModelEntry, version: ModelVersion, withDatabase = false): string {
  const database = withDatabase && version.database !== undefined ? `${quoteIdentifier(version.database)}.` : '';
  return formatCreateModel({
    name: `${database}${quoteIdentifier(version.schema)}.${quoteIdentifier(version.name)}`,
    temporary: entry.temporary,
    // A trained model's INPUT and OUTPUT follow from its query (the parser rejects them with AS).
    input: version.asQuery === undefined ? version.input : undefined,
    output: version.asQuery === undefined ? version.output : undefined,
    comment: version.comment,
    options: canonicalOptions(version.options, undefined, version.provider).options.map(([k, v]) => [k, displayOptionValue(k, v)] as const),
    asQuery: version.asQuery,
  });
}

function modelColumn(c: ColumnDef): ModelColumn {
  return c.comment === undefined ? { name: c.name.value, type: formatType(c.type) } : { name: c.name.value, type: formatType(c.type), comment: c.comment };
}

function optionPositions(options: readonly OptionEntry[], sqlText: string): Map<string, ReturnType<typeof positionAt>> {
  return new Map(options.map((o) => [o.key.toLowerCase(), positionAt(sqlText, o.keySpan.start)]));
}

/** Key of an artifact of a temporary version: `["database","schema","name",version,"artifact"]`. */
function artifactKey(v: ModelKey & { readonly version: number }, name: string): string {
  return JSON.stringify([v.database ?? null, v.schema, v.name, v.version, name]);
}

/** A written model name as the catalog look-up takes it. */
function modelRef(name: ModelName): ModelRef {
  const parts = name.parts.map((p) => p.value);
  return parts.length > 1 ? { schema: parts[parts.length - 2]!, name: parts[parts.length - 1]! } : { name: parts[0]! };
}

/** Whether a look-up read the model `key` (an unqualified name it was asked for is in its current schema). */
function covers(lookup: CatalogLookup, key: ModelKey): boolean {
  return lookup.refs.some((r) => r.name === key.name && (r.schema ?? lookup.currentSchema) === key.schema);
}

/**
 * On a host without attached databases, models live in the current database: a three-part
 * name must name it (0A000 otherwise, Postgres's "cross-database references are not implemented").
 */
function checkDatabase(database: string, current: string, position: ReturnType<typeof positionAt>): void {
  if (database !== current) throw new UnsupportedFeatureError(`cross-database references are not implemented: models live in the current database ("${current}"), not in "${database}"`, position);
}

/** A written name with its database and schema resolved. */
function qualified(name: ModelName, database: string | undefined, schema: string): QualifiedModelName {
  return {
    ...(database === undefined ? {} : { database }),
    schema,
    name: name.parts[name.parts.length - 1]!.value,
    version: name.version,
    ...(name.parts.length === 3 ? { withDatabase: true } : {}),
  };
}

/** A function's result, computed on the first call and shared by later ones. */
function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= fn());
}

/** The `database` member of a key, when it has one (to spread into another key). */
function databaseOfKey(key: { readonly database?: string }): { readonly database?: string } {
  return key.database === undefined ? {} : { database: key.database };
}

function tempKey(q: ModelKey): string {
  return JSON.stringify([q.database ?? null, q.schema, q.name]);
}

function displayName(q: QualifiedModelName): string {
  const database = q.withDatabase && q.database !== undefined ? `${quoteIdentifier(q.database)}.` : '';
  return `${database}${quoteIdentifier(q.schema)}.${quoteIdentifier(q.name)}${q.version === undefined ? '' : `$${q.version}`}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** SQL LIKE semantics: `%` any run, `_` one character, `\` escapes; case-sensitive unless `caseInsensitive` (ILIKE). */
export function likeMatcher(pattern: string, caseInsensitive = false): (s: string) => boolean {
  let source = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i]!);
    else if (ch === '%') source += '[\\s\\S]*';
    else if (ch === '_') source += '[\\s\\S]';
    else source += escapeRegExp(ch);
  }
  const re = new RegExp(`${source}$`, caseInsensitive ? 'iu' : 'u');
  return (s) => re.test(s);
}

function escapeRegExp(ch: string): string {
  return ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function result(command: string, columns: readonly (readonly [string, string])[], rows: readonly (readonly unknown[])[], notices?: readonly string[]): QueryResult {
  const shaped = { command, columns: columns.map(([name, type]) => ({ name, type })), rows };
  return notices && notices.length > 0 ? { ...shaped, notices } : shaped;
}
