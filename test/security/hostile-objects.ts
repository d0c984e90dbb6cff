/**
 * A hostile role's objects for the search_path hijack (search-path.test.ts,
 * materialized-attacks.test.ts): operators, functions and aggregates in `public` for every
 * (left type, right type) pair generated SQL could use, each recording its caller into
 * `public.hijack_log (who text, what text)` when it runs.
 */
const TYPES = ['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision', 'text', 'boolean'];
const ARITHMETIC = ['+', '-', '*', '/', '&', '||'];
const COMPARISON = ['=', '<>', '<', '<=', '>', '>='];
const SCALAR_FUNCTIONS = ['exp', 'ln', 'sqrt', 'abs', 'floor', 'md5', 'concat', 'jsonb_build_object', 'array_length', 'substr'];
const AGGREGATES = ['sum', 'avg', 'min', 'max', 'stddev_pop', 'var_pop'];
const NUMERIC_TYPES = ['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision'];

/** The hostile role's objects: every one logs `current_user` into `public.hijack_log`. */
export function hostileObjects(): string[] {
  const log = (what: string) => `INSERT INTO public.hijack_log VALUES (current_user, ${pgString(what)})`;
  const statements: string[] = [];
  let n = 0;
  const fn = (params: string[], returns: string, what: string): string => {
    const name = `public.hijack_${n++}`;
    statements.push(`CREATE FUNCTION ${name}(${params.join(', ')}) RETURNS ${returns} LANGUAGE plpgsql AS $$ BEGIN ${log(what)}; RETURN NULL; END $$`);
    return name;
  };
  for (const left of TYPES) {
    for (const right of TYPES) {
      for (const op of [...ARITHMETIC, ...COMPARISON]) {
        const returns = COMPARISON.includes(op) ? 'boolean' : op === '||' ? 'text' : left;
        const f = fn([left, right], returns, `${left} ${op} ${right}`);
        statements.push(`CREATE OPERATOR public.${op} (LEFTARG = ${left}, RIGHTARG = ${right}, FUNCTION = ${f})`);
      }
    }
    statements.push(`CREATE OPERATOR public.- (RIGHTARG = ${left}, FUNCTION = ${fn([left], left, `-${left}`)})`);
    for (const name of SCALAR_FUNCTIONS) {
      statements.push(`CREATE FUNCTION public.${name}(a ${left}) RETURNS ${left} LANGUAGE plpgsql AS $$ BEGIN ${log(`${name}(${left})`)}; RETURN a; END $$`);
      statements.push(`CREATE FUNCTION public.${name}(a ${left}, b ${left}) RETURNS ${left} LANGUAGE plpgsql AS $$ BEGIN ${log(`${name}(${left}, ${left})`)}; RETURN a; END $$`);
    }
  }
  statements.push(`CREATE FUNCTION public.substr(a text, b bigint, c bigint) RETURNS text LANGUAGE plpgsql AS $$ BEGIN ${log('substr(text, bigint, bigint)')}; RETURN a; END $$`);
  statements.push(`CREATE FUNCTION public.current_schema() RETURNS name LANGUAGE plpgsql AS $$ BEGIN ${log('current_schema()')}; RETURN 'public'; END $$`);
  for (const type of NUMERIC_TYPES) {
    const step = fn([type, type], type, `aggregate step(${type})`);
    for (const name of AGGREGATES) statements.push(`CREATE AGGREGATE public.${name}(${type}) (SFUNC = ${step}, STYPE = ${type})`);
  }
  return statements;
}

function pgString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
