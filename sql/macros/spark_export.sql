-- What ecoreco.als_export_spark(model, path) feeds to the
-- ecoreco_spark_export aggregate: the model's factor rows.
query_table(model) m WHERE m.side IN ('user', 'product')
