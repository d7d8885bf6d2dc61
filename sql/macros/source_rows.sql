-- The rows of any interaction source as (user_id, product_id, w, bought, n,
-- category_id, t, wanted, brand, price, session_key), shared by ecoreco.als_train and
-- ecoreco.evaluate_recommendations. The source is either an events table
-- (it has an event_type column: view / cart / purchase weigh `view` / `cart`
-- / `purchase`, other types are ignored) or any other table of
-- (user_col, item_col[, weight_col][, time_col]) rows, such as the output of
-- ecoreco.interactions or a ratings table (a row weighs its weight_col, or 1
-- when the table has no such column). Columns a source lacks are added as
-- NULLs of type BOOLEAN, so `typeof` tells, while DuckDB plans the query,
-- which columns the source really has. t is the row's time in seconds
-- (time_col, else event_time, else last_event); wanted says whether the row
-- can be a target (a cart or purchase; for other sources every row, unless
-- they count carts and purchases). session_key is a 63-bit hash of the row's
-- user_session (of its user when the source has no such column): the
-- sessions of the item-to-item signal.
ecoreco_raw AS (
  FROM (SELECT NULL::BOOLEAN AS event_type, NULL::BOOLEAN AS weight, NULL::BOOLEAN AS purchases,
               NULL::BOOLEAN AS carts, NULL::BOOLEAN AS interactions, NULL::BOOLEAN AS category_id,
               NULL::TIMESTAMP AS event_time, NULL::TIMESTAMP AS last_event,
               NULL::BOOLEAN AS brand, NULL::BOOLEAN AS price, NULL::BOOLEAN AS user_session
        WHERE false)
  UNION ALL BY NAME FROM query_table(events)),
ecoreco_typed AS (
  SELECT r AS ecoreco_row, typeof(r.event_type) <> 'BOOLEAN' AS is_events,
         typeof(struct_extract(r, weight_col)) <> 'BOOLEAN' AS has_weight,
         typeof(r.carts) <> 'BOOLEAN' AS has_counts,
         CASE WHEN typeof(r.user_session) <> 'BOOLEAN' THEN r.user_session::VARCHAR
              ELSE struct_extract(r, user_col)::VARCHAR END AS ecoreco_session
  FROM ecoreco_raw r),
ecoreco_rows AS (
  SELECT * FROM (
    SELECT
      struct_extract(ecoreco_row, user_col)::BIGINT AS user_id,
      struct_extract(ecoreco_row, item_col)::BIGINT AS product_id,
      CASE WHEN is_events THEN
             CASE ecoreco_row.event_type::VARCHAR WHEN 'view' THEN view WHEN 'cart' THEN cart WHEN 'purchase' THEN purchase END
           WHEN NOT has_weight THEN 1.0
           WHEN struct_extract(ecoreco_row, weight_col) IS NULL THEN
             error('ecoreco.' || ecoreco_function || ': the ' || weight_col || ' of user ' || struct_extract(ecoreco_row, user_col)::VARCHAR
                   || ' and product ' || struct_extract(ecoreco_row, item_col)::VARCHAR
                   || ' is NULL; pass a table without NULL weights, or name another column with weight_col := ''...''')
           WHEN struct_extract(ecoreco_row, weight_col)::DOUBLE < 0 THEN
             error('ecoreco.' || ecoreco_function || ': the ' || weight_col || ' of user ' || struct_extract(ecoreco_row, user_col)::VARCHAR
                   || ' and product ' || struct_extract(ecoreco_row, item_col)::VARCHAR || ' is '
                   || struct_extract(ecoreco_row, weight_col)::VARCHAR || '; pass weights >= 0')
           ELSE struct_extract(ecoreco_row, weight_col)::DOUBLE
      END AS w,
      CASE WHEN is_events THEN (ecoreco_row.event_type::VARCHAR = 'purchase')::BIGINT
           ELSE coalesce(ecoreco_row.purchases::BIGINT, 0) END AS bought,
      CASE WHEN is_events THEN 1 ELSE coalesce(ecoreco_row.interactions::BIGINT, 1) END AS n,
      ecoreco_row.category_id::BIGINT AS category_id,
      CASE WHEN time_col IS NOT NULL THEN
             coalesce(epoch(try_cast(struct_extract(ecoreco_row, coalesce(time_col, 'event_time'))::VARCHAR AS TIMESTAMP)),
                      try_cast(struct_extract(ecoreco_row, coalesce(time_col, 'event_time'))::VARCHAR AS DOUBLE))
           ELSE epoch(coalesce(ecoreco_row.event_time, ecoreco_row.last_event)) END AS t,
      CASE WHEN is_events THEN ecoreco_row.event_type::VARCHAR IN ('cart', 'purchase')
           WHEN has_counts THEN coalesce(ecoreco_row.carts::BIGINT, 0) + coalesce(ecoreco_row.purchases::BIGINT, 0) > 0
           ELSE true END AS wanted,
      is_events,
      -- clean_events writes 'unknown' for a missing brand: no brand.
      nullif(ecoreco_row.brand::VARCHAR, 'unknown') AS brand,
      try_cast(ecoreco_row.price AS DOUBLE) AS price,
      CASE WHEN ecoreco_session IS NOT NULL THEN (hash(ecoreco_session) & 9223372036854775807)::BIGINT END AS session_key
    FROM ecoreco_typed)
  WHERE user_id IS NOT NULL AND product_id IS NOT NULL AND w IS NOT NULL)
