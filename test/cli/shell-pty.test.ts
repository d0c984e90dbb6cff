/**
 * The interactive shell's completion, dot commands, expanded display and pager, driven
 * through a pseudo-terminal as a user types (the built CLI, real DuckDB).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startShell, type PtyShell } from '../support/pty-shell.js';
import { ROOT, runCli } from '../support/run-cli.js';

const PROMPT = /modelsql> $/;
const MODEL = join(ROOT, 'examples', 'models', 'house_price.onnx');

let dir: string;
let shell: PtyShell | undefined;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'modelsql-pty-'))));
afterEach(() => {
  shell?.term.kill();
  shell = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** Starts the shell on a fresh database with a table `houses` and a model `price_model`. */
async function shellWithData(env: NodeJS.ProcessEnv = {}): Promise<PtyShell> {
  const db = join(dir, 'shop.duckdb');
  const setup = await runCli([
    'run',
    '--db',
    db,
    '-c',
    `CREATE TABLE houses AS SELECT i AS id, 1000.0 + i AS sqft, 3.0 AS bedrooms, 10.0 AS age FROM range(100) t(i);
     CREATE MODEL price_model INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE) OUTPUT (price DOUBLE) WITH ('provider' = 'onnx', 'path' = '${MODEL}');`,
  ]);
  expect(setup.stderr).toBe('');
  shell = startShell(['--db', db], { MODELSQL_HISTORY: '', PAGER: '', ...env }, dir);
  await shell.until(PROMPT);
  return shell;
}

/**
 * Types `parts`, a Tab after each but the last, waiting for each part's echo and each
 * completion: readline completes only a Tab that arrives on its own (a Tab inside pasted
 * text is text). `completed[i]` is what the line ends with after the i-th Tab.
 */
async function typeWithTabs(s: PtyShell, parts: readonly string[], completed: readonly string[]): Promise<void> {
  const mark = s.output().length;
  for (const [i, part] of parts.slice(0, -1).entries()) {
    s.term.write(part);
    await s.until(new RegExp(`${escape(part)}$`), mark);
    s.term.write('\t');
    await s.until(new RegExp(`${escape(completed[i]!)}$`), mark);
  }
  s.term.write(parts[parts.length - 1]!);
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Types `keys` and waits for `pattern` in what follows, then for the prompt. */
async function type(s: PtyShell, keys: string, pattern: RegExp): Promise<string> {
  const mark = s.output().length;
  s.term.write(keys);
  await s.until(pattern, mark);
  await s.until(PROMPT, mark);
  return s.output().slice(mark);
}

describe('completion', () => {
  it('completes key words, tables, columns, table.column, models, dot commands and their arguments', async () => {
    const s = await shellWithData();
    // a key word in the case typed, a column, a table
    await typeWithTabs(s, ['sel', ' 1 as one;\r'], ['select']);
    await s.until(/one[\s\S]*\(1 row\)[\s\S]*modelsql> $/);
    let mark = s.output().length;
    await typeWithTabs(s, ['SEL', ' sq', ' FROM hou', ' ORDER BY 1 LIMIT 1;\r'], ['SELECT', 'sqft', 'houses']);
    await s.until(/sqft[\s\S]*│ +1000(\.0)? │[\s\S]*modelsql> $/, mark);
    // table.column
    mark = s.output().length;
    await typeWithTabs(s, ['select houses.bed', ' from houses limit 1;\r'], ['houses.bedrooms']);
    await s.until(/bedrooms[\s\S]*\(1 row\)[\s\S]*modelsql> $/, mark);
    // a model name inside ML_PREDICT
    mark = s.output().length;
    await typeWithTabs(s, ['select round(price) as p from ml_predict(table houses, model price_m', ', descriptor(sqft, bedrooms, age)) order by id limit 1;\r'], ['price_model']);
    await s.until(/│ +p +│[\s\S]*\(1 row\)[\s\S]*modelsql> $/, mark);
    // a dot command and its argument
    mark = s.output().length;
    await typeWithTabs(s, ['.mo', ' js', '\r'], ['.mode', 'json']);
    await s.until(PROMPT, mark);
    await type(s, 'select 7 as seven;\r', /\[\{"seven":7\}\]/);
    // a file name after .read
    writeFileSync(join(dir, 'script-to-read.sql'), 'select 8 as eight;\n');
    mark = s.output().length;
    await typeWithTabs(s, ['.read script-to-r', '\r'], ['script-to-read.sql']);
    await s.until(/\[\{"eight":8\}\][\s\S]*modelsql> $/, mark);
  });

  it('sees a table created in the session', async () => {
    const s = await shellWithData();
    await type(s, 'select 1 as warm_up;\r', /warm_up/);
    await type(s, 'create table fresh_table as select 5 as fresh_column;\r', PROMPT);
    const mark = s.output().length;
    await typeWithTabs(s, ['select fresh_c', ' from fresh_t', ';\r'], ['fresh_column', 'fresh_table']);
    await s.until(/fresh_column[\s\S]*│ +5 │[\s\S]*modelsql> $/, mark);
  });
});

describe('dot commands', () => {
  it('.help, .tables, .models, .mode, \\x, .timer', async () => {
    const s = await shellWithData();
    const help = await type(s, '.help\r', /\.open/);
    for (const command of ['.tables', '.models', '.mode', '\\x', '.timer', '.pager', '.read', '.open', '.quit']) expect(help).toContain(command);

    expect(await type(s, '.tables\r', /\(1 row\)/)).toMatch(/│ main +│ houses +│ BASE TABLE │/);
    expect(await type(s, '.models\r', /\(1 row\)/)).toMatch(/│ price_model +│ main +│ onnx/);

    await type(s, '.mode csv\r', PROMPT);
    expect(await type(s, "select 1 as a, 'x' as b;\r", /a,b/)).toMatch(/a,b\r+\n1,x\r+\n/);
    await type(s, '.mode line\r', PROMPT);
    expect(await type(s, "select 1 as a, 'x' as bb;\r", /bb = x/)).toMatch(/\n a = 1\r\nbb = x/);
    expect(await type(s, '.mode\r', /line/)).toMatch(/line/);
    expect(await type(s, '.mode xml\r', /unknown setting/)).toMatch(/\.mode: unknown setting "xml": use one of table, csv, json, line/);
    await type(s, '.mode table\r', PROMPT);

    expect(await type(s, '\\x\r', /Expanded display is on\./)).toBeTruthy();
    expect(await type(s, "select 1 as id, 'ab' as name;\r", /RECORD 1/)).toMatch(/-\[ RECORD 1 \]-*\r\nid {3}\| 1\r\nname \| ab/);
    await type(s, '\\x auto\r', /Expanded display is used automatically\./);
    // narrow: a table; wider than the 120-column screen: expanded
    expect(await type(s, 'select 1 as narrow;\r', /\(1 row\)/)).toMatch(/│ narrow │/);
    expect(await type(s, `select '${'w'.repeat(130)}' as wide;\r`, /RECORD 1/)).toMatch(/wide \| w{130}/);
    await type(s, '\\x off\r', /Expanded display is off\./);

    expect(await type(s, '.timer on\r', PROMPT)).not.toMatch(/Run Time/);
    expect(await type(s, 'select 1;\r', /Run Time/)).toMatch(/Run Time \(s\): real \d+\.\d{3} user \d+\.\d{3} sys \d+\.\d{3}/);
    await type(s, '.timer off\r', PROMPT);
    expect(await type(s, 'select 2;\r', /\(1 row\)/)).not.toMatch(/Run Time/);
  });

  it('.read runs a file and stops at its first error; .open switches databases', async () => {
    const s = await shellWithData();
    const script = join(dir, 'script.sql');
    writeFileSync(script, 'create table from_script as select 42 as v;\nselect v from from_script;\nselect * from nowhere;\nselect 99 as never;\n');
    const read = await type(s, `.read ${script}\r`, /ERROR: {2}\w{5}:[^\n]*nowhere/);
    expect(read).toMatch(/│ 42 │/);
    expect(read).not.toMatch(/never/);
    expect(await type(s, `.read ${join(dir, 'missing.sql')}\r`, /cannot read/)).toMatch(/\.read: cannot read .*missing\.sql/);

    const other = join(dir, 'other.duckdb');
    await type(s, `.open ${other}\r`, PROMPT);
    await type(s, 'create table only_in_other as select 1 as x;\r', PROMPT);
    const tables = await type(s, '.tables\r', /\(\d+ rows?\)/);
    expect(tables).toMatch(/only_in_other/);
    expect(tables).not.toMatch(/houses/);
    expect(existsSync(other)).toBe(true);
    // no argument: a new in-memory database
    await type(s, '.open\r', PROMPT);
    expect(await type(s, '.tables\r', /\(0 rows\)/)).not.toMatch(/only_in_other/);
    // a database that cannot be opened leaves the current one open
    expect(await type(s, `.open ${join(dir, 'no', 'such', 'dir', 'x.duckdb')}\r`, /ERROR/)).toMatch(/ERROR: {2}\w{5}:/);
    expect(await type(s, 'select 3 as still_here;\r', /still_here/)).toMatch(/│ +3 │/);

    s.term.write('.quit\r');
    expect(await s.exited).toBe(0);
  });

  it('Ctrl-C clears the line being typed and cancels a running statement', async () => {
    const s = await shellWithData();
    await type(s, 'select half\x03', PROMPT);
    const mark = s.output().length;
    s.term.write('select count(*) from range(1000000000000) a;\r');
    await new Promise((r) => setTimeout(r, 500));
    s.term.write('\x03');
    await s.until(/ERROR: {2}57014: canceling statement due to user request[\s\S]*modelsql> $/, mark);
    expect(await type(s, 'select 4 as after;\r', /after/)).toMatch(/│ +4 │/);
  });
});

describe('pager', () => {
  it('pages a result longer than the screen through $PAGER, not one that fits', async () => {
    const paged = join(dir, 'paged.txt');
    const s = await shellWithData({ PAGER: `cat > '${paged}'` });
    const long = await type(s, 'select id from houses order by id;\r', PROMPT);
    expect(readFileSync(paged, 'utf8')).toMatch(/│ +99 │\n└─+┘\n\(100 rows\)\n$/);
    expect(long).not.toMatch(/│ +99 │/);
    rmSync(paged);
    // fits on the 40-line screen: printed, no pager
    expect(await type(s, 'select id from houses order by id limit 5;\r', /\(5 rows\)/)).toMatch(/│ +4 │/);
    expect(existsSync(paged)).toBe(false);
    // .pager on: everything goes through it; .pager off: nothing does
    await type(s, '.pager on\r', PROMPT);
    await type(s, 'select 1 as tiny;\r', PROMPT);
    expect(readFileSync(paged, 'utf8')).toMatch(/tiny/);
    await type(s, '.pager off\r', PROMPT);
    expect(await type(s, 'select id from houses order by id;\r', /\(100 rows\)/)).toMatch(/│ +99 │/);
  });

  it('is off with PAGER set empty, and when the output is not a terminal', async () => {
    const s = await shellWithData({ PAGER: '' });
    expect(await type(s, 'select id from houses order by id;\r', /\(100 rows\)/)).toMatch(/│ +99 │/);
    expect(await type(s, '.pager on\r', /no pager/)).toMatch(/set the PAGER environment variable/);
    const paged = join(dir, 'never.txt');
    const piped = await runCli(['run', '-c', 'select * from range(200)'], '', { PAGER: `cat > '${paged}'` });
    expect(piped.stdout).toMatch(/\(200 rows\)/);
    expect(existsSync(paged)).toBe(false);
  });
});
