-- modelsql quickstart: in-memory DuckDB, a model the project ships, no network, no keys.
-- Run with: npm run quickstart   (or: modelsql run -f examples/quickstart.sql)

-- 1. Some data.
CREATE TABLE houses AS
SELECT i AS id,
       800 + (i * 37) % 2200        AS sqft,
       1 + i % 5                    AS bedrooms,
       (i * 7) % 60                 AS age,
       -- what the houses sold for: the model's formula plus some noise
       150.0 * (800 + (i * 37) % 2200) + 10000 * (1 + i % 5) - 1000 * ((i * 7) % 60) + 50000
         + ((i * 7919) % 2001 - 1000) * 5.0 AS sold_price
FROM range(1000) t(i);

-- 2. Import an ONNX model (Flink's FLIP-437 syntax).
CREATE MODEL house_price
  INPUT (sqft DOUBLE, bedrooms DOUBLE, age DOUBLE)
  OUTPUT (price DOUBLE)
  COMMENT 'price = 150*sqft + 10000*bedrooms - 1000*age + 50000'
  WITH ('provider' = 'onnx', 'path' = 'examples/models/house_price.onnx', 'task' = 'regression');

SHOW MODELS;
DESCRIBE MODEL house_price;

-- 3. Predict: every input column, then the model's OUTPUT columns.
SELECT id, sqft, bedrooms, age, round(price) AS price
FROM ML_PREDICT(TABLE houses, MODEL house_price, DESCRIPTOR(sqft, bedrooms, age))
ORDER BY id
LIMIT 5;

-- ML_PREDICT is a table like any other: aggregate, join, filter around it.
SELECT bedrooms, count(*) AS houses, round(avg(price)) AS avg_predicted, round(avg(sold_price)) AS avg_sold
FROM ML_PREDICT(TABLE houses, MODEL house_price, DESCRIPTOR(sqft, bedrooms, age))
GROUP BY bedrooms
ORDER BY bedrooms;

-- 4. Evaluate against what the houses sold for.
SELECT round(MAE, 2) AS mae, round(RMSE, 2) AS rmse, round(R2, 4) AS r2
FROM ML_EVALUATE(TABLE houses, MODEL house_price, DESCRIPTOR(sold_price), DESCRIPTOR(sqft, bedrooms, age));

-- 5. A classifier with class probabilities (ONNX-ML LinearClassifier).
CREATE TABLE flowers AS
SELECT * FROM (VALUES
  (5.1, 3.5, 1.4, 0.2, 0), (4.9, 3.0, 1.4, 0.2, 0), (6.0, 2.9, 4.5, 1.5, 1),
  (5.7, 2.8, 4.1, 1.3, 1), (6.3, 3.3, 6.0, 2.5, 2), (6.5, 3.0, 5.8, 2.2, 2)
) v(sepal_length, sepal_width, petal_length, petal_width, species);

CREATE MODEL iris
  INPUT (sepal_length DOUBLE, sepal_width DOUBLE, petal_length DOUBLE, petal_width DOUBLE)
  OUTPUT (label BIGINT, probabilities ARRAY<FLOAT>)
  WITH ('type' = 'import', 'format' = 'ONNX', 'ONNX.path' = 'examples/models/iris_classifier.onnx', 'task' = 'classification');

SELECT species, label, list_transform(probabilities, p -> round(CAST(p AS DOUBLE), 3)) AS probabilities
FROM ML_PREDICT(TABLE flowers, MODEL iris, DESCRIPTOR(sepal_length, sepal_width, petal_length, petal_width));

SELECT Accuracy, F1, round(LogLoss, 4) AS log_loss, AUC
FROM ML_EVALUATE(TABLE flowers, MODEL iris, DESCRIPTOR(species), DESCRIPTOR(sepal_length, sepal_width, petal_length, petal_width));
