-- ecoreco.top_products(events, "by" := 'views', k := 10), continuing the
-- WITH list of product_labels.sql (label_counts, codes, brands). The guard
-- in the FROM list checks `by`, then `k`, while the query is bound, so a bad
-- value is an error even on an empty table.
totals AS (
  SELECT product_id, sum(v)::BIGINT AS views, sum(c)::BIGINT AS carts, sum(p)::BIGINT AS purchases,
         coalesce(sum(rev), 0.0) AS revenue
  FROM label_counts GROUP BY product_id),
prod AS (
  SELECT t.product_id, coalesce(codes.category_code, 'unknown') AS category_code,
         coalesce(brands.brand, 'unknown') AS brand, t.views, t.carts, t.purchases, t.revenue
  FROM totals t LEFT JOIN codes ON codes.product_id = t.product_id
  LEFT JOIN brands ON brands.product_id = t.product_id),
ranked AS (
  SELECT *, rank() OVER (ORDER BY views DESC) AS views_rank,
         rank() OVER (ORDER BY purchases DESC) AS purchases_rank,
         CASE lower("by"::VARCHAR) WHEN 'views' THEN views WHEN 'carts' THEN carts
           WHEN 'purchases' THEN purchases WHEN 'revenue' THEN revenue END AS sort_key
  FROM prod),
best AS (SELECT * FROM ranked ORDER BY sort_key DESC, product_id LIMIT greatest(k::BIGINT, 0))
SELECT product_id, category_code, brand, views, carts, purchases, revenue,
       coalesce(((purchases)::DOUBLE / nullif(views, 0)), 0.0) AS view_to_purchase,
       row_number() OVER (ORDER BY sort_key DESC, product_id) AS rank,
       views_rank, purchases_rank, views_rank - purchases_rank AS gap
FROM best,
     range(CASE WHEN (lower("by"::VARCHAR) IN ('views', 'carts', 'purchases', 'revenue')) IS NOT TRUE
                THEN error('ecoreco.top_products: parameter `by` is ' || coalesce('''' || "by"::VARCHAR || '''', 'NULL')
                           || ', pass one of ''views'', ''carts'', ''purchases'', ''revenue''')
                WHEN (k IS NOT NULL AND k::DOUBLE >= 1 AND k::DOUBLE = floor(k::DOUBLE)) IS NOT TRUE
                THEN error('ecoreco.top_products: parameter `k` is ' || coalesce(k::VARCHAR, 'NULL')
                           || ', pass a positive integer, e.g. k := 10')
                ELSE 1 END) AS ecoreco_guard(ok)
ORDER BY rank
