import { parseScript } from '../../../core/sql/parser.js';
import {
  bindEvaluate,
  bindPredict,
  CALL_CONFIG_KEYS,
  modelArgument,
  namedModels,
  parseBooleanOption,
  parseCallConfig,
  parseDuration,
  parsePositiveInt,
} from '../../../core/sql/ml-call.js';
import type { MapEntry } from '../../../core/sql/ml-call.js';
import { InvalidOptionError, ModelSqlError, SqlSyntaxError } from '../../../core/errors.js';
import type { MlCall, QueryStatement } from '../../../core/sql/ast.js';

function call(sql: string): MlCall {
  const [stmt] = parseScript(sql);
  expect(stmt!.kind).toBe('query');
  return (stmt as QueryStatement).calls[0]!;
}

function failure(fn: () => unknown): ModelSqlError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ModelSqlError);
    return error as ModelSqlError;
  }
  throw new Error('expected an error');
}

const slice = (sql: string, span: { start: number; end: number }): string => sql.slice(span.start, span.end);

describe('modelArgument', () => {
  it('finds the positional and the named MODEL argument', () => {
    const sql = 'SELECT * FROM ML_PREDICT(TABLE t, MODEL s.m$2, DESCRIPTOR(a))';
    const found = modelArgument(call(sql), sql);
    expect(found.name.parts.map((p) => p.value)).toEqual(['s', 'm']);
    expect(found.name.version).toBe(2);
    expect(slice(sql, found.span)).toBe('MODEL s.m$2');
    const named = 'SELECT * FROM ML_PREDICT(ARGS => DESCRIPTOR(a), MODEL => MODEL m, INPUT => TABLE t)';
    expect(modelArgument(call(named), named).name.parts[0]!.value).toBe('m');
  });

  it('rejects a missing or misplaced MODEL with a position', () => {
    const sql = 'SELECT * FROM ML_PREDICT(TABLE t, DESCRIPTOR(a), MODEL m)';
    const error = failure(() => modelArgument(call(sql), sql));
    expect(error).toBeInstanceOf(SqlSyntaxError);
    expect(error.message).toBe('argument 2 of ML_PREDICT must be MODEL name, found DESCRIPTOR(a)');
    expect(error.position?.column).toBe(35);
    const missing = 'SELECT * FROM ML_PREDICT(INPUT => TABLE t, ARGS => DESCRIPTOR(a))';
    expect(failure(() => modelArgument(call(missing), missing)).message).toMatch(/^ML_PREDICT requires a MODEL argument/);
  });
});

describe('namedModels', () => {
  it('lists every MODEL argument, those inside TABLE (subquery) inputs too, in text order', () => {
    const sql = 'SELECT * FROM ML_PREDICT(TABLE (SELECT * FROM ML_PREDICT(TABLE t, MODEL a, DESCRIPTOR(x))), MODEL s.b$2, DESCRIPTOR(x))';
    const [statement] = parseScript(sql);
    const names = namedModels((statement as QueryStatement).calls);
    expect(names.map((n) => [n.parts.map((p) => p.value).join('.'), n.version])).toEqual([['a', undefined], ['s.b', 2]]);
  });
});

describe('bindPredict', () => {
  it('binds positional arguments', () => {
    const sql = "SELECT * FROM ML_PREDICT(TABLE s.t, MODEL m, DESCRIPTOR(a, b), MAP['async', 'true', 'timeout', '10s'])";
    const bound = bindPredict(call(sql), sql);
    expect(bound.input.kind).toBe('table');
    expect(bound.model.parts[0]!.value).toBe('m');
    expect(bound.columns.map((c) => c.value)).toEqual(['a', 'b']);
    expect(slice(sql, bound.descriptorSpan)).toBe('DESCRIPTOR(a, b)');
    expect(bound.config).toEqual({ async: true, timeoutMs: 10_000 });
    expect(bound.configEntries).toHaveLength(2);
  });

  it('binds named arguments in any order, without CONFIG', () => {
    const sql = 'SELECT * FROM ML_PREDICT(args => DESCRIPTOR(x), input => TABLE (SELECT 1 AS x), model => MODEL m)';
    const bound = bindPredict(call(sql), sql);
    expect(bound.input.kind).toBe('subquery');
    expect(bound.columns.map((c) => c.value)).toEqual(['x']);
    expect(bound.config).toEqual({});
    expect(bound.configEntries).toEqual([]);
  });

  it.each([
    ['SELECT * FROM ML_PREDICT(TABLE t, MODEL m)', /^too few arguments for ML_PREDICT/, 'ML_PREDICT'],
    ["SELECT * FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a), MAP['async','true'], 'x')", /^too many arguments for ML_PREDICT/, "'x'"],
    ['SELECT * FROM ML_PREDICT(TABLE t, MODEL m, TABLE u)', /^argument 3 of ML_PREDICT must be DESCRIPTOR\(column, \.\.\.\), found TABLE u$/, 'TABLE u'],
    ['SELECT * FROM ML_PREDICT(MODEL m, MODEL m, DESCRIPTOR(a))', /^argument 1 of ML_PREDICT must be TABLE name or TABLE \(query\)/, 'MODEL m'],
    ['SELECT * FROM ML_PREDICT(INPUT => TABLE t, MODEL => MODEL m, ARGS => DESCRIPTOR(a), MODEL => MODEL n)', /given more than once/, 'MODEL => MODEL n'],
    ['SELECT * FROM ML_PREDICT(INPUT => TABLE t, MODEL => MODEL m, COLUMNS => DESCRIPTOR(a))', /^unknown argument name COLUMNS for ML_PREDICT; expected INPUT, MODEL, ARGS, CONFIG$/, 'COLUMNS => DESCRIPTOR(a)'],
    ['SELECT * FROM ML_PREDICT(INPUT => TABLE t, MODEL => MODEL m)', /^missing argument ARGS for ML_PREDICT/, 'ML_PREDICT'],
  ])('%s', (sql, message, at) => {
    const error = failure(() => bindPredict(call(sql), sql));
    expect(error.sqlstate).toBe('42601');
    expect(error.message).toMatch(message);
    expect(error.sqlText).toBe(sql);
    expect(sql.slice(error.position!.offset, error.position!.offset + at.length)).toBe(at);
  });

  it('rejects a CONFIG value that is not a string literal, at the value', () => {
    const sql = "SELECT * FROM ML_PREDICT(TABLE t, MODEL m, DESCRIPTOR(a), MAP['async', true])";
    const error = failure(() => bindPredict(call(sql), sql));
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error.sqlstate).toBe('22023');
    expect(error.message).toBe("CONFIG value for 'async' must be a string literal, e.g. 'true', found true");
    expect(sql.slice(error.position!.offset).startsWith('true])')).toBe(true);
  });
});

describe('bindEvaluate', () => {
  it('binds positional arguments with task and config', () => {
    const sql = "SELECT * FROM ML_EVALUATE(TABLE t, MODEL m, DESCRIPTOR(y), DESCRIPTOR(a, b), 'Regression', MAP['batch-size', '64'])";
    const bound = bindEvaluate(call(sql), sql);
    expect(bound.label.value).toBe('y');
    expect(bound.columns.map((c) => c.value)).toEqual(['a', 'b']);
    expect(bound.task?.value).toBe('regression');
    expect(slice(sql, bound.task!.span)).toBe("'Regression'");
    expect(bound.config).toEqual({ batchSize: 64 });
  });

  it('takes a MAP in fifth place when there is no task', () => {
    const sql = "SELECT * FROM ML_EVALUATE(TABLE t, MODEL m, DESCRIPTOR(y), DESCRIPTOR(a), MAP['cache', 'false'])";
    const bound = bindEvaluate(call(sql), sql);
    expect(bound.task).toBeUndefined();
    expect(bound.config).toEqual({ cache: false });
  });

  it('binds named arguments', () => {
    const sql = "SELECT * FROM ML_EVALUATE(TASK => 'clustering', LABEL => DESCRIPTOR(y), ARGS => DESCRIPTOR(a), MODEL => MODEL m, INPUT => TABLE t)";
    const bound = bindEvaluate(call(sql), sql);
    expect(bound.task?.value).toBe('clustering');
    expect(bound.label.value).toBe('y');
  });

  it('requires exactly one label column', () => {
    const sql = 'SELECT * FROM ML_EVALUATE(TABLE t, MODEL m, DESCRIPTOR(y, z), DESCRIPTOR(a))';
    const error = failure(() => bindEvaluate(call(sql), sql));
    expect(error.message).toBe('the label DESCRIPTOR of ML_EVALUATE must name exactly one column, found 2');
    expect(error.position?.column).toBe(45);
  });

  it('lists the tasks on an unknown one', () => {
    const sql = "SELECT * FROM ML_EVALUATE(TABLE t, MODEL m, DESCRIPTOR(y), DESCRIPTOR(a), 'ranking')";
    const error = failure(() => bindEvaluate(call(sql), sql));
    expect(error.sqlstate).toBe('22023');
    expect(error.message).toBe("invalid ML_EVALUATE task 'ranking'; expected one of regression, classification, clustering, embedding, text_generation");
  });

  it('rejects too few arguments', () => {
    const sql = 'SELECT * FROM ML_EVALUATE(TABLE t, MODEL m, DESCRIPTOR(y))';
    expect(failure(() => bindEvaluate(call(sql), sql)).message).toMatch(/^too few arguments for ML_EVALUATE/);
  });
});

const entry = (key: string, value: string, literal = true): MapEntry => ({ key, value, literal, keySpan: { start: 0, end: 0 }, valueSpan: { start: 0, end: 0 } });

describe('parseCallConfig', () => {
  it('parses every key', () => {
    expect(
      parseCallConfig([
        entry('async', 'TRUE'),
        entry('max-concurrent-operations', '8'),
        entry('output-mode', 'allow_unordered'),
        entry('timeout', '2min'),
        entry('batch-size', '32'),
        entry('cache', 'false'),
        entry('Error-Handling-Strategy', 'ignore'),
      ]),
    ).toEqual({ async: true, maxConcurrentOperations: 8, outputMode: 'ALLOW_UNORDERED', timeoutMs: 120_000, batchSize: 32, cache: false, errorHandlingStrategy: 'IGNORE' });
  });

  it('names the known keys on an unknown one', () => {
    const error = failure(() => parseCallConfig([entry('retries', '3')]));
    expect(error).toBeInstanceOf(InvalidOptionError);
    expect(error.message).toBe(`unknown CONFIG key 'retries'; known keys are ${CALL_CONFIG_KEYS.join(', ')}`);
  });

  it.each([
    ['async', 'yes', "invalid value for 'async': 'yes' (expected 'true' or 'false')"],
    ['max-concurrent-operations', '0', "invalid value for 'max-concurrent-operations': '0' (expected a positive integer)"],
    ['batch-size', '1.5', "invalid value for 'batch-size': '1.5' (expected a positive integer)"],
    ['output-mode', 'random', "invalid value for 'output-mode': 'random' (expected one of ORDERED, ALLOW_UNORDERED)"],
    ['error-handling-strategy', 'skip', "invalid value for 'error-handling-strategy': 'skip' (expected one of RETRY, FAILOVER, IGNORE)"],
    ['timeout', 'soon', "invalid duration for 'timeout': 'soon' (expected a number and a unit, e.g. '10s', '500ms', '2min', '1h')"],
    ['timeout', '0s', "invalid value for 'timeout': '0s' (must be greater than zero)"],
  ])('%s = %s', (key, value, message) => {
    const error = failure(() => parseCallConfig([entry(key, value)]));
    expect(error.sqlstate).toBe('22023');
    expect(error.message).toBe(message);
  });

  it('rejects a repeated key', () => {
    expect(failure(() => parseCallConfig([entry('async', 'true'), entry('ASYNC', 'false')])).message).toBe("CONFIG key 'ASYNC' is given more than once");
  });
});

describe('option validators', () => {
  it('parseDuration follows Flink units, plain numbers being milliseconds', () => {
    expect(parseDuration('10s')).toBe(10_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2min')).toBe(120_000);
    expect(parseDuration('1 h')).toBe(3_600_000);
    expect(parseDuration('3 seconds')).toBe(3000);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration('250')).toBe(250);
    expect(() => parseDuration('-1s')).toThrow(InvalidOptionError);
    expect(() => parseDuration('1 fortnight')).toThrow(InvalidOptionError);
  });

  it('parseBooleanOption and parsePositiveInt', () => {
    expect(parseBooleanOption('False')).toBe(false);
    expect(() => parseBooleanOption('1', 'cache')).toThrow("invalid value for 'cache'");
    expect(parsePositiveInt('12')).toBe(12);
    expect(() => parsePositiveInt('-3')).toThrow(InvalidOptionError);
    expect(() => parsePositiveInt('99999999999999999999')).toThrow(InvalidOptionError);
  });
});
