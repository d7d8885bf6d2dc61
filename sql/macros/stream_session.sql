-- One anonymous session: its events as two lists, the model's rows (only
-- the `param` rows when the model is cached). Event types become codes
-- (1 view, 2 cart, 3 purchase, 0 other; NULL stays NULL and is refused).
SELECT unnest(ecoreco_recommend_session(model, ecoreco_model_ready(model), k, blend, view, cart, purchase, cap,
           product_ids::BIGINT[],
           list_transform(event_types::VARCHAR[], lambda t: CASE WHEN t IS NULL THEN NULL WHEN lower(t) = 'view' THEN 1
                                                                 WHEN lower(t) = 'cart' THEN 2 WHEN lower(t) = 'purchase' THEN 3 ELSE 0 END)::BIGINT[],
           m.side::VARCHAR, m.id::BIGINT, m.item::BIGINT, m.name::VARCHAR, m.value::DOUBLE, m.factors::FLOAT[], m.model_id::BIGINT),
       recursive := true)
FROM query_table(model) m
WHERE m.side = 'param' OR NOT ecoreco_model_ready(model)
