/**
 * The planner from fixtures: each case is a statement, planned against the fixed facts
 * below (tables and their columns, models, one trained model), with every request answered
 * here and no database; the expected text is the host SQL the executor would run. A model
 * stage is answered by a marker naming what the planner asked for:
 * `[stage <model> features(...) outputs(...) input: <query>]`. A case whose name begins
 * with `describe:` is planned for its shape only; an error is expected as `ERROR <sqlstate>: <message>`.
 */
import { DuckDBDialect } from '../../../adapters/duckdb/duckdb-dialect.js';
import { ModelSqlError, UndefinedModelError } from '../../../core/errors.js';
import type { HostColumn } from '../../../core/host.js';
import type { ModelColumn, ModelEntry, ModelVersion } from '../../../core/model-types.js';
import { planRegion } from '../../../core/planner/plan-calls.js';
import type { Plan, PlanAnswers, PlanEnv, PlanRequest } from '../../../core/planner/plan-requests.js';
import { DEFAULT_RESOURCE_CAPS } from '../../../core/runtime/resource-caps.js';
import type { QueryStatement } from '../../../core/sql/ast.js';
import { parseScript } from '../../../core/sql/parser.js';
import { SPEC_FORMAT, type TrainedModel } from '../../../core/training/trained-model.js';
import { readCases } from './fixture-cases.js';

const dialect = new DuckDBDialect();

const TABLES: Record<string, readonly HostColumn[]> = {
  t: [
    { name: 'id', type: 'INTEGER' },
    { name: 'a', type: 'DOUBLE' },
    { name: 'b', type: 'DOUBLE' },
    { name: 'label', type: 'VARCHAR' },
  ],
  u: [
    { name: 'id', type: 'INTEGER' },
    { name: 'c', type: 'DOUBLE' },
  ],
  docs: [
    { name: 'id', type: 'INTEGER' },
    { name: 'embedding', type: 'FLOAT[]' },
  ],
};

const cols = (text: string): ModelColumn[] => text.split(', ').map((c) => ({ name: c.split(' ')[0]!, type: c.split(' ')[1]! }));

function version(name: string, provider: string, input: string, output: string, extra: Partial<ModelVersion> = {}): ModelVersion {
  return { schema: 'main', name, version: 1, provider, input: cols(input), output: cols(output), options: [], createdAt: '2026-01-01 00:00:00', ...extra };
}

const MODELS: Record<string, ModelVersion> = {
  m: version('m', 'onnx', 'x1 DOUBLE, x2 DOUBLE', 'y DOUBLE', { task: 'regression' }),
  n: version('n', 'onnx', 'v DOUBLE', 'z DOUBLE'),
  cls: version('cls', 'onnx', 'x DOUBLE', 'label STRING, probabilities ARRAY<DOUBLE>', { task: 'classification' }),
  gen: version('gen', 'openai', 'prompt STRING', 'answer STRING', { task: 'text_generation' }),
  price: version('price', 'internal', 'a DOUBLE', 'prediction DOUBLE', { task: 'regression' }),
};

const PRICE: TrainedModel = {
  format: SPEC_FORMAT,
  algorithm: 'linear_regression',
  task: 'regression',
  label: { name: 'b', type: 'DOUBLE' },
  features: [{ kind: 'numeric', name: 'a', type: 'DOUBLE', boolean: false, mean: 1, std: 2 }],
  parameters: { kind: 'linear', intercept: 0.5, weights: [3] },
  input: cols('a DOUBLE'),
  output: cols('prediction DOUBLE'),
};

/** Plans `text`'s one statement against the facts above. */
function plan(text: string, describeOnly: boolean): string {
  const [statement] = parseScript(text) as QueryStatement[];
  const env: PlanEnv = { scriptText: text, dialect, hostName: 'DuckDB', caps: DEFAULT_RESOURCE_CAPS, describeOnly };
  // The columns of each stage's relation, by its marker.
  const stages = new Map<string, readonly HostColumn[]>();
  const answer = (request: PlanRequest): PlanAnswers[PlanRequest['kind']] => {
    switch (request.kind) {
      case 'model': {
        const name = request.name.parts.at(-1)!.value.toLowerCase();
        const v = MODELS[name];
        if (!v) throw new UndefinedModelError(`model main.${name} does not exist`);
        const entry: ModelEntry = { schema: 'main', name, defaultVersion: 1, owner: 'me', createdAt: v.createdAt, updatedAt: v.createdAt, temporary: false, versions: [v] };
        return { entry, version: v };
      }
      case 'trained':
        return request.version.name === 'price' ? PRICE : undefined;
      case 'describe':
        return columnsOf(request.query, stages);
      case 'stage': {
        const s = request.stage;
        const marker = `[stage ${s.model.version.name} features(${s.features.map((c) => c.name).join(', ')}) outputs(${s.outputNames.join(', ')}) input: ${s.inputQuery}]`;
        stages.set(marker, [...s.inputColumns, ...s.outputColumns]);
        return marker;
      }
      case 'text-scores':
        return `[text scores of ${request.spec.label.name}, ${request.spec.prediction.name} over ${request.spec.relation}]`;
      case 'vector-dimensions':
        return [3, 3, false, 1];
      case 'accepts':
        return true;
    }
  };
  return drive(planRegion(statement!.span, statement!.calls, env), answer).text;
}

/** The columns of the first table or stage a query reads (the fixtures' queries read one, or select all of one). */
function columnsOf(query: string, stages: ReadonlyMap<string, readonly HostColumn[]>): readonly HostColumn[] {
  const stage = [...stages].filter(([marker]) => query.includes(marker)).sort((x, y) => query.indexOf(x[0]) - query.indexOf(y[0]))[0];
  if (stage) return stage[1];
  const table = /FROM\s+"?(\w+)"?/i.exec(query)?.[1]?.toLowerCase();
  const columns = table === undefined ? undefined : TABLES[table];
  if (!columns) throw new Error(`no facts for the query ${query}`);
  return columns;
}

function drive<T>(plan: Plan<T>, answer: (request: PlanRequest) => unknown): T {
  let step = plan.next();
  while (!step.done) step = plan.next(answer(step.value));
  return step.value;
}

describe('planRegion', () => {
  it.each(readCases('plan-calls.sql').map((c) => [c.name, c]))('%s', (name, c) => {
    let actual: string;
    try {
      actual = plan(c.input, name.startsWith('describe:'));
    } catch (error) {
      if (!(error instanceof ModelSqlError)) throw error;
      actual = `ERROR ${error.sqlstate}: ${error.message}`;
    }
    expect(actual).toBe(c.expected);
  });
});
