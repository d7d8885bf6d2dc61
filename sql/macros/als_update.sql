-- ecoreco.als_update's body. Filled in: when the model's data ends (epoch
-- seconds), the sides of a user's rows, and the aggregate's rows (written): the new model_id and params (seq 0, 1, ...) and every
-- row of the users with new events and of the new products. Only those
-- users' histories and rows reach the aggregate (every user's factors too
-- when some event after `since` names a product the model lacks: a new
-- product's half-step needs them all); the other rows of the old model are copied
-- here under the new model_id, keeping their seq, the written rows after
-- them. The events that lack a user, product or time reach the aggregate
-- too, which says so.
-- (Each table is read at the top of a CTE of its own, never under the
-- other's alias, whose columns could shadow the table's name.)
WITH ecoreco_since AS MATERIALIZED (SELECT {since} AS since_s),
ecoreco_changed AS MATERIALIZED (
  SELECT DISTINCT e.user_id::BIGINT AS user_id FROM query_table(events) e
  WHERE epoch(e.event_time)::DOUBLE > (SELECT since_s FROM ecoreco_since)
    AND e.event_type::VARCHAR IN ('view', 'cart', 'purchase') AND e.user_id IS NOT NULL),
ecoreco_products AS MATERIALIZED (
  SELECT m.id::BIGINT AS id FROM query_table(model) m WHERE m.side = 'product'),
ecoreco_any_new AS MATERIALIZED (
  SELECT EXISTS (FROM query_table(events) e WHERE epoch(e.event_time)::DOUBLE > (SELECT since_s FROM ecoreco_since)
                 AND e.product_id::BIGINT NOT IN (SELECT id FROM ecoreco_products)) AS any_new),
ecoreco_last_seq AS MATERIALIZED (SELECT max(m.seq)::BIGINT AS last_seq FROM query_table(model) m),
ecoreco_events AS (
  SELECT e.user_id::BIGINT AS user_id, e.product_id::BIGINT AS product_id, e.category_id::BIGINT AS category_id,
         e.event_type::VARCHAR AS event_type, epoch(e.event_time)::DOUBLE AS time_s,
         -- Brand and price as training reads them, for the products to add.
         CASE WHEN p.id IS NULL THEN nullif(e.brand::VARCHAR, 'unknown') END AS brand,
         CASE WHEN p.id IS NULL THEN try_cast(e.price AS DOUBLE) END AS price
  -- The changed users' events first, then the products' join: on those
  -- only, not on every event.
  FROM (FROM (FROM (SELECT NULL::BOOLEAN AS brand, NULL::BOOLEAN AS price WHERE false)
              UNION ALL BY NAME FROM query_table(events)) e
        WHERE e.user_id::BIGINT IN (SELECT user_id FROM ecoreco_changed)
           OR e.user_id IS NULL OR e.product_id IS NULL OR e.event_time IS NULL) e
  LEFT JOIN ecoreco_products p ON p.id = e.product_id::BIGINT),
ecoreco_feed AS (
  SELECT user_id, product_id, category_id, event_type, time_s, brand, time_s AS brand_time, price, time_s AS price_time,
         NULL::VARCHAR AS side, NULL::BIGINT AS id, NULL::BIGINT AS item, NULL::VARCHAR AS name,
         NULL::DOUBLE AS value, NULL::FLOAT[] AS factors, NULL::BIGINT AS model_id
  FROM ecoreco_events
  UNION ALL
  SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, m.side, m.id, m.item, m.name, m.value, m.factors, m.model_id
  FROM query_table(model) m
  WHERE m.side IN ('param', 'product', 'product_users')
     OR (m.side IN {user_sides} AND m.id IN (SELECT user_id FROM ecoreco_changed))
     OR (m.side = 'user' AND (SELECT any_new FROM ecoreco_any_new))),
ecoreco_written AS MATERIALIZED ({written})
SELECT CASE WHEN w.seq = 0 THEN 0 ELSE w.seq + (SELECT last_seq FROM ecoreco_last_seq) END AS seq,
       w.model_id, w.side, w.id, w.item, w.name, w.value, w.factors
FROM ecoreco_written w
UNION ALL
-- Every other row of the old model, in one scan: a user's rows unless the
-- update wrote that user, a param unless it wrote that name.
SELECT m.seq::BIGINT, (SELECT w.model_id FROM ecoreco_written w WHERE w.seq = 0), m.side::VARCHAR, m.id::BIGINT,
       m.item::BIGINT, m.name::VARCHAR, m.value::DOUBLE, m.factors::FLOAT[]
FROM query_table(model) m
WHERE CASE WHEN m.side IN {user_sides}
             THEN NOT coalesce(m.id::BIGINT IN (SELECT w.id FROM ecoreco_written w WHERE w.side = 'user'), false)
           WHEN m.side = 'param'
             THEN NOT coalesce(m.name::VARCHAR IN (SELECT w.name FROM ecoreco_written w WHERE w.side = 'param'), false)
           ELSE true END
