/**
 * Runs test/conformance/flink-model-statements.sql (Flink's own model statements, each with
 * its expected outcome) on every host, in order, in one session.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelSqlError } from '../../core/errors.js';
import { ADAPTERS } from '../support/adapters.js';
import { ROOT } from '../support/run-cli.js';

interface Case {
  readonly sql: string;
  /** The outcome on every host, and, by host name, where a host differs (`-- expect on duckdb:`). */
  readonly expect: string;
  readonly on: ReadonlyMap<string, string>;
  readonly line: number;
}

/** The statements of the file: blocks separated by blank lines, each with a `-- expect:` line. */
function cases(): Case[] {
  const text = readFileSync(join(ROOT, 'test', 'conformance', 'flink-model-statements.sql'), 'utf8').replaceAll('${LINEAR}', join(ROOT, 'examples', 'models', 'house_price.onnx'));
  const out: Case[] = [];
  let line = 1;
  for (const block of text.split(/\n\s*\n/)) {
    const expect = /^-- expect: (.+)$/m.exec(block)?.[1]?.trim();
    const sql = block.split('\n').filter((l) => !l.startsWith('--')).join('\n').trim();
    const on = new Map([...block.matchAll(/^-- expect on (\w+): (.+)$/gm)].map((m) => [m[1]!, m[2]!.trim()] as const));
    if (expect !== undefined && sql !== '') out.push({ sql, expect, on, line });
    line += block.split('\n').length + 1;
  }
  return out;
}

for (const adapter of ADAPTERS) {
  describe(`Flink model statements on ${adapter.name}`, () => {
    it('give the expected outcome, statement by statement', async () => {
      delete process.env['MODELSQL_CONFORMANCE_UNSET'];
      const db = await adapter.open();
      try {
        const all = cases();
        expect(all.length).toBeGreaterThan(25);
        for (const c of all) {
          const wanted = c.on.get(adapter.name) ?? c.expect;
          const outcome = await db.sql(c.sql).then(
            (r) => (wanted.startsWith('rows') ? `rows ${r.rows.length}` : r.notices?.length ? 'notice' : 'ok'),
            (e: unknown) => (e instanceof ModelSqlError ? `error ${e.sqlstate}` : `error ${String(e)}`),
          );
          expect({ line: c.line, sql: c.sql, outcome }).toEqual({ line: c.line, sql: c.sql, outcome: wanted });
        }
      } finally {
        await db.close();
      }
    }, 60_000);
  });
}
