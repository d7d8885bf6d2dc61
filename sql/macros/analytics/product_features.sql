-- ecoreco.product_features(events), continuing the WITH list of
-- product_labels.sql (label_counts, codes, brands): one row per product
-- (product_id not NULL), in product_id order.
p AS (
  SELECT product_id, count(*) FILTER (event_type = 'view') AS views,
         count(*) FILTER (event_type = 'cart') AS carts,
         count(*) FILTER (event_type = 'purchase') AS purchases,
         count(DISTINCT user_id) AS unique_users, avg(price) AS avg_price,
         coalesce(sum(price) FILTER (event_type = 'purchase'), 0.0) AS revenue
  FROM query_table(events) WHERE product_id IS NOT NULL GROUP BY product_id)
SELECT p.product_id, split_part(coalesce(codes.category_code, 'unknown'), '.', 1) AS category,
       coalesce(codes.category_code, 'unknown') AS category_code, coalesce(brands.brand, 'unknown') AS brand,
       p.views, p.carts, p.purchases, p.unique_users, p.avg_price, p.revenue,
       ((p.purchases * 3 + p.carts * 2 + p.views)::DOUBLE / nullif(p.unique_users, 0)) AS popularity
FROM p LEFT JOIN codes ON codes.product_id = p.product_id
LEFT JOIN brands ON brands.product_id = p.product_id
ORDER BY p.product_id
