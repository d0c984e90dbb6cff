/**
 * Puts the bytes of imported ONNX models into a snapshot: a version with `'provider' =
 * 'onnx'` names its graph by `'path'` (a file, a URL, or a text model's directory) and the
 * catalog holds no bytes for it, so a bundle or a migration reads them here, with the rights
 * of the running process, and carries them as the version's stored artifacts: the graph as
 * `model.onnx`, and a text model's other files (`config.json`, `tokenizer.json`, ...) under
 * their names in the directory. Importing writes those artifacts, and the runtime then
 * loads the catalog's bytes instead of the path (core/runtime/runtime-loader.ts), so the
 * target needs no access to the source's files.
 */
import { ModelSqlError } from '../errors.js';
import { inspectOnnx, loadModelBytes, type LoadModelOptions } from '../runtime/onnx-model.js';
import { ONNX_ARTIFACT } from '../training/trained-model.js';
import { isModelDirectory, parseModelFiles, readModelDirectoryFiles, TEXT_MODEL_FILES } from '../runtime/text/model-directory.js';
import { resolveModelOptions } from './model-options.js';
import { modelLabel, sha256Hex, type CatalogSnapshot, type SnapshotArtifact, type SnapshotVersion } from './catalog-snapshot.js';

/** Whether a snapshot version is an imported ONNX model whose bytes the catalog does not hold. */
export function lacksOnnxBytes(v: Pick<SnapshotVersion, 'provider' | 'artifacts'>): boolean {
  return v.provider === 'onnx' && !v.artifacts.some((a) => a.name === ONNX_ARTIFACT);
}

/** Whether an artifact of an imported ONNX model is one a bundle or a migration carries from its `path`. */
export function isCarriedArtifact(name: string): boolean {
  return name === ONNX_ARTIFACT || (TEXT_MODEL_FILES as readonly string[]).includes(name);
}

/**
 * `snapshot` with the bytes of every path- or URL-based ONNX version added as its
 * artifacts (kept as they are where the catalog already holds the graph): a single graph as
 * `model.onnx`, a text model's directory as its files.
 *
 * @throws ModelSqlError naming the model version, with the loader's SQLSTATE (58P01
 *   missing file, 58030 unreadable file or failed download, 42501 outside `options`'
 *   allow-lists, 54000 a file over `maxModelBytes` or a text model's JSON file over
 *   `maxModelJsonBytes`), or 22P03 when the bytes are not an
 *   ONNX graph; for a text model, also the errors of its files (22P02 bad JSON, 0A000 an
 *   unsupported tokenizer, 42804 a graph that does not fit the model's columns).
 * @example
 * const full = await withOnnxBytes(await readSnapshot(host, { artifactContent: true }), { cacheDir });
 */
export async function withOnnxBytes(snapshot: CatalogSnapshot, options: LoadModelOptions): Promise<CatalogSnapshot> {
  const models = [];
  for (const m of snapshot.models) {
    const versions = [];
    for (const v of m.versions) {
      const location = lacksOnnxBytes(v) ? resolveModelOptions(v.options).location! : undefined;
      if (location === undefined) {
        versions.push(v);
        continue;
      }
      const directory = await isModelDirectory(location);
      let files: Map<string, Uint8Array>;
      try {
        files = directory ? await textModelFiles(location, v, options) : new Map([[ONNX_ARTIFACT, await onnxGraph(location, options)]]);
      } catch (error) {
        if (!(error instanceof ModelSqlError)) throw error;
        const what = directory ? 'model directory' : 'ONNX bytes';
        throw new ModelSqlError(error.sqlstate, `cannot carry the ${what} of model ${modelLabel(m)}$${v.version} ('path' = '${location}'): ${error.message}`, { cause: error });
      }
      const carried = [...files].map(([name, content]): SnapshotArtifact => ({ name, sha256: sha256Hex(content), size: content.byteLength, content }));
      // Files left from a directory the version named before (ALTER MODEL ... SET ('path' = ...)) are not carried.
      versions.push({ ...v, artifacts: [...v.artifacts.filter((a) => !isCarriedArtifact(a.name)), ...carried].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) });
    }
    models.push({ ...m, versions });
  }
  return { ...snapshot, models };
}

/** The bytes of a single ONNX graph; only an ONNX graph is carried: a path that now names another file is refused. */
async function onnxGraph(location: string, options: LoadModelOptions): Promise<Uint8Array> {
  const content = await loadModelBytes(location, options);
  await inspectOnnx(content);
  return content;
}

/** A text model directory's files, checked as the model is at CREATE MODEL (files, tokenizer, graph, columns). */
async function textModelFiles(location: string, v: SnapshotVersion, options: LoadModelOptions): Promise<Map<string, Uint8Array>> {
  const files = await readModelDirectoryFiles(location, options);
  const parsed = await parseModelFiles(async (name) => files.get(name), `the model directory "${location}"`, options);
  await (await import('../runtime/text/text-runtime.js')).checkTextFiles(parsed, v.options, v.input, v.output);
  return files;
}
