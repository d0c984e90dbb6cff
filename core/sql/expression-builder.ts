/**
 * Short names for the dialect's expression spelling (`SqlDialect.operator`, `call`,
 * `double`), so that generated SQL reads as the math it computes while every operator,
 * function and number goes through the dialect (schema-qualified, typed on Postgres).
 *
 * @example
 * const { add, mul, num, fn } = expressionBuilder(dialect);
 * fn('sum', mul(add('x', num(1)), 'y')) // Postgres: pg_catalog.sum((("x" OPERATOR(pg_catalog.+) CAST(1 AS double precision)) OPERATOR(pg_catalog.*) "y"))
 */
import type { SqlDialect, SqlFunction } from '../host.js';

/** Bound builders over one dialect; every binary builder parenthesizes its result. */
export interface ExpressionBuilder {
  readonly add: (a: string, b: string) => string;
  readonly sub: (a: string, b: string) => string;
  readonly mul: (a: string, b: string) => string;
  readonly div: (a: string, b: string) => string;
  readonly eq: (a: string, b: string) => string;
  readonly ne: (a: string, b: string) => string;
  readonly lt: (a: string, b: string) => string;
  readonly le: (a: string, b: string) => string;
  readonly gt: (a: string, b: string) => string;
  readonly ge: (a: string, b: string) => string;
  readonly neg: (a: string) => string;
  /** A typed DOUBLE literal. */
  readonly num: (value: number) => string;
  /** A typed BIGINT literal. */
  readonly int: (value: number) => string;
  readonly fn: (name: SqlFunction, ...args: readonly string[]) => string;
  /** `a + b + ...` (the first term alone when there is one). */
  readonly sum: (terms: readonly string[]) => string;
  /** `x * x`. */
  readonly square: (x: string) => string;
}

/** The builders of `d`. */
export function expressionBuilder(d: SqlDialect): ExpressionBuilder {
  const binary = (op: Parameters<SqlDialect['operator']>[1]) => (a: string, b: string) => d.operator(a, op, b);
  const add = binary('+');
  const mul = binary('*');
  return {
    add,
    sub: binary('-'),
    mul,
    div: binary('/'),
    eq: binary('='),
    ne: binary('<>'),
    lt: binary('<'),
    le: binary('<='),
    gt: binary('>'),
    ge: binary('>='),
    neg: (a) => d.negate(a),
    num: (value) => d.double(value),
    int: (value) => d.bigint(value),
    fn: (name, ...args) => d.call(name, ...args),
    sum: (terms) => terms.reduce((s, t) => add(s, t)),
    square: (x) => mul(x, x),
  };
}
