-- The opening of the WITH list of the macros that label products
-- (top_products, product_features), which continue it after a comma:
--   label_counts  one scan of the events (product_id not NULL) grouped by
--                 (product, category_code, brand): a few rows per product,
--                 with their event counts and purchase revenue;
--   codes, brands per product, the most frequent non-'unknown' category_code
--                 and brand (ties broken alphabetically: min_by over
--                 (-count, value)); products without one have no row.
WITH label_counts AS MATERIALIZED (
  SELECT product_id, category_code, brand, count(*) AS n,
         count(*) FILTER (event_type = 'view') AS v,
         count(*) FILTER (event_type = 'cart') AS c,
         count(*) FILTER (event_type = 'purchase') AS p,
         sum(price) FILTER (event_type = 'purchase') AS rev
  FROM query_table(events) WHERE product_id IS NOT NULL
  GROUP BY product_id, category_code, brand),
codes AS (
  SELECT product_id, min_by(category_code, {'n': -n, 'v': category_code}) AS category_code
  FROM (SELECT product_id, category_code, sum(n) AS n FROM label_counts WHERE category_code <> 'unknown'
        GROUP BY product_id, category_code)
  GROUP BY product_id),
brands AS (
  SELECT product_id, min_by(brand, {'n': -n, 'v': brand}) AS brand
  FROM (SELECT product_id, brand, sum(n) AS n FROM label_counts WHERE brand <> 'unknown'
        GROUP BY product_id, brand)
  GROUP BY product_id)
