/**
 * Puts the bytes of imported ONNX models into a snapshot: a version with `'provider' =
 * 'onnx'` names its graph by `'path'` (a file or URL) and the catalog holds no bytes for
 * it, so a bundle or a migration reads the graph here, with the rights of the running
 * process, and carries it as the version's stored ONNX artifact (`model.onnx`). Importing
 * writes that artifact, and the runtime then loads the catalog's bytes instead of the path
 * (core/runtime/runtime-loader.ts), so the target needs no access to the source's files.
 */
import { ModelSqlError } from '../errors.js';
import { inspectOnnx, loadModelBytes, type LoadModelOptions } from '../runtime/onnx-model.js';
import { ONNX_ARTIFACT } from '../training/trained-model.js';
import { isModelDirectory } from '../runtime/text/model-directory.js';
import { resolveModelOptions } from './model-options.js';
import { modelLabel, sha256Hex, type CatalogSnapshot, type SnapshotVersion } from './catalog-snapshot.js';

/** Whether a snapshot version is an imported ONNX model whose bytes the catalog does not hold. */
export function lacksOnnxBytes(v: Pick<SnapshotVersion, 'provider' | 'artifacts'>): boolean {
  return v.provider === 'onnx' && !v.artifacts.some((a) => a.name === ONNX_ARTIFACT);
}

/**
 * `snapshot` with the ONNX bytes of every path- or URL-based ONNX version added as its
 * `model.onnx` artifact (kept as they are where the catalog already holds one).
 *
 * @throws ModelSqlError naming the model version, with the loader's SQLSTATE (58P01
 *   missing file, 58030 unreadable file or failed download, 42501 outside `options`'
 *   allow-lists), or 22P03 when the bytes are not an ONNX graph.
 * @example
 * const full = await withOnnxBytes(await readSnapshot(host, { artifactContent: true }), { cacheDir });
 */
export async function withOnnxBytes(snapshot: CatalogSnapshot, options: LoadModelOptions): Promise<CatalogSnapshot> {
  const models = [];
  for (const m of snapshot.models) {
    const versions = [];
    for (const v of m.versions) {
      const location = lacksOnnxBytes(v) ? resolveModelOptions(v.options).location! : undefined;
      // A local text model's directory is not carried: it stays a path, read where the catalog goes.
      if (location === undefined || (await isModelDirectory(location))) {
        versions.push(v);
        continue;
      }
      let content: Uint8Array;
      try {
        content = await loadModelBytes(location, options);
        // Only an ONNX graph is carried: a path that now names another file is refused.
        await inspectOnnx(content);
      } catch (error) {
        if (!(error instanceof ModelSqlError)) throw error;
        throw new ModelSqlError(error.sqlstate, `cannot carry the ONNX bytes of model ${modelLabel(m)}$${v.version} ('path' = '${location}'): ${error.message}`, { cause: error });
      }
      const artifact = { name: ONNX_ARTIFACT, sha256: sha256Hex(content), size: content.byteLength, content };
      versions.push({ ...v, artifacts: [...v.artifacts, artifact] });
    }
    models.push({ ...m, versions });
  }
  return { ...snapshot, models };
}
