/**
 * The parser fuzzer in CI: a fixed seed and a small count (the full 100,000 cases run with
 * `npm run fuzz`). Every mutated statement parses, or fails with a positioned
 * ModelSqlError, in under a second; and the fuzzer itself catches each kind of failure.
 */
import { ModelSqlError, SqlSyntaxError, positionAt } from '../../core/errors.js';
import { fuzzParser, loadCorpus, mutate, prng } from './parser-fuzzer.js';

test('5,000 mutated statements (seed 437): no crash, no case over 1 s, every error positioned', () => {
  const report = fuzzParser({ seed: 437, count: 5000 });
  expect(report.failures).toEqual([]);
  expect(report.cases).toBe(5000);
  // The mutations reach both outcomes in quantity.
  expect(report.accepted).toBeGreaterThan(1000);
  expect(report.rejected).toBeGreaterThan(1000);
});

test('a seed gives the same cases every time', () => {
  const corpus = loadCorpus();
  const run = (): string[] => {
    const random = prng(99);
    return Array.from({ length: 50 }, () => mutate(corpus[Math.floor(random() * corpus.length)]!, corpus, random));
  };
  expect(run()).toEqual(run());
  expect(new Set(run()).size).toBeGreaterThan(40);
});

test('the fuzzer reports crashes, unpositioned errors and slow cases', () => {
  const faulty = (text: string): void => {
    if (text.length % 3 === 0) throw new TypeError('boom');
    if (text.length % 3 === 1) throw new ModelSqlError('42601', 'no position');
    throw new SqlSyntaxError('positioned', positionAt(text, 0), text);
  };
  const report = fuzzParser({ seed: 1, count: 200, parse: faulty, maxFailures: 1000 });
  expect(new Set(report.failures.map((f) => f.kind))).toEqual(new Set(['crash', 'no-position']));
  expect(report.rejected).toBeGreaterThan(0);
  const slow = fuzzParser({ seed: 1, count: 3, maxMs: 5, parse: () => busyWait(20) });
  expect(slow.failures.map((f) => f.kind)).toEqual(['slow', 'slow', 'slow']);
});

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}
