-- read_events' source: DuckDB's CSV reader (parallel, typed, glob- and
-- gzip-aware) with the explicit REES46 schema; category_id reaches 2.2e18,
-- which BIGINT holds. Every line it cannot parse is recorded in the caller's
-- TEMP tables ecoreco_reject_errors / ecoreco_reject_scans (store_rejects).
-- The path is checked first ({checked_path}, ingest_checked_path.sql).
read_csv({checked_path}, header = true, auto_detect = false, delim = ',', quote = '"', escape = '"',
         columns = {'event_time': 'TIMESTAMP', 'event_type': 'VARCHAR', 'product_id': 'BIGINT',
                    'category_id': 'BIGINT', 'category_code': 'VARCHAR', 'brand': 'VARCHAR',
                    'price': 'DOUBLE', 'user_id': 'BIGINT', 'user_session': 'VARCHAR'},
         timestampformat = '%Y-%m-%d %H:%M:%S UTC', nullstr = ['', 'NaN', 'nan'], store_rejects = true,
         rejects_table = 'ecoreco_reject_errors', rejects_scan = 'ecoreco_reject_scans')
