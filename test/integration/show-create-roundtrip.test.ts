/**
 * Every CREATE MODEL form of the corpus, round-tripped through SHOW CREATE MODEL: the
 * printed statement recreates a model that prints the same statement and describes the
 * same. Statements in the corpus are separated by lines; a line that does not start with
 * CREATE continues the previous statement. `@database@` and `@schema@` stand for the current
 * database and schema of the host under test.
 */
import { readFileSync } from 'node:fs';
import type { Session } from '../../core/session/session.js';
import { parseScript } from '../../core/sql/parser.js';
import { formatModelName } from '../../core/sql/format.js';
import type { CreateModelStatement } from '../../core/sql/ast.js';
import { ADAPTERS } from '../support/adapters.js';
import { writeModelFiles } from '../support/model-files.js';

const files = writeModelFiles();
const corpus = readFileSync(new URL('./corpus/create-model.sql', import.meta.url), 'utf8')
  .replaceAll('@linear@', files.linear)
  .replaceAll('@classifier@', files.classifier)
  .replaceAll('@multi@', files.multiInput);
const statements = corpus.split(/\n(?=CREATE|create)/).filter((s) => s.trim() !== '');

for (const adapter of ADAPTERS) {
  describe(`SHOW CREATE MODEL round trip on ${adapter.name}`, () => {
    let db: Session;
    /** The corpus names the current database and schema with placeholders; each host has its own. */
    let placeholders: (sql: string) => string;
    beforeAll(async () => {
      db = await adapter.open();
      const [database, schema] = (await db.sql('SELECT current_database(), current_schema()')).rows[0]!.map(String);
      placeholders = (sql) => sql.replaceAll('@database@', database!).replaceAll('@schema@', schema!);
    });
    afterAll(async () => {
      await db.close();
    });

    it.each(statements.map((s) => [s.split('\n')[0]!.slice(0, 60), s]))('%s', async (_title, text) => {
      const sql = placeholders(text);
      const statement = parseScript(sql)[0] as CreateModelStatement;
      const name = formatModelName(statement.name);
      await db.sql(sql);
      const first = String((await db.sql(`SHOW CREATE MODEL ${name}`)).rows[0]![0]);
      const describe = (await db.sql(`DESCRIBE MODEL EXTENDED ${name}`)).rows.filter((r) => r[0] !== 'created_at');
      await db.sql(`DROP ${statement.temporary ? 'TEMPORARY ' : ''}MODEL ${name}`);
      await db.sql(first);
      expect(String((await db.sql(`SHOW CREATE MODEL ${name}`)).rows[0]![0])).toBe(first);
      expect((await db.sql(`DESCRIBE MODEL EXTENDED ${name}`)).rows.filter((r) => r[0] !== 'created_at')).toEqual(describe);
    });
  });
}
