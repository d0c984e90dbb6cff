/**
 * Turns a catalog model version into a runnable `ModelRuntime`, and checks a model
 * definition against its artifact at CREATE time. Loaded runtimes are kept per session,
 * keyed by everything that changes the loaded model.
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { resolveModelOptions } from '../catalog/model-options.js';
import { InvalidOptionError, ModelSqlError } from '../errors.js';
import { AccessPolicy, type AccessOptions } from './access-policy.js';
import type { ModelRuntime } from './model-runtime.js';
import { resourceCaps, type ResourceCaps } from './resource-caps.js';
import type { LoadModelOptions } from './onnx-model.js';
import type { ModelFileLimits } from './onnx-model-loader.js';
import type { ModelFileReader } from './text/model-directory.js';
import { isRemoteProvider } from './providers/remote-options.js';
import { ONNX_ARTIFACT as STORED_ONNX_ARTIFACT } from '../training/trained-model.js';
import type { ModelColumn, ModelVersion } from '../model-types.js';

// Each kind of runtime (ONNX Runtime, the provider SDKs, tokenizers) is loaded when a model of
// that kind is first checked or loaded: a session that runs no model does not pay for them.
const onnxModel = () => import('./onnx-model.js');
const onnxRuntime = () => import('./onnx-runtime.js');
const remoteRuntime = () => import('./providers/create-remote-runtime.js');
const modelDirectory = () => import('./text/model-directory.js');
const textRuntime = () => import('./text/text-runtime.js');

/** Where downloaded models are cached unless told otherwise: `$MODELSQL_CACHE_DIR`, else `~/.cache/modelsql`. */
export function defaultCacheDir(): string {
  return process.env.MODELSQL_CACHE_DIR ?? join(homedir(), '.cache', 'modelsql');
}

/**
 * Where model files may come from and which hosts models may call (SPEC §5, see
 * access-policy.ts); every field optional, unset lists meaning no limit.
 */
export interface ModelAccessOptions extends AccessOptions, ModelFileLimits {
  /** Directory for downloaded models (default `$MODELSQL_CACHE_DIR` or `~/.cache/modelsql`). */
  readonly cacheDir?: string;
  /** Caps on resource options (resource-caps.ts); unset ones take their documented defaults. */
  readonly resourceCaps?: Partial<ResourceCaps>;
}

/** A model definition checked against its artifact, with INPUT/OUTPUT filled in from the graph when omitted. */
export interface CheckedModel {
  readonly input: readonly ModelColumn[];
  readonly output: readonly ModelColumn[];
  /** What the statement reports without failing (an unset `${env:...}` variable), if anything. */
  readonly notices?: readonly string[];
}

/**
 * Loads and checks runtimes for one session.
 *
 * @example
 * const loader = new RuntimeLoader({});
 * const runtime = await loader.load(version);
 */
export class RuntimeLoader {
  private readonly runtimes = new Map<string, Promise<ModelRuntime>>();
  private readonly loadOptions: LoadModelOptions;
  private readonly policy: AccessPolicy;
  /** The caps model options and ML calls are checked against (resource-caps.ts). */
  readonly caps: ResourceCaps;

  constructor(access: ModelAccessOptions) {
    this.caps = resourceCaps(access.resourceCaps);
    this.loadOptions = {
      cacheDir: access.cacheDir ?? defaultCacheDir(),
      allowedDirectories: access.allowedDirectories,
      allowedUrlPrefixes: access.allowedUrlPrefixes,
      maxModelBytes: access.maxModelBytes,
      maxModelJsonBytes: access.maxModelJsonBytes,
      connectTimeoutMs: access.connectTimeoutMs,
      idleTimeoutMs: access.idleTimeoutMs,
    };
    this.policy = new AccessPolicy(access);
  }

  /**
   * Checks a definition before it enters the catalog: the artifact loads, and its graph
   * matches INPUT/OUTPUT (or supplies them when both are omitted). `held` reads the
   * artifacts the catalog holds for the version (its ONNX graph, and a text model's files),
   * checked instead of reading its `path`.
   */
  async check(options: readonly (readonly [string, string])[], input: readonly ModelColumn[] | undefined, output: readonly ModelColumn[] | undefined, held?: ModelFileReader): Promise<CheckedModel> {
    const resolved = resolveModelOptions(options);
    if (isRemoteProvider(resolved.provider)) return (await remoteRuntime()).checkRemoteModel(resolved.provider, options, input, output, this.policy);
    if (resolved.provider === 'triton') return (await import('./providers/triton-runtime.js')).checkTritonModel(options, input, output, undefined, this.policy);
    // A trained model's artifact was written and checked when it was trained.
    if (resolved.provider === 'internal' && input && output) return { input, output };
    const { isModelDirectory, readModelDirectory, readStoredTextModel } = await modelDirectory();
    const stored = resolved.provider === 'onnx' && held ? await readStoredTextModel(held, undefined, this.loadOptions) : undefined;
    if (stored || (resolved.provider === 'onnx' && !held && (await isModelDirectory(resolved.location!)))) {
      if (resolved.sha256 !== undefined) throw new InvalidOptionError(`option 'sha256' is for a single ONNX file or URL, not a model directory`);
      const model = await (await textRuntime()).checkTextFiles(stored ?? (await readModelDirectory(resolved.location!, this.loadOptions)), options, input, output);
      return { input: model.input, output: model.output };
    }
    refuseTextOptions(options, (await import('./text/text-model.js')).TEXT_MODEL_OPTIONS);
    const { bindOnnxSignature, defaultSignatureFor, inspectOnnx, loadModelBytes } = await onnxModel();
    const heldGraph = resolved.provider === 'onnx' ? await held?.(STORED_ONNX_ARTIFACT) : undefined;
    const bytes = heldGraph ?? (await loadModelBytes(resolved.location!, { ...this.loadOptions, sha256: resolved.sha256 }));
    const signature = await inspectOnnx(bytes);
    const columns = input && output ? { inputs: input, outputs: output } : defaultSignatureFor(signature);
    bindOnnxSignature(signature, columns.inputs, columns.outputs);
    return { input: columns.inputs, output: columns.outputs };
  }

  /**
   * The runtime of a model version, loaded once per session. `artifact` reads the
   * catalog's stored bytes of the version: for trained models (no `path`), and for ONNX
   * models whose bytes the catalog holds (`onnxSha256` set, e.g. brought by a catalog
   * bundle), which take precedence over their `path`. `signal` stops the download of a
   * model URL (the statement that loads the model first was cancelled or timed out).
   */
  async load(version: ModelVersion, artifact?: (name: string) => Promise<Uint8Array | undefined>, signal?: AbortSignal): Promise<ModelRuntime> {
    const stored = version.provider === 'internal';
    // Catalog-held artifacts load from the version's own files: keyed by the version, as a
    // text model's tokenizer and config may differ where its graph (and checksum) does not,
    // and by the identity the host gave its stored row (`storedId`), as the name, version,
    // timestamps and checksums are the writer's to choose: two databases behind one proxy
    // (which shares this loader) may hold versions alike in all of them with other files,
    // and so may one database before and after a DROP and re-import.
    const held = version.provider === 'onnx' && version.onnxSha256 !== undefined && artifact !== undefined;
    const key = JSON.stringify([
      version.provider,
      version.options,
      version.input,
      version.output,
      ...(stored || held ? [version.storedId ?? null, version.database ?? null, version.schema, version.name, version.version, version.createdAt, version.specSha256 ?? null] : []),
      ...(held ? [version.onnxSha256] : []),
      ...(version.secrets ? [secretsDigest(version.secrets)] : []),
    ]);
    let runtime = this.runtimes.get(key);
    if (!runtime) {
      runtime = stored || held ? this.createStored(version, artifact) : this.create(version, signal);
      this.runtimes.set(key, runtime);
      runtime.catch(() => this.runtimes.delete(key));
    }
    return runtime;
  }

  /** Closes every loaded runtime. */
  async close(): Promise<void> {
    const all = [...this.runtimes.values()];
    this.runtimes.clear();
    await Promise.all(all.map(async (r) => (await r.catch(() => undefined))?.close()));
  }

  private async createStored(version: ModelVersion, artifact: ((name: string) => Promise<Uint8Array | undefined>) | undefined): Promise<ModelRuntime> {
    const label = `${version.schema}.${version.name}$${version.version}`;
    const batchSize = resolveModelOptions(version.options).batchSize;
    // A text model's directory held in the catalog (brought by a bundle or a migration) runs from its stored files.
    const text = version.provider === 'onnx' && artifact ? await (await modelDirectory()).readStoredTextModel(artifact, label, this.loadOptions) : undefined;
    if (text) return (await textRuntime()).createTextRuntime(text, version.options, version.input, version.output, batchSize, this.caps.maxPromptBytes);
    const bytes = await artifact?.(STORED_ONNX_ARTIFACT);
    if (!bytes) throw new ModelSqlError('58P01', `model ${label} has no stored ONNX artifact`);
    const [{ bindOnnxSignature }, { createOnnxRuntime }] = await Promise.all([onnxModel(), onnxRuntime()]);
    return createOnnxRuntime(bytes, (signature) => bindOnnxSignature(signature, version.input, version.output), { batchSize });
  }

  private async create(version: ModelVersion, signal: AbortSignal | undefined): Promise<ModelRuntime> {
    if (isRemoteProvider(version.provider)) return (await remoteRuntime()).createRemoteRuntime(version.provider, version.options, version.input, version.output, version.secrets, this.policy);
    if (version.provider === 'triton') return (await import('./providers/triton-runtime.js')).createTritonRuntime(version.options, version.input, version.output, version.secrets, this.policy);
    const resolved = resolveModelOptions(version.options);
    const { isModelDirectory, readModelDirectory } = await modelDirectory();
    if (await isModelDirectory(resolved.location!)) {
      return (await textRuntime()).createTextRuntime(await readModelDirectory(resolved.location!, this.loadOptions), version.options, version.input, version.output, resolved.batchSize, this.caps.maxPromptBytes);
    }
    const [{ bindOnnxSignature, loadModelBytes }, { createOnnxRuntime }] = await Promise.all([onnxModel(), onnxRuntime()]);
    const bytes = await loadModelBytes(resolved.location!, { ...this.loadOptions, sha256: resolved.sha256, signal });
    return createOnnxRuntime(bytes, (signature) => bindOnnxSignature(signature, version.input, version.output), { batchSize: resolved.batchSize });
  }
}

/** The text model options on a model whose `path` is a single ONNX file are an error. */
function refuseTextOptions(options: readonly (readonly [string, string])[], textOptions: readonly string[]): void {
  const key = options.find(([k]) => textOptions.includes(k.toLowerCase()))?.[0];
  if (key !== undefined) throw new InvalidOptionError(`option '${key}' is for local text models, whose 'path' names a model directory`);
}

/** A digest of a version's secrets, so that a changed key loads a new runtime without the key in the cache key. */
function secretsDigest(secrets: readonly (readonly [string, string])[]): string {
  return createHash('sha256').update(JSON.stringify(secrets)).digest('hex');
}
