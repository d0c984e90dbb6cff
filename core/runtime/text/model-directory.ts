/**
 * Reads a Hugging Face-style model directory (SPEC §2.6), as exported for transformers.js
 * and optimum: `config.json`, `tokenizer.json`, `tokenizer_config.json`, and the graph at
 * `onnx/model.onnx` (transformers.js layout) or `model.onnx` (optimum layout).
 * Sentence-transformers' `1_Pooling/config.json` and `modules.json` are read when present
 * (pooling mode, normalization). Nothing is downloaded: only these local files are read,
 * each checked against the server's allowed model directories after `realpath`.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelSqlError } from '../../errors.js';
import { AccessPolicy, type AccessOptions } from '../access-policy.js';

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
 * Reads and parses the files of the model directory `location`.
 *
 * Errors: 42501 outside the allowed model directories; 58P01 a required file is missing
 * (`tokenizer.json`, `config.json`, the graph); 22P02 a JSON file does not parse.
 *
 * @example
 * const files = await readModelDirectory('models/all-MiniLM-L6-v2', { allowedDirectories: ['models'] });
 */
export async function readModelDirectory(location: string, access: AccessOptions = {}): Promise<TextModelFiles> {
  const dir = localPath(location.trim());
  const policy = new AccessPolicy(access);
  const read = async (name: string, required: boolean): Promise<Buffer | undefined> => {
    const file = path.join(dir, name);
    let real: string | undefined;
    try {
      real = await realpath(file);
    } catch {
      real = undefined;
    }
    await policy.checkFile(file, real, `${location.replace(/\/+$/, '')}/${name}`);
    if (real === undefined) {
      if (required) throw new ModelSqlError('58P01', `the model directory "${location}" has no ${name}`);
      return undefined;
    }
    try {
      return await readFile(real);
    } catch (error) {
      throw new ModelSqlError('58030', `could not read ${name} of the model directory "${location}": ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  };
  const json = async (name: string, required: boolean): Promise<Record<string, unknown> | undefined> => {
    const bytes = await read(name, required);
    if (bytes === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch (error) {
      throw new ModelSqlError('22P02', `${name} of the model directory "${location}" is not valid JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ModelSqlError('22P02', `${name} of the model directory "${location}" is not a JSON object`);
    }
    return parsed as Record<string, unknown>;
  };
  const tokenizer = await json('tokenizer.json', true);
  const config = await json('config.json', true);
  const tokenizerConfig = (await json('tokenizer_config.json', false)) ?? {};
  const pooling = await json('1_Pooling/config.json', false);
  const modules = await read('modules.json', false);
  let graph: Buffer | undefined;
  for (const name of GRAPH_PATHS) {
    graph = await read(name, false);
    if (graph !== undefined) break;
  }
  if (graph === undefined) throw new ModelSqlError('58P01', `the model directory "${location}" has no ONNX graph (looked for ${GRAPH_PATHS.join(' and ')})`);
  return {
    config: config!,
    tokenizer: tokenizer!,
    tokenizerConfig,
    ...(pooling ? { pooling } : {}),
    normalizeModule: listsNormalize(modules),
    graph: new Uint8Array(graph.buffer, graph.byteOffset, graph.byteLength),
  };
}

/** Whether sentence-transformers' `modules.json` lists a Normalize module (unreadable: no). */
function listsNormalize(modules: Buffer | undefined): boolean {
  if (modules === undefined) return false;
  try {
    const list: unknown = JSON.parse(modules.toString('utf8'));
    return Array.isArray(list) && list.some((m) => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === 'sentence_transformers.models.Normalize');
  } catch {
    return false;
  }
}
