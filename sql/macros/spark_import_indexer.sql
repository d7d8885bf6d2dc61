-- The indexer's part of ecoreco.als_import_spark: the metadata of every
-- stage (a StringIndexerModel alone, or a PipelineModel's stages/*/), and
-- one row per label: (data file, column in labelsArray, index, label).
UNION ALL BY NAME
SELECT 'indexer_metadata' AS kind, filename AS file, content AS text FROM read_text({indexer_metadata_glob})
UNION ALL BY NAME
SELECT 'label' AS kind, file, col, unnest(range(len(labels))) AS id, unnest(labels) AS text
FROM (
    SELECT filename AS file, unnest(range(len(labelsArray))) AS col, unnest(labelsArray) AS labels
    FROM read_parquet({indexer_data_glob}, filename := true, union_by_name := true)
)
