/**
 * Reads a Hugging Face-style model directory (SPEC §2.6), as exported for transformers.js
 * and optimum: `config.json`, `tokenizer.json`, `tokenizer_config.json`, and the graph at
 * `onnx/model.onnx` (transformers.js layout) or `model.onnx` (optimum layout).
 * Sentence-transformers' `1_Pooling/config.json` and `modules.json` are read when present
 * (pooling mode, normalization). Nothing is downloaded: only these local files are read,
 * each checked against the server's allowed model directories after `realpath` and against
 * the largest model file allowed (`maxModelBytes`, as for single ONNX files); the JSON files
 * also against the largest JSON file allowed (`maxModelJsonBytes`, 64 MiB by default), as they
 * are parsed whole on the calling thread.
 *
 * The same files may be held in the catalog instead, as artifacts of the model version
 * (core/catalog/snapshot-onnx.ts carries them in bundles and migrations): the graph as
 * `model.onnx`, the others under their names in the directory ({@link TEXT_MODEL_FILES}).
 * {@link parseModelFiles} reads either through a {@link ModelFileReader}.
 */
import { realpath, stat } from 'node:fs/promises';
import { readBoundedFile } from '../bounded-file.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelSqlError } from '../../errors.js';
import { AccessPolicy, type AccessOptions } from '../access-policy.js';
import { DEFAULT_DOWNLOAD_LIMITS } from '../model-download.js';
import { DEFAULT_MODEL_JSON_BYTES, type ModelFileLimits } from '../onnx-model-loader.js';

/** The files of a model directory, parsed. */
export interface TextModelFiles {
  /** `config.json` (model type, hidden size, `id2label`, `max_position_embeddings`). */
  readonly config: Readonly<Record<string, unknown>>;
  /** `tokenizer.json`, as parsed JSON. */
  readonly tokenizer: Readonly<Record<string, unknown>>;
  /** `tokenizer_config.json` (`model_max_length`, special tokens); `{}` when absent. */
  readonly tokenizerConfig: Readonly<Record<string, unknown>>;
  /** `1_Pooling/config.json` of sentence-transformers, when present. */
  readonly pooling?: Readonly<Record<string, unknown>>;
  /** Whether `modules.json` lists a `Normalize` module (sentence-transformers). */
  readonly normalizeModule: boolean;
  /** The ONNX graph bytes. */
  readonly graph: Uint8Array;
}

/** Graph locations tried in order. */
const GRAPH_PATHS = ['onnx/model.onnx', 'model.onnx'] as const;

/** The name a text model's graph is held under in the catalog (the ONNX artifact of every imported model). */
export const TEXT_MODEL_GRAPH = 'model.onnx';

/** A text model's files besides the graph, by their names in the directory: what a catalog holds of it. */
export const TEXT_MODEL_FILES = ['config.json', 'tokenizer.json', 'tokenizer_config.json', '1_Pooling/config.json', 'modules.json'] as const;

/** Reads one file of a text model by name ({@link TEXT_MODEL_FILES}, {@link TEXT_MODEL_GRAPH}); undefined when there is none. */
export type ModelFileReader = (name: string) => Promise<Uint8Array | undefined>;

/** Whether `location` names an existing local directory (not a file, not a URL). */
export async function isModelDirectory(location: string): Promise<boolean> {
  const trimmed = location.trim();
  if (/^https?:\/\//i.test(trimmed)) return false;
  try {
    return (await stat(localPath(trimmed))).isDirectory();
  } catch {
    return false;
  }
}

function localPath(location: string): string {
  return /^file:\/\//i.test(location) ? fileURLToPath(location) : path.resolve(process.cwd(), location);
}

/**
 * The bytes of the model directory `location`'s files, by the names a catalog holds them
 * under: the {@link TEXT_MODEL_FILES} present, and the graph (`onnx/model.onnx`, else
 * `model.onnx`) as {@link TEXT_MODEL_GRAPH}. Nothing is parsed.
 *
 * Errors: 42501 outside the allowed model directories; 58P01 `tokenizer.json`,
 * `config.json` or the graph missing; 54000 a file over `maxModelBytes` (default 2 GiB), or
 * a JSON file over `maxModelJsonBytes` (default 64 MiB), before it is read.
 *
 * @example
 * const files = await readModelDirectoryFiles('models/all-MiniLM-L6-v2', { allowedDirectories: ['models'] });
 */
export async function readModelDirectoryFiles(location: string, access: AccessOptions & ModelFileLimits = {}): Promise<Map<string, Uint8Array>> {
  const dir = localPath(location.trim());
  const policy = new AccessPolicy(access);
  const max = access.maxModelBytes ?? DEFAULT_DOWNLOAD_LIMITS.maxBytes;
  const jsonMax = access.maxModelJsonBytes ?? DEFAULT_MODEL_JSON_BYTES;
  const read = async (name: string): Promise<Uint8Array | undefined> => {
    const file = path.join(dir, name);
    let real: string | undefined;
    try {
      real = await realpath(file);
    } catch {
      real = undefined;
    }
    await policy.checkFile(file, real, `${location.replace(/\/+$/, '')}/${name}`);
    if (real === undefined) return undefined;
    try {
      const limit = isJsonFile(name) ? Math.min(max, jsonMax) : max;
      return await readBoundedFile(real, `${name} of the model directory "${location}"`, limit, (size) =>
        size > max
          ? new ModelSqlError('54000', `${name} of the model directory "${location}" is ${size} bytes, over this server's limit of ${max} bytes (--max-model-bytes)`)
          : jsonTooLarge(name, size, jsonMax, `the model directory "${location}"`),
      );
    } catch (error) {
      if (error instanceof ModelSqlError) throw error;
      throw new ModelSqlError('58030', `could not read ${name} of the model directory "${location}": ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  };
  const files = new Map<string, Uint8Array>();
  for (const name of TEXT_MODEL_FILES) {
    const bytes = await read(name);
    if (bytes !== undefined) files.set(name, bytes);
    else if (REQUIRED.includes(name)) throw missingFile(`the model directory "${location}"`, name);
  }
  for (const name of GRAPH_PATHS) {
    const graph = await read(name);
    if (graph === undefined) continue;
    files.set(TEXT_MODEL_GRAPH, graph);
    return files;
  }
  throw new ModelSqlError('58P01', `the model directory "${location}" has no ONNX graph (looked for ${GRAPH_PATHS.join(' and ')})`);
}

/**
 * The deepest nesting of arrays and objects a text model's JSON file may have. Real files
 * nest a handful of levels (tokenizer.json about six); JSON.parse reads any depth, but the
 * parsed files are copied to the worker threads that run the model (structured clone), which
 * recurses and overflows the stack near ten thousand levels: a RangeError at the first
 * ML_PREDICT, after CREATE MODEL had accepted the directory.
 */
export const MAX_JSON_DEPTH = 256;

/** The deepest `[`/`{` nesting of JSON text, counted without parsing (strings skipped), in one pass. */
export function jsonDepth(bytes: Uint8Array): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) depth--;
  }
  return max;
}

/** Whether `name` is one of the JSON files of a text model ({@link TEXT_MODEL_FILES}; the graph is not). */
function isJsonFile(name: string): boolean {
  return (TEXT_MODEL_FILES as readonly string[]).includes(name);
}

/** 54000 when a JSON file of `where` is over `max` bytes. */
function checkJsonSize(name: string, size: number, max: number, where: string): void {
  if (size > max) throw jsonTooLarge(name, size, max, where);
}

function jsonTooLarge(name: string, size: number, max: number, where: string): ModelSqlError {
  return new ModelSqlError('54000', `${name} of ${where} is ${size} bytes, over this server's limit of ${max} bytes for a model's JSON file (--max-model-json-bytes)`);
}

/** Files without which there is no text model. */
const REQUIRED: readonly string[] = ['tokenizer.json', 'config.json'];

function missingFile(where: string, name: string): ModelSqlError {
  return new ModelSqlError('58P01', `${where} has no ${name}`);
}

/**
 * Parses a text model's files read by `read`; `where` names them in messages (`the model
 * directory "dir"`).
 *
 * Errors: 58P01 `tokenizer.json`, `config.json` or the graph missing; 54000 a JSON file over
 * `limits.maxModelJsonBytes` (default 64 MiB); 22P02 a JSON file does not parse, is no
 * object, or nests deeper than {@link MAX_JSON_DEPTH}.
 */
export async function parseModelFiles(read: ModelFileReader, where: string, limits: Pick<ModelFileLimits, 'maxModelJsonBytes'> = {}): Promise<TextModelFiles> {
  const jsonMax = limits.maxModelJsonBytes ?? DEFAULT_MODEL_JSON_BYTES;
  const json = async (name: string): Promise<Record<string, unknown> | undefined> => {
    const bytes = await read(name);
    if (bytes === undefined) {
      if (REQUIRED.includes(name)) throw missingFile(where, name);
      return undefined;
    }
    checkJsonSize(name, bytes.byteLength, jsonMax, where);
    const depth = jsonDepth(bytes);
    if (depth > MAX_JSON_DEPTH) {
      throw new ModelSqlError('22P02', `${name} of ${where} nests ${depth} levels deep, more than the ${MAX_JSON_DEPTH} a model file may (its parts are copied to the model's worker threads)`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
    } catch (error) {
      throw new ModelSqlError('22P02', `${name} of ${where} is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ModelSqlError('22P02', `${name} of ${where} is not a JSON object`);
    }
    return parsed as Record<string, unknown>;
  };
  const tokenizer = await json('tokenizer.json');
  const config = await json('config.json');
  const tokenizerConfig = (await json('tokenizer_config.json')) ?? {};
  const pooling = await json('1_Pooling/config.json');
  const modules = await read('modules.json');
  if (modules !== undefined) checkJsonSize('modules.json', modules.byteLength, jsonMax, where);
  const graph = await read(TEXT_MODEL_GRAPH);
  if (graph === undefined) throw new ModelSqlError('58P01', `${where} has no ONNX graph (${TEXT_MODEL_GRAPH})`);
  return {
    config: config!,
    tokenizer: tokenizer!,
    tokenizerConfig,
    ...(pooling ? { pooling } : {}),
    normalizeModule: listsNormalize(modules),
    graph,
  };
}

/**
 * Reads and parses the files of the model directory `location`
 * ({@link readModelDirectoryFiles}, {@link parseModelFiles}).
 *
 * @example
 * const files = await readModelDirectory('models/all-MiniLM-L6-v2', { allowedDirectories: ['models'] });
 */
export async function readModelDirectory(location: string, access: AccessOptions & ModelFileLimits = {}): Promise<TextModelFiles> {
  const files = await readModelDirectoryFiles(location, access);
  return parseModelFiles(async (name) => files.get(name), `the model directory "${location}"`, access);
}

/**
 * The text model a catalog holds as artifacts, read by `read`, or undefined when the
 * catalog holds none (no `tokenizer.json`: a single ONNX graph). `label`, when given,
 * names the model version in messages; its JSON files are held to `limits` as a
 * directory's are.
 */
export async function readStoredTextModel(read: ModelFileReader, label?: string, limits: Pick<ModelFileLimits, 'maxModelJsonBytes'> = {}): Promise<TextModelFiles | undefined> {
  const tokenizer = await read('tokenizer.json');
  if (tokenizer === undefined) return undefined;
  return parseModelFiles(async (name) => (name === 'tokenizer.json' ? tokenizer : read(name)), `the model directory held in the catalog${label === undefined ? '' : ` for model ${label}`}`, limits);
}

/** Whether sentence-transformers' `modules.json` lists a Normalize module (unreadable: no). */
function listsNormalize(modules: Uint8Array | undefined): boolean {
  if (modules === undefined) return false;
  try {
    const list: unknown = JSON.parse(Buffer.from(modules).toString('utf8'));
    return Array.isArray(list) && list.some((m) => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'sentence_transformers.models.Normalize');
  } catch {
    return false;
  }
}
