/**
 * `npm run fuzz`: the parser fuzzer at full count (default 100,000 cases, seed 437).
 * `node dist/test/fuzz/fuzz-parser.js --seed 7 --count 500000` for another run; a failing
 * case is printed as a JSON string, and the same seed reproduces it.
 */
import { fuzzParser } from './parser-fuzzer.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a whole number`);
  return value;
}

const report = fuzzParser({ seed: flag('seed', 437), count: flag('count', 100_000) });
process.stdout.write(
  `parser fuzz, seed ${report.seed}: ${report.cases} cases in ${(report.totalMs / 1000).toFixed(1)} s — ` +
    `${report.accepted} parsed, ${report.rejected} rejected with a positioned error, ${report.failures.length} failures; slowest case ${report.maxMs.toFixed(1)} ms\n`,
);
for (const f of report.failures) process.stdout.write(`${f.kind}: ${JSON.stringify(f.input)}\n  ${f.detail.split('\n').slice(0, 4).join('\n  ')}\n`);
process.exitCode = report.failures.length === 0 ? 0 : 1;
