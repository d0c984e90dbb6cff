/**
 * A mutation fuzzer for the model-SQL parser: statements from the parser's corpora are
 * mutated (token deletion, duplication, swaps, splices from other statements, truncation,
 * random bytes) and parsed, and each ML call found is bound as the planner would. A case
 * passes when it parses, or fails with a `ModelSqlError` that carries a position, within
 * `maxMs`. Deterministic for a seed: the same seed and count give the same cases.
 *
 * Run by `npm run fuzz` (fuzz-parser.ts, the full count) and, with a small count, by jest
 * (parser-fuzz.test.ts).
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelSqlError } from '../../core/errors.js';
import type { MlCall, Statement } from '../../core/sql/ast.js';
import { scan } from '../../core/sql/lexer.js';
import { bindEvaluate, bindPredict, modelArgument } from '../../core/sql/ml-call.js';
import { parseScript } from '../../core/sql/parser.js';

/** A failed case: the input and what went wrong. */
export interface FuzzFailure {
  readonly kind: 'crash' | 'no-position' | 'slow';
  readonly input: string;
  readonly detail: string;
}

/** The outcome of a run. */
export interface FuzzReport {
  readonly seed: number;
  readonly cases: number;
  /** Cases that parsed (and bound) without error. */
  readonly accepted: number;
  /** Cases rejected with a positioned ModelSqlError. */
  readonly rejected: number;
  readonly failures: readonly FuzzFailure[];
  /** The slowest case, in ms. */
  readonly maxMs: number;
  readonly totalMs: number;
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The repository root (a parent holding package.json), from the source or the built file. */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith(`${'/'}dist`)) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found');
    dir = up;
  }
  return dir;
}

/**
 * The seed statements: the parser corpora (one statement a line), the integration
 * corpus of CREATE MODEL statements, the splice fixtures and the fuzzer's own ML calls.
 */
export function loadCorpus(): string[] {
  const root = repositoryRoot();
  const lines = (file: string): string[] =>
    readFileSync(join(root, file), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('-- '));
  const out: string[] = [];
  for (const dir of ['test/core/sql/corpus', 'test/fuzz/corpus']) {
    for (const file of readdirSync(join(root, dir)).filter((f) => f.endsWith('.sql')).sort()) out.push(...lines(`${dir}/${file}`));
  }
  out.push(...readFileSync(join(root, 'test/integration/corpus/create-model.sql'), 'utf8').split(/\n(?=CREATE )/).map((s) => s.trim()));
  out.push(...lines('test/core/planner/fixtures/splice.sql'));
  return out.filter((s) => s !== '');
}

/** Characters random insertions draw from: SQL punctuation, quotes, escapes, odd code points. */
const NOISE = [..."'\"`$;()[],.=>*/-+:\\ \n\t?@#%&|~^!{}<0123456789eEmodelML_PREDICTtablex", '\u0000', '\u00e9', '\u2028', '\ud83d\ude00', '\ufeff', '\ud800'];
/** Words worth splicing in: keywords of model syntax. */
const WORDS = ['ML_PREDICT(', 'ML_EVALUATE(', 'TABLE', 'MODEL', 'DESCRIPTOR(', 'MAP[', 'WITH (', 'INPUT', 'OUTPUT', 'AS SELECT', '=>', '$1', '$$', "E'\\", '/*', '--', 'ARRAY<', 'ROW<', 'DECIMAL(', 'CREATE MODEL', 'IF NOT EXISTS', ';'];

/** Token and gap slices of `text`, so that mutations work on tokens and keep the rest. */
function pieces(text: string): string[] {
  const { tokens } = scan(text);
  const out: string[] = [];
  let at = 0;
  for (const t of tokens) {
    if (t.span.start > at) out.push(text.slice(at, t.span.start));
    out.push(text.slice(t.span.start, t.span.end));
    at = t.span.end;
  }
  if (at < text.length) out.push(text.slice(at));
  return out.length > 0 ? out : [text];
}

/** One to four mutations of `seed`. */
export function mutate(seed: string, corpus: readonly string[], random: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  let text = seed;
  const rounds = 1 + Math.floor(random() * 4);
  for (let r = 0; r < rounds; r++) {
    const parts = pieces(text);
    const i = Math.floor(random() * parts.length);
    const j = Math.floor(random() * parts.length);
    switch (Math.floor(random() * 7)) {
      case 0: // delete a token
        parts.splice(i, 1);
        break;
      case 1: // duplicate a token
        parts.splice(i, 0, parts[i]!);
        break;
      case 2: // swap two tokens
        [parts[i], parts[j]] = [parts[j]!, parts[i]!];
        break;
      case 3: {
        // random bytes
        const n = 1 + Math.floor(random() * 4);
        let noise = '';
        for (let k = 0; k < n; k++) noise += random() < 0.1 ? String.fromCharCode(Math.floor(random() * 0x3000)) : pick(NOISE);
        const at = Math.floor(random() * (text.length + 1));
        text = text.slice(0, at) + noise + text.slice(at);
        continue;
      }
      case 4: // a token from another statement
        parts.splice(i, 1, pick(pieces(pick(corpus))));
        break;
      case 5: // a keyword of model syntax
        parts.splice(i, 0, ` ${pick(WORDS)} `);
        break;
      default: // truncate
        text = text.slice(0, Math.floor(random() * text.length));
        continue;
    }
    text = parts.join('');
  }
  return text;
}

/** Every ML call of a statement, nested ones included. */
function callsOf(statement: Statement): MlCall[] {
  if (statement.kind !== 'query') return [];
  const out: MlCall[] = [];
  const visit = (calls: readonly MlCall[]): void => {
    for (const call of calls) {
      out.push(call);
      for (const arg of call.args) if (arg.value.kind === 'subquery') visit(arg.value.calls);
    }
  };
  visit(statement.calls);
  return out;
}

/** Parses `text` and binds its calls as the planner would; throws what they throw. */
export function parseAndBind(text: string): void {
  for (const statement of parseScript(text)) {
    for (const call of callsOf(statement)) {
      modelArgument(call, text);
      if (call.function === 'ML_PREDICT') bindPredict(call, text);
      else bindEvaluate(call, text);
    }
  }
}

/**
 * Runs `count` mutated cases from `seed`, stopping early after `maxFailures` failures.
 *
 * @example
 * const report = fuzzParser({ seed: 437, count: 5000 });
 * expect(report.failures).toEqual([]);
 */
export function fuzzParser(options: {
  readonly seed: number;
  readonly count: number;
  readonly maxMs?: number;
  readonly maxFailures?: number;
  /** What each case runs (default {@link parseAndBind}); the fuzzer's own tests give it faulty ones. */
  readonly parse?: (text: string) => void;
}): FuzzReport {
  const parse = options.parse ?? parseAndBind;
  const corpus = loadCorpus();
  const random = prng(options.seed);
  const maxMs = options.maxMs ?? 1000;
  const failures: FuzzFailure[] = [];
  let accepted = 0;
  let rejected = 0;
  let slowest = 0;
  const started = performance.now();
  for (let n = 0; n < options.count && failures.length < (options.maxFailures ?? 20); n++) {
    const input = mutate(corpus[Math.floor(random() * corpus.length)]!, corpus, random);
    const t0 = performance.now();
    try {
      parse(input);
      accepted++;
    } catch (error) {
      if (!(error instanceof ModelSqlError)) failures.push({ kind: 'crash', input, detail: error instanceof Error ? (error.stack ?? error.message) : String(error) });
      else if (!error.position) failures.push({ kind: 'no-position', input, detail: `${error.sqlstate}: ${error.message}` });
      else rejected++;
    }
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    if (ms > maxMs) failures.push({ kind: 'slow', input, detail: `${ms.toFixed(0)} ms` });
  }
  return { seed: options.seed, cases: accepted + rejected + failures.length, accepted, rejected, failures, maxMs: slowest, totalMs: performance.now() - started };
}
