-- clean_events: 'unknown' for empty, NULL, blank or 'NaN' text (pandas wrote
-- NaN for empties). Cheap tests first: only short values are trimmed and
-- lower-cased, which matters at millions of rows.
CASE WHEN {column} IS NULL OR {column} = '' OR (length({column}) <= 5 AND
          (trim({column}) = '' OR lower(trim({column})) = 'nan'))
     THEN 'unknown' ELSE {column} END AS {column}
