/**
 * Helpers shared by the training tests: independent reference math (no code from
 * core/training), catalog dumps, and running the exported ONNX file in a separate
 * onnxruntime process.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Session } from '../../../core/session/session.js';

/** The repository root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Solves `A x = b` by Gaussian elimination with partial pivoting. */
export function gaussSolve(a: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let pivot = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r]![c]!) > Math.abs(m[pivot]![c]!)) pivot = r;
    [m[c], m[pivot]] = [m[pivot]!, m[c]!];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = m[r]![c]! / m[c]![c]!;
      for (let k = c; k <= n; k++) m[r]![k]! -= f * m[c]![k]!;
    }
  }
  return m.map((row, i) => row[n]! / row[i]!);
}

/** Mean and population standard deviation of the non-null values. */
export function meanStd(values: readonly (number | null)[]): { mean: number; std: number } {
  const present = values.filter((v): v is number => v !== null);
  const mean = present.reduce((s, v) => s + v, 0) / present.length;
  const std = Math.sqrt(present.reduce((s, v) => s + (v - mean) ** 2, 0) / present.length);
  return { mean, std };
}

/** `|a - b| <= tolerance * max(1, |b|)`. */
export function close(a: number, b: number, tolerance: number): boolean {
  return Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(b));
}

/** Throws unless every number of `actual` is within 1e-9 (relative to max(1, |x|)) of the one at the same place in `expected` and everything else is equal. */
export function expectSame(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    if (!close(actual, expected, 1e-9)) throw new Error(`${path}: ${actual}, expected ${expected}`);
  } else if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object') throw new Error(`${path}: ${JSON.stringify(actual)}, expected an object`);
    const keys = Object.keys(expected);
    if (JSON.stringify(Object.keys(actual).sort()) !== JSON.stringify([...keys].sort())) throw new Error(`${path}: keys ${Object.keys(actual)}, expected ${keys}`);
    for (const k of keys) expectSame((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], `${path}.${k}`);
  } else if (actual !== expected) {
    throw new Error(`${path}: ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  }
}

/** Every row of the catalog tables, to prove a failed statement changed nothing. */
export async function catalogDump(db: Session): Promise<string> {
  const exists = await db.sql("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ml_catalog'");
  if (Number(exists.rows[0]![0]) === 0) return 'no catalog';
  const parts: unknown[] = [];
  for (const t of ['models', 'model_versions', 'artifacts', 'training_metrics']) parts.push((await db.sql(`SELECT * FROM ml_catalog.${t} ORDER BY 1, 2, 3`)).rows);
  return JSON.stringify(parts, (_k, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
}

/** The stored trained-model JSON of a model's default version. */
export async function storedSpec(db: Session, model: string): Promise<any> {
  const r = await db.sql(
    `SELECT a.content FROM ml_catalog.artifacts a JOIN ml_catalog.models m ON a.schema_name = m.schema_name AND a.model_name = m.model_name AND a.version = m.default_version WHERE m.model_name = '${model}' AND a.artifact_name = 'model.json'`,
  );
  return JSON.parse(Buffer.from(r.rows[0]![0] as Uint8Array).toString('utf8'));
}

/** Names of the DuckDB macros called `name`. */
export async function macroCount(db: Session, name: string): Promise<number> {
  return Number((await db.sql(`SELECT count(*) FROM duckdb_functions() WHERE function_name = '${name}' AND function_type = 'macro'`)).rows[0]![0]);
}

/**
 * Runs an ONNX file in a fresh Node process with onnxruntime-node alone and returns every
 * output as nested arrays. `feeds` maps input name → `{ type, data }` with shape `[N, 1]`.
 */
export function runOnnxFile(file: string, feeds: Readonly<Record<string, { type: 'float64' | 'string' | 'bool'; data: readonly unknown[] }>>): Record<string, unknown[]> {
  const feedFile = `${file}.feeds.json`;
  writeFileSync(feedFile, JSON.stringify(feeds));
  const script = `
    const ort = require('onnxruntime-node');
    const fs = require('node:fs');
    (async () => {
      const feeds = JSON.parse(fs.readFileSync(${JSON.stringify(feedFile)}, 'utf8'));
      const session = await ort.InferenceSession.create(fs.readFileSync(${JSON.stringify(file)}));
      const inputs = {};
      for (const [name, f] of Object.entries(feeds)) {
        const data = f.type === 'float64' ? Float64Array.from(f.data, (v) => (v === null ? NaN : v)) : f.type === 'bool' ? Uint8Array.from(f.data, (v) => (v ? 1 : 0)) : f.data;
        inputs[name] = new ort.Tensor(f.type, f.type === 'bool' ? Array.from(data, Boolean) : data, [f.data.length, 1]);
      }
      const out = await session.run(inputs);
      const result = {};
      for (const [name, t] of Object.entries(out)) result[name] = { dims: t.dims, data: Array.from(t.data, (v) => (typeof v === 'bigint' ? Number(v) : v)) };
      process.stdout.write(JSON.stringify(result));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`onnxruntime failed: ${r.stderr}`);
  const parsed = JSON.parse(r.stdout) as Record<string, { dims: number[]; data: unknown[] }>;
  const result: Record<string, unknown[]> = {};
  for (const [name, t] of Object.entries(parsed)) {
    const width = t.dims[1] ?? 1;
    result[name] = width === 1 ? t.data : Array.from({ length: t.dims[0]! }, (_, i) => t.data.slice(i * width, (i + 1) * width));
  }
  return result;
}

/** Runs the built CLI (`dist/cli/main.js`). */
export function runCli(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
