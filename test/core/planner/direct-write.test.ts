/**
 * Which statements may write their ML_PREDICT straight into their table, from
 * input/expected fixtures (`kind table [temp] [if-not-exists] [(columns)]: projection`, or
 * `none`), and how a projection maps to the call's result columns.
 */
import { directWriteShape, projectionSources, type DirectWriteShape } from '../../../core/planner/direct-write.js';
import type { QueryStatement } from '../../../core/sql/ast.js';
import { parseScript } from '../../../core/sql/parser.js';
import { readCases } from './fixture-cases.js';

function summary(shape: DirectWriteShape | undefined): string {
  if (!shape) return 'none';
  const flags = [shape.temporary ? ' temp' : '', shape.ifNotExists ? ' if-not-exists' : '', shape.columns ? ` (${shape.columns.join(', ')})` : ''].join('');
  return `${shape.kind} ${shape.table.join('.')}${flags}: ${shape.projection.map((p) => (p.kind === 'star' ? '*' : p.name)).join(', ')}`;
}

describe('directWriteShape', () => {
  it.each(readCases('direct-write.sql').map((c) => [c.name, c.input, c.expected]))('%s', (_name, input, expected) => {
    // Statements after a first one: spans index into the whole script.
    const script = `SELECT 1;\n${input}`;
    const statement = parseScript(script)[1] as QueryStatement;
    expect(statement.kind).toBe('query');
    expect(summary(directWriteShape(statement, script))).toBe(expected);
  });
});

describe('projectionSources', () => {
  const names = ['id', 'a', 'Q', 'y'];

  it('expands stars and finds columns by exact name, repeats allowed', () => {
    expect(projectionSources([{ kind: 'star' }, { kind: 'column', name: 'y' }, { kind: 'column', name: 'Q' }, { kind: 'column', name: 'y' }], names)).toEqual([0, 1, 2, 3, 3, 2, 3]);
  });

  it('gives up on a missing or ambiguous name', () => {
    expect(projectionSources([{ kind: 'column', name: 'q' }], names)).toBeUndefined();
    expect(projectionSources([{ kind: 'column', name: 'a' }], ['a', 'a'])).toBeUndefined();
  });
});
