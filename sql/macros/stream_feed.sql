-- The rows a replay aggregate reads: the caller's events in arrival order
-- (numbered by the `arrival` column when given, else by input order, which
-- DuckDB keeps for tables and for read_events over files), then the model's
-- rows (only its `param` rows when the model is already cached).
SELECT row_number() OVER (ORDER BY COLUMNS(lambda c: c = coalesce(arrival, '__ecoreco_row')), __ecoreco_row) AS ordinal,
       epoch_us(event_time) AS time_us, event_type::VARCHAR AS event_type, product_id::BIGINT AS product_id,
       category_id::BIGINT AS category_id, user_id::BIGINT AS user_id,
       NULL::VARCHAR AS side, NULL::BIGINT AS id, NULL::BIGINT AS item, NULL::VARCHAR AS name,
       NULL::DOUBLE AS value, NULL::FLOAT[] AS factors, NULL::BIGINT AS model_id
FROM (SELECT *, row_number() OVER () AS __ecoreco_row FROM query_table(events))
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL,
       m.side::VARCHAR, m.id::BIGINT, m.item::BIGINT, m.name::VARCHAR, m.value::DOUBLE, m.factors::FLOAT[], m.model_id::BIGINT
FROM query_table(model) m
WHERE m.side = 'param' OR NOT ecoreco_model_ready(model)
UNION ALL
-- The serving rules' tables, as include/exclude rows (none without rules).
SELECT NULL, NULL, NULL, NULL, NULL, NULL,
       r.side::VARCHAR, r.id::BIGINT, NULL, NULL, NULL, NULL, NULL
FROM query(ecoreco_rule_rows_sql('ecoreco.replay', include, exclude)) r
