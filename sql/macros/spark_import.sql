-- The rows of ecoreco.als_import_spark, which ecoreco_spark_import_sql
-- completes (placeholders in braces become quoted string literals, or the
-- optional parts in spark_import_indexer.sql and spark_import_events.sql)
-- and feeds to the ecoreco_spark_import aggregate: every file and the
-- events become rows of one shape, which the aggregate checks and turns
-- into the model.
(
    -- The row shape, typed once; every part below fills in what it has.
    SELECT NULL::VARCHAR AS kind, NULL::VARCHAR AS file, NULL::VARCHAR AS text, NULL::BIGINT AS id,
        NULL::FLOAT[] AS features, NULL::BIGINT AS col, NULL::BIGINT AS user_id, NULL::BIGINT AS product_id,
        NULL::DOUBLE AS weight, NULL::BIGINT AS purchases, NULL::BIGINT AS interactions, NULL::BIGINT AS category_id
    WHERE false
    UNION ALL BY NAME
    SELECT 'metadata' AS kind, filename AS file, content AS text FROM read_text({metadata_glob})
    UNION ALL BY NAME
    SELECT 'user' AS kind, id::BIGINT AS id, features::FLOAT[] AS features FROM read_parquet({user_glob})
    UNION ALL BY NAME
    SELECT 'item' AS kind, id::BIGINT AS id, features::FLOAT[] AS features FROM read_parquet({item_glob})
    {indexer_rows}
    {event_rows}
) spark
