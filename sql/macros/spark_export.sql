-- ecoreco.als_export_spark(model, path): the model's factor rows, fed to the
-- ecoreco_spark_export aggregate, which writes the Spark ALSModel folder.
SELECT unnest(ecoreco_spark_export(path, current_setting('enable_external_access'),
    m.side::VARCHAR, m.id::BIGINT, m.factors::FLOAT[], m.model_id::BIGINT), recursive := true)
FROM query_table(model) m
WHERE m.side IN ('user', 'product')
