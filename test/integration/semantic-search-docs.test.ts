/**
 * docs/semantic-search.md runs as shown on every adapter: its ```sql blocks, in order, with
 * a test model directory at `models/minilm` (the working directory is a temporary one) and
 * the page's endpoint `http://127.0.0.1:8080` pointed at a loopback OpenAI server (the only
 * substitution).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Session } from '../../core/session/session.js';
import { startOpenAIServer } from '../providers/openai-server.js';
import type { LoopbackServer } from '../providers/loopback-server.js';
import { ADAPTERS } from '../support/adapters.js';
import { ROOT } from '../support/run-cli.js';
import { writeTextModel } from '../support/text-models.js';

const PAGE = readFileSync(join(ROOT, 'docs', 'semantic-search.md'), 'utf8');
const BLOCKS = [...PAGE.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
const KEY = 'sk-docs-test';

let server: LoopbackServer;
let work: string;
const cwd = process.cwd();
const key = process.env.OPENAI_API_KEY;
beforeAll(async () => {
  server = await startOpenAIServer({ apiKey: KEY });
  work = mkdtempSync(join(tmpdir(), 'modelsql-rag-'));
  writeTextModel(join(work, 'models', 'minilm'), { seed: 3 });
  process.chdir(work);
  process.env.OPENAI_API_KEY = KEY;
});
afterAll(async () => {
  process.chdir(cwd);
  if (key === undefined) delete process.env.OPENAI_API_KEY;
  else process.env.OPENAI_API_KEY = key;
  rmSync(work, { recursive: true, force: true });
  await server.close();
});

for (const adapter of ADAPTERS) {
  describe(`docs/semantic-search.md on ${adapter.name}`, () => {
    let db: Session;
    beforeAll(async () => {
      db = await adapter.open();
    });
    afterAll(async () => {
      await db.close();
    });

    it('runs retrieval-augmented generation in three statements', async () => {
      expect(BLOCKS).toHaveLength(2);
      server.reset();
      for (const block of BLOCKS.slice(0, -1)) await db.sql(block.replaceAll('http://127.0.0.1:8080', server.url));
      // The last block's last statement is the answer (sql() returns the last statement's result).
      const last = await db.sql(BLOCKS[BLOCKS.length - 1]!);
      expect(last.columns.map((c) => c.name)).toEqual(['qid', 'question', 'answer']);
      expect(last.rows).toHaveLength(2);
      last.rows.forEach((row) => expect(typeof row[2]).toBe('string'));
      // Each prompt holds the question's three nearest documents by cosine similarity, nearest first (a brute force here).
      const docs = (await db.sql('SELECT body, embedding FROM doc_vectors')).rows.map((r) => ({ body: String(r[0]), v: (r[1] as number[]).map(Number) }));
      const questions = (await db.sql('SELECT question, embedding FROM question_vectors')).rows.map((r) => ({ question: String(r[0]), v: (r[1] as number[]).map(Number) }));
      const cosine = (a: number[], b: number[]): number => a.reduce((n, x, i) => n + x * b[i]!, 0) / (Math.hypot(...a) * Math.hypot(...b));
      expect(server.answered).toHaveLength(2);
      for (const prompt of server.answered) {
        const [, notes, question] = /notes: (.*) Question: (.*)$/.exec(prompt)!;
        const q = questions.find((x) => x.question === question)!;
        const nearest = docs.map((d) => ({ body: d.body, score: cosine(q.v, d.v) })).sort((a, b) => b.score - a.score);
        expect(notes!.split(' | ')).toEqual(nearest.slice(0, 3).map((d) => d.body));
      }
      const vectors = await db.sql('SELECT count(*) FROM doc_vectors WHERE embedding IS NOT NULL');
      expect(Number(vectors.rows[0]![0])).toBe(5);
    });
  });
}
