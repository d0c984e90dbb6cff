-- Flink's own model statements (FLIP-437's examples, Flink 2.1's release-testing script for
-- FLIP-437, Flink's model DDL and ML_PREDICT syntax), each with the outcome modelsql gives
-- on every host. `-- expect: ok`, `-- expect: rows N`, `-- expect: notice`, or
-- `-- expect: error SQLSTATE` heads each statement (`-- expect on duckdb: ...` overrides it
-- on that host); blocks are separated by blank lines.
-- ${LINEAR} is examples/models/house_price.onnx (x float[N,3] -> price float[N,1]).

-- expect: ok
CREATE TABLE houses AS SELECT CAST(i AS DOUBLE PRECISION) AS sqft, CAST(i % 5 AS DOUBLE PRECISION) AS bedrooms, CAST(i % 30 AS DOUBLE PRECISION) AS age FROM generate_series(1, 20) AS r(i)

-- FLIP-437: an imported ONNX model, Flink's type/format form (ONNX.path).
-- expect: ok
CREATE MODEL `my_import_model`
INPUT (f1 DOUBLE, f2 DOUBLE, f3 DOUBLE)
OUTPUT (label FLOAT)
WITH(
  'task' = 'regression',
  'type' = 'import',
  'format' = 'ONNX',
  'ONNX.path' = '${LINEAR}'
)

-- FLIP-437's remote example, as written (no 'model': a NOTICE, the model runs once it is set).
-- expect: notice
CREATE MODEL `my_remote_model`
INPUT (f1 INT, f2 STRING)
OUTPUT (label STRING, probs ARRAY<FLOAT>)
WITH(
  'task' = 'classification',
  'type' = 'remote',
  'provider' = 'openai',
  'openai.endpoint' = 'https://api.openai.com/v1/llm/v1/chat',
  'openai.api_key' = 'abcdefg'
)

-- The same option plain and prefixed.
-- expect: error 22023
CREATE MODEL twice INPUT (a STRING) OUTPUT (b STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1', 'openai.endpoint' = 'http://127.0.0.1:9/v1', 'model' = 'm', 'api-key' = 'k')

-- Flink 2.1 release testing: a model with only a provider (modelsql checks options at CREATE).
-- expect: error 22023
CREATE MODEL test_model
INPUT (i STRING)
OUTPUT (o DOUBLE)
WITH (
  'provider' = 'openai'
)

-- expect: notice
CREATE MODEL test_model INPUT (i STRING) OUTPUT (o STRING) WITH ('provider' = 'openai', 'endpoint' = 'http://127.0.0.1:9/v1/chat/completions', 'model' = 'gpt-4o-mini', 'api-key' = '${env:MODELSQL_CONFORMANCE_UNSET}')

-- expect: rows 3
SHOW MODELS

-- expect: rows 2
SHOW MODELS LIKE 'my%'

-- expect: rows 1
SHOW MODELS NOT ILIKE 'MY%'

-- expect: rows 2
DESCRIBE MODEL test_model

-- expect: rows 1
SHOW CREATE MODEL test_model

-- Flink 2.1 release testing: an unknown provider.
-- expect: error 22023
ALTER MODEL test_model SET ('provider'='abc')

-- Its key variable is still unset: ALTER checks the model again and says so.
-- expect: notice
ALTER MODEL test_model SET ('openai.temperature' = '0.5')

-- expect: notice
ALTER MODEL test_model RESET ('temperature')

-- expect: ok
alter model test_model rename to test_model1

-- expect: error 42704
DESCRIBE MODEL test_model

-- expect: ok
DROP MODEL test_model1

-- expect: ok
DROP MODEL IF EXISTS test_model1

-- expect: ok
CREATE TEMPORARY MODEL IF NOT EXISTS tmp_model INPUT (a DOUBLE, b DOUBLE, c DOUBLE) OUTPUT (y FLOAT) WITH ('provider' = 'onnx', 'path' = '${LINEAR}')

-- expect: ok
DROP TEMPORARY MODEL tmp_model

-- ML_PREDICT, positional (FLIP-437).
-- expect: rows 20
SELECT * FROM ML_PREDICT(TABLE houses, MODEL my_import_model, DESCRIPTOR(sqft, bedrooms, age))

-- Flink's TABLE(...) form with a CONFIG map.
-- expect: rows 20
SELECT * FROM TABLE(ML_PREDICT(TABLE houses, MODEL my_import_model, DESCRIPTOR(sqft, bedrooms, age), MAP['async', 'true', 'max-concurrent-operations', '4']))

-- Named arguments, any order.
-- expect: rows 20
SELECT label FROM ML_PREDICT(MODEL => MODEL my_import_model, ARGS => DESCRIPTOR(sqft, bedrooms, age), INPUT => TABLE houses)

-- A qualified descriptor column.
-- expect: error 42601
SELECT * FROM ML_PREDICT(TABLE houses, MODEL my_import_model, DESCRIPTOR(houses.sqft, bedrooms, age))

-- Too few descriptor columns.
-- expect: error 42804
SELECT * FROM ML_PREDICT(TABLE houses, MODEL my_import_model, DESCRIPTOR(sqft, bedrooms))

-- An unknown model is reported before argument problems.
-- expect: error 42704
SELECT * FROM ML_PREDICT(TABLE houses, MODEL no_such_model, DESCRIPTOR(nope))

-- A CONFIG value that is not a string literal.
-- expect: error 22023
SELECT * FROM ML_PREDICT(TABLE houses, MODEL my_import_model, DESCRIPTOR(sqft, bedrooms, age), MAP['async', true])

-- expect: ok
DROP MODEL `my_remote_model`

-- expect: ok
DROP MODEL my_import_model

-- Flink's catalogs are DuckDB's attached databases (each with its own model catalog);
-- Postgres reaches one database per connection, and has neither statement.
-- expect: error 42601
-- expect on duckdb: ok
ATTACH ':memory:' AS catalog1

-- expect: error 42601
-- expect on duckdb: ok
CREATE SCHEMA catalog1.db1

-- FlinkSqlParserModelTest: catalog1.db1.m1 wherever a model name goes. Postgres refuses
-- another database's name (cross-database references).
-- expect: error 0A000
-- expect on duckdb: ok
CREATE MODEL catalog1.db1.m1 INPUT (f1 DOUBLE, f2 DOUBLE, f3 DOUBLE) OUTPUT (label FLOAT) WITH ('type' = 'import', 'format' = 'ONNX', 'ONNX.path' = '${LINEAR}')

-- expect: error 0A000
-- expect on duckdb: rows 1
SHOW MODELS FROM catalog1.db1

-- expect: error 0A000
-- expect on duckdb: rows 1
SHOW MODELS IN catalog1.db1

-- expect: error 0A000
-- expect on duckdb: rows 4
DESCRIBE MODEL catalog1.db1.m1

-- The table in one database, the model in another.
-- expect: error 0A000
-- expect on duckdb: rows 20
SELECT * FROM TABLE(ML_PREDICT(TABLE houses, MODEL catalog1.db1.m1, DESCRIPTOR(sqft, bedrooms, age)))

-- expect: error 0A000
-- expect on duckdb: ok
ALTER MODEL catalog1.db1.m1 RENAME TO m2

-- expect: error 0A000
-- expect on duckdb: ok
DROP MODEL IF EXISTS catalog1.db1.m1

-- expect: error 0A000
-- expect on duckdb: ok
DROP MODEL catalog1.db1.m2

-- Four parts are one too many.
-- expect: error 42601
DROP MODEL cat.catalog1.db1.m1

-- A catalog that does not exist.
-- expect: error 0A000
-- expect on duckdb: error 3D000
DROP MODEL no_such_catalog.db1.m1
