-- ecoreco.funnel(events): one row, the view -> cart -> purchase funnel by
-- user and by session. Two aggregations of the same table, per user and per
-- session (faster than one GROUPING SETS aggregation in DuckDB 1.5 and
-- 2.0), each reduced to one row.
WITH per_user AS (SELECT user_id, count(*) FILTER (event_type = 'view') AS v,
                         count(*) FILTER (event_type = 'cart') AS c,
                         count(*) FILTER (event_type = 'purchase') AS p
                  FROM query_table(events) GROUP BY user_id),
per_session AS (SELECT count(*) FILTER (event_type = 'cart') AS c,
                       count(*) FILTER (event_type = 'purchase') AS p
                FROM query_table(events) WHERE user_session IS NOT NULL GROUP BY user_session),
fu AS (SELECT coalesce(sum(v), 0)::BIGINT AS views, coalesce(sum(c), 0)::BIGINT AS carts,
              coalesce(sum(p), 0)::BIGINT AS purchases,
              count(*) FILTER (user_id IS NOT NULL AND v > 0) AS viewers,
              count(*) FILTER (user_id IS NOT NULL AND c > 0) AS carters,
              count(*) FILTER (user_id IS NOT NULL AND p > 0) AS buyers,
              count(*) FILTER (user_id IS NOT NULL AND v > 0 AND c > 0) AS viewers_carted,
              count(*) FILTER (user_id IS NOT NULL AND c > 0 AND p > 0) AS carters_bought,
              count(*) FILTER (user_id IS NOT NULL AND v > 0 AND p > 0) AS viewers_bought
       FROM per_user),
fs AS (SELECT count(*) AS sessions, count(*) FILTER (c > 0) AS cart_sessions,
              count(*) FILTER (c > 0 AND p = 0) AS cart_sessions_without_purchase,
              count(*) FILTER (p > 0) AS purchase_sessions,
              count(*) FILTER (p > 0 AND c = 0) AS purchase_sessions_without_cart
       FROM per_session)
SELECT fu.views, fu.carts, fu.purchases, fu.viewers, fu.carters, fu.buyers,
       ((fu.viewers_carted)::DOUBLE / nullif(fu.viewers, 0)) AS view_to_cart,
       ((fu.carters_bought)::DOUBLE / nullif(fu.carters, 0)) AS cart_to_purchase,
       ((fu.viewers_bought)::DOUBLE / nullif(fu.viewers, 0)) AS view_to_purchase,
       fs.sessions, fs.cart_sessions, fs.purchase_sessions,
       ((fs.cart_sessions_without_purchase)::DOUBLE / nullif(fs.cart_sessions, 0)) AS cart_abandonment,
       fs.purchase_sessions_without_cart,
       ((fs.purchase_sessions_without_cart)::DOUBLE / nullif(fs.purchase_sessions, 0)) AS purchase_sessions_without_cart_share
FROM fu, fs
