/**
 * Public surface of the SQL layer: lexing, parsing, argument binding, types and formatting.
 */
export { isStatementComplete, scan, splitStatements, tokenize, isWord, isSymbol, TokenCursor } from './lexer.js';
export type { Token, TokenKind, ScanResult, Unterminated } from './lexer.js';
export { parseScript } from './parser.js';
export {
  bindEvaluate,
  bindPredict,
  CALL_CONFIG_KEYS,
  EVALUATION_TASKS,
  modelArgument,
  parseBooleanOption,
  parseCallConfig,
  parseDuration,
  parsePositiveInt,
} from './ml-call.js';
export type { CallConfig, EvaluateBinding, EvaluationTask, InputArgument, MapEntry, PredictBinding, OutputMode, ErrorHandlingStrategy } from './ml-call.js';
export { formatType, formatTypeAsWritten, isAssignable, parseDataType, typeCategory } from './types.js';
export type { TypeCategory } from './types.js';
export {
  formatCreateModel,
  formatIdentifier,
  formatModelName,
  formatQualifiedName,
  formatStatement,
  quoteIdentifier,
  quoteString,
} from './format.js';
export type { CreateModelColumn, CreateModelParts } from './format.js';
export type * from './ast.js';
