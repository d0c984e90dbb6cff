/**
 * Reads a planner fixture file: cases separated by `-- case: <name>` lines, each an input
 * then `-- expected:` and the expected text.
 */
import { readFileSync } from 'node:fs';

/** One fixture case. */
export interface FixtureCase {
  readonly name: string;
  readonly input: string;
  readonly expected: string;
}

/** The cases of `fixtures/<file>`, in file order. */
export function readCases(file: string): FixtureCase[] {
  const text = readFileSync(new URL(`./fixtures/${file}`, import.meta.url), 'utf8');
  return text
    .split(/^-- case: /m)
    .filter((part) => part.trim() !== '')
    .map((part) => {
      const [head, expected] = part.split(/^-- expected:\n/m);
      const newline = head!.indexOf('\n');
      return { name: head!.slice(0, newline), input: head!.slice(newline + 1).trimEnd(), expected: expected!.trimEnd() };
    });
}
