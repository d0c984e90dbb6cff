/**
 * The catalog bundle (`modelsql catalog export --format bundle`): one file holding a
 * catalog snapshot (core/catalog/catalog-snapshot.ts) with the bytes of its artifacts.
 *
 * Layout (integers big-endian):
 *
 * | bytes | content |
 * | --- | --- |
 * | 16 | magic `MODELSQL-BUNDLE\n` |
 * | 4 | format version (1) |
 * | 8 | manifest length M |
 * | M | manifest: UTF-8 JSON, the snapshot with each artifact's `offset` into the data instead of its bytes |
 * | … | data: the artifacts' bytes, one after another |
 * | 32 | SHA-256 of everything before it |
 *
 * Reading checks the magic, the length, the whole-file checksum and each artifact's own
 * SHA-256; a truncated or changed file is refused (XX001) before anything is imported.
 */
import { createHash } from 'node:crypto';
import { ModelSqlError } from '../../core/errors.js';
import { sha256Hex, type CatalogSnapshot, type SnapshotArtifact } from '../../core/catalog/catalog-snapshot.js';
import { snapshotProblem } from '../../core/catalog/snapshot-check.js';

const MAGIC = Buffer.from('MODELSQL-BUNDLE\n', 'latin1');
const FORMAT_VERSION = 1;
const HEADER = MAGIC.length + 4 + 8;
const CHECKSUM = 32;

/**
 * The largest bundle `catalog import` reads (and `catalog export` writes): 2 GiB − 1 bytes,
 * the most Node reads from a file into one buffer. A bundle is read whole.
 */
export const MAX_BUNDLE_BYTES = 2 ** 31 - 1;

/** Where the bundle came from, kept in its manifest. */
export interface BundleInfo {
  readonly source: string;
  readonly createdAt: string;
}

/** A bundle read back. */
export interface Bundle extends BundleInfo {
  readonly snapshot: CatalogSnapshot;
}

/** Whether `bytes` start like a bundle (else an import reads them as a SQL script). */
export function isBundle(bytes: Uint8Array): boolean {
  return bytes.byteLength >= MAGIC.length && Buffer.from(bytes.buffer, bytes.byteOffset, MAGIC.length).equals(MAGIC);
}

/**
 * Writes a snapshot read with artifact bytes as a bundle.
 *
 * @throws ModelSqlError 54000 when the bundle would be over `maxBytes` (default
 *   {@link MAX_BUNDLE_BYTES}, the most `catalog import` reads).
 * @example
 * await writeFile('catalog.bundle', encodeBundle(snapshot, { source: 'duckdb:shop.duckdb', createdAt: new Date().toISOString() }));
 */
export function encodeBundle(snapshot: CatalogSnapshot, info: BundleInfo, maxBytes = MAX_BUNDLE_BYTES): Buffer {
  const data: Uint8Array[] = [];
  let offset = 0;
  const models = snapshot.models.map((m) => ({
    ...m,
    versions: m.versions.map((v) => ({
      ...v,
      artifacts: v.artifacts.map(({ content, ...a }) => {
        if (!content) throw new Error(`artifact '${a.name}' was read without its bytes`);
        data.push(content);
        const entry = { ...a, offset };
        offset += content.byteLength;
        return entry;
      }),
    })),
  }));
  const manifest = Buffer.from(JSON.stringify({ ...info, snapshot: { ...snapshot, models } }), 'utf8');
  const header = Buffer.alloc(HEADER);
  MAGIC.copy(header);
  header.writeUInt32BE(FORMAT_VERSION, MAGIC.length);
  header.writeBigUInt64BE(BigInt(manifest.byteLength), MAGIC.length + 4);
  const size = HEADER + manifest.byteLength + offset + CHECKSUM;
  if (size > maxBytes) {
    throw new ModelSqlError('54000', `the bundle would be ${size} bytes, over the ${maxBytes} bytes catalog import reads; export fewer models at a time (--models PATTERN), or move them with catalog migrate`);
  }
  const hash = createHash('sha256').update(header).update(manifest);
  for (const d of data) hash.update(d);
  return Buffer.concat([header, manifest, ...data, hash.digest()]);
}

/**
 * Reads a bundle, checking it whole.
 *
 * @throws ModelSqlError XX001 (data_corrupted) for a truncated or changed file; 0A000 for
 *   a bundle format newer than this modelsql reads.
 */
export function decodeBundle(bytes: Uint8Array, name: string): Bundle {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const damaged = (why: string) => new ModelSqlError('XX001', `bundle ${name} ${why}: the file is damaged or was changed after export; nothing was imported`);
  if (!isBundle(buf)) throw damaged('does not start with the bundle header');
  if (buf.byteLength < HEADER + CHECKSUM) throw damaged(`is truncated (${buf.byteLength} bytes)`);
  const version = buf.readUInt32BE(MAGIC.length);
  if (version > FORMAT_VERSION) throw new ModelSqlError('0A000', `bundle ${name} has format version ${version}, newer than this modelsql reads (${FORMAT_VERSION}); upgrade modelsql`);
  const body = buf.subarray(0, buf.byteLength - CHECKSUM);
  const expected = buf.subarray(buf.byteLength - CHECKSUM);
  const length = Number(buf.readBigUInt64BE(MAGIC.length + 4));
  if (!createHash('sha256').update(body).digest().equals(expected)) throw damaged(expectedSize(buf, length) > buf.byteLength ? 'is truncated' : 'fails its checksum');
  if (HEADER + length > body.byteLength) throw damaged(`declares a manifest of ${length} bytes, longer than the file`);
  // The checksum says the file is whole, not that its manifest is one an export writes: check its shape before using it.
  let parsed: BundleInfo & { snapshot: CatalogSnapshot };
  try {
    parsed = JSON.parse(body.subarray(HEADER, HEADER + length).toString('utf8')) as BundleInfo & { snapshot: CatalogSnapshot };
  } catch (error) {
    throw damaged(`holds a manifest that is not JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof parsed !== 'object' || parsed === null) throw damaged('holds a manifest that is not an object');
  const problem = snapshotProblem(parsed.snapshot);
  if (problem) throw damaged(`holds an invalid manifest: ${problem}`);
  const data = body.subarray(HEADER + length);
  const artifact = (a: SnapshotArtifact & { offset: number }): SnapshotArtifact => {
    if (!Number.isSafeInteger(a.offset) || a.offset < 0 || a.offset + a.size > data.byteLength) throw damaged(`holds artifact '${a.name}' outside its data`);
    const content = data.subarray(a.offset, a.offset + a.size);
    if (content.byteLength !== a.size || sha256Hex(content) !== a.sha256) throw damaged(`holds artifact '${a.name}' with a wrong checksum`);
    const { offset: _offset, ...rest } = a;
    return { ...rest, content };
  };
  const models = parsed.snapshot.models.map((m) => ({
    ...m,
    versions: m.versions.map((v) => ({ ...v, artifacts: v.artifacts.map((a) => artifact(a as SnapshotArtifact & { offset: number })) })),
  }));
  return { source: String(parsed.source), createdAt: String(parsed.createdAt), snapshot: { ...parsed.snapshot, models } };
}

/** The size a bundle declares (header, manifest, artifact bytes, checksum), or 0 when its manifest cannot be read. */
function expectedSize(buf: Buffer, manifestLength: number): number {
  if (HEADER + manifestLength > buf.byteLength) return HEADER + manifestLength + CHECKSUM;
  try {
    const manifest = JSON.parse(buf.subarray(HEADER, HEADER + manifestLength).toString('utf8')) as { snapshot: CatalogSnapshot };
    const data = manifest.snapshot.models.flatMap((m) => m.versions.flatMap((v) => v.artifacts)).reduce((n, a) => n + a.size, 0);
    return HEADER + manifestLength + data + CHECKSUM;
  } catch {
    return 0;
  }
}
