/**
 * The SQL examples of a markdown page, in page order, with the marks that say where each
 * runs (the convention is described in docs/README.md, "Examples are tested"):
 *
 * - every ```sql block is an example;
 * - in a ```sh block, the SQL of each `modelsql run ... -c "SQL"` command is one too;
 * - an HTML comment `<!-- example: ... -->` on the last non-blank line before a block marks
 *   it, with words separated by commas: `duckdb` or `postgres` (runs on that host only),
 *   `error SQLSTATE` (fails with that SQLSTATE), `skip REASON` (not run);
 * - `<!-- example setup: SQL -->` is SQL the next block needs that the page does not show
 *   (a table the text describes); it runs where that block runs.
 * - a box table (`┌...`) in the plain ``` block right after an example shows the columns
 *   of its last statement's result;
 * - `/path/to/modelsql` in an example stands for the repository's absolute path.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './run-cli.js';

/** A host an example may be limited to. */
export type ExampleHost = 'duckdb' | 'postgres';

/** One example of a page. */
export interface DocExample {
  /** Line of its opening fence (1-based). */
  readonly line: number;
  readonly sql: string;
  /** SQL the page does not show that runs first (`example setup`). */
  readonly setup?: string;
  /** The host it is limited to; undefined: both. */
  readonly only?: ExampleHost;
  /** The SQLSTATE it fails with; undefined: it succeeds. */
  readonly error?: string;
  /** Why it is not run; undefined: it is. */
  readonly skip?: string;
  /** Column names of the box table shown after it, if any. */
  readonly columns?: readonly string[];
}

/** What pages write for the repository's absolute path. */
const PLACEHOLDER = '/path/to/modelsql';
const MARK = /^<!--\s*example:\s*([\s\S]*?)\s*-->$/;
const SETUP = /^<!--\s*example setup:\s*([\s\S]*?)\s*-->$/;

/** The SQL of each `modelsql run ... -c "..."` of a shell block (double-quoted, no escapes). */
function shellSql(body: string): string[] {
  return [...body.matchAll(/modelsql run\b[^\n"]*?-c "([^"]*)"/g)].map((m) => m[1]!);
}

function parseMark(text: string, where: string): Pick<DocExample, 'only' | 'error' | 'skip'> {
  const mark: { only?: ExampleHost; error?: string; skip?: string } = {};
  for (const word of text.split(',').map((w) => w.trim())) {
    if (word === 'duckdb' || word === 'postgres') mark.only = word;
    else if (/^error [0-9A-Z]{5}$/.test(word)) mark.error = word.slice(6);
    else if (/^skip \S/.test(word)) mark.skip = word.slice(5);
    else throw new Error(`${where}: unknown example mark '${word}' (duckdb, postgres, error SQLSTATE, skip REASON)`);
  }
  return mark;
}

/** The examples of `page` (a path from the repository root). */
export function docExamples(page: string): DocExample[] {
  const lines = readFileSync(join(ROOT, page), 'utf8').split('\n');
  const examples: DocExample[] = [];
  let setup: string | undefined;
  let markText: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const where = `${page}:${i + 1}`;
    if (line.startsWith('<!--')) {
      let end = i;
      while (!lines[end]!.includes('-->')) end++;
      const text = lines.slice(i, end + 1).join('\n');
      const found = SETUP.exec(text)?.[1];
      if (found !== undefined) setup = found;
      else if (MARK.exec(text)) markText = MARK.exec(text)![1];
      else if (/example/.test(text)) throw new Error(`${where}: malformed example comment`);
      i = end;
      continue;
    }
    const fence = /^```(\w*)/.exec(line);
    if (!fence) {
      if (line.trim() !== '') setup = markText = undefined;
      continue;
    }
    let close = i + 1;
    while (!lines[close]!.startsWith('```')) close++;
    const body = lines.slice(i + 1, close).join('\n');
    const sqls = fence[1] === 'sql' ? [body] : fence[1] === 'sh' ? shellSql(body) : [];
    if ((setup !== undefined || markText !== undefined) && sqls.length === 0) throw new Error(`${where}: an example mark before a block with no example`);
    const mark = markText === undefined ? {} : parseMark(markText, where);
    sqls.forEach((sql, k) => examples.push({ line: i + 1, sql: sql.replaceAll(PLACEHOLDER, ROOT), ...(setup !== undefined && k === 0 ? { setup } : {}), ...mark }));
    setup = markText = undefined;
    i = close;
    // The box table of the plain block right after, shown as the last statement's result.
    if (sqls.length === 1) {
      let next = close + 1;
      while (next < lines.length && lines[next]!.trim() === '') next++;
      if (lines[next] === '```' && lines[next + 1]?.startsWith('┌')) {
        const header = lines[next + 2]!;
        examples[examples.length - 1] = { ...examples[examples.length - 1]!, columns: header.split('│').slice(1, -1).map((c) => c.trim()) };
      }
    }
  }
  return examples;
}
