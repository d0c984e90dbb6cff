/**
 * The result names of a model's OUTPUT columns beside its input's (Flink's clash rule), a
 * pure function of names: shared by the planner and the materialized-table refresh, which
 * need it without loading the planner.
 */

/**
 * Names of the OUTPUT columns in the result: a name that clashes with an input column (or
 * an earlier output) gets the first free numeric suffix, `label` → `label0`, as in Flink.
 */
export function outputColumnNames(inputNames: readonly string[], outputNames: readonly string[]): string[] {
  const taken = new Set(inputNames.map((n) => n.toLowerCase()));
  return outputNames.map((name) => {
    let candidate = name;
    for (let i = 0; taken.has(candidate.toLowerCase()); i++) candidate = `${name}${i}`;
    taken.add(candidate.toLowerCase());
    return candidate;
  });
}
