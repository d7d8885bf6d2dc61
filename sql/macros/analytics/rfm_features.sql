-- ecoreco.rfm_features(events): exactly one row per user (user_id not
-- NULL), in user_id order: recency, frequency, monetary and behaviour.
WITH u AS (
  SELECT user_id, min(event_time) AS first_seen, max(event_time) AS last_seen,
         count(DISTINCT date) AS frequency,
         coalesce(sum(price) FILTER (event_type = 'purchase'), 0.0) AS monetary, count(*) AS total_events,
         count(*) FILTER (event_type = 'view') AS views,
         count(*) FILTER (event_type = 'cart') AS carts,
         count(*) FILTER (event_type = 'purchase') AS purchases,
         count(DISTINCT product_id) AS unique_products, count(DISTINCT category_id) AS unique_categories,
         count(DISTINCT brand) FILTER (brand <> 'unknown') AS unique_brands,
         avg(price) AS avg_price, count(DISTINCT user_session) AS sessions
  FROM query_table(events) WHERE user_id IS NOT NULL GROUP BY user_id),
cats AS (
  -- The most frequent top-level category, ties broken alphabetically.
  SELECT user_id, min_by(cat, {'n': -n, 'v': cat}) AS top_category
  FROM (SELECT user_id, split_part(category_code, '.', 1) AS cat, count(*) AS n FROM query_table(events)
        WHERE user_id IS NOT NULL AND category_code <> 'unknown' GROUP BY user_id, cat)
  GROUP BY user_id),
horizon AS (SELECT max(event_time) AS max_time FROM query_table(events))
SELECT u.user_id, epoch(horizon.max_time - u.last_seen) / 86400.0 AS recency,
       u.frequency, u.monetary, u.total_events, u.views, u.carts, u.purchases,
       coalesce(((u.purchases)::DOUBLE / nullif(u.views, 0)), 0.0) AS conversion_rate,
       CASE WHEN u.carts > 0 THEN greatest(0.0, least(1.0, (u.carts - u.purchases) / u.carts::DOUBLE))
         ELSE 0.0 END AS cart_abandonment,
       u.unique_products, u.unique_categories, u.unique_brands,
       coalesce(u.avg_price, 0.0) AS avg_price, u.sessions, u.first_seen, u.last_seen,
       coalesce(cats.top_category, 'unknown') AS top_category
FROM u CROSS JOIN horizon LEFT JOIN cats ON cats.user_id = u.user_id
ORDER BY u.user_id
