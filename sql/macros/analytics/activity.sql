-- ecoreco.activity(events, "by" := 'hour'): activity per time bucket.
--
-- The grouping key is an INTEGER whatever `by` is (dates as days since
-- 1970-01-01): the CASE on a constant folds away before execution, and
-- formatting happens on the few result rows. The guard in the FROM list
-- checks `by` while the query is bound, so a bad value is an error even on
-- an empty table.
SELECT CASE lower("by"::VARCHAR)
         WHEN 'date' THEN (DATE '1970-01-01' + a.bucket_key)::VARCHAR
         WHEN 'hour_bucket' THEN (TIMESTAMP '1970-01-01' + to_hours(a.bucket_key))::VARCHAR
         WHEN 'dayofweek' THEN a.bucket_key::VARCHAR
         ELSE lpad(a.bucket_key::VARCHAR, 2, '0') END AS bucket,
       a.n_events AS events, a.n_users AS users, a.n_sessions AS sessions,
       a.n_views AS views, a.n_carts AS carts, a.n_purchases AS purchases, a.revenue
FROM (SELECT CASE lower("by"::VARCHAR) WHEN 'hour' THEN hour WHEN 'day' THEN day
               WHEN 'dayofweek' THEN dayofweek WHEN 'date' THEN (date - DATE '1970-01-01')::INTEGER
               WHEN 'hour_bucket' THEN date_diff('hour', TIMESTAMP '1970-01-01', hour_bucket)::INTEGER
               ELSE error('ecoreco.activity: parameter `by` is ' || coalesce('''' || "by"::VARCHAR || '''', 'NULL')
                          || ', pass one of ''hour'', ''day'', ''dayofweek'', ''date'', ''hour_bucket''') END AS bucket_key,
             count(*) AS n_events, count(DISTINCT user_id) AS n_users,
             count(DISTINCT user_session) AS n_sessions,
             count(*) FILTER (event_type = 'view') AS n_views,
             count(*) FILTER (event_type = 'cart') AS n_carts,
             count(*) FILTER (event_type = 'purchase') AS n_purchases,
             coalesce(sum(price) FILTER (event_type = 'purchase'), 0.0) AS revenue
      FROM query_table(events) GROUP BY bucket_key) a,
     range(CASE WHEN (lower("by"::VARCHAR) IN ('hour', 'day', 'dayofweek', 'date', 'hour_bucket')) IS NOT TRUE
                THEN error('ecoreco.activity: parameter `by` is ' || coalesce('''' || "by"::VARCHAR || '''', 'NULL')
                           || ', pass one of ''hour'', ''day'', ''dayofweek'', ''date'', ''hour_bucket''')
                ELSE 1 END) AS ecoreco_guard(ok)
ORDER BY a.bucket_key NULLS LAST
