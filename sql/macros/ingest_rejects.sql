-- rejects(): one row per rejected line of the most recent read of each file
-- in this connection. The TEMP tables are parameters (errors_table,
-- scans_table) because a macro body is bound when created, and these tables
-- only exist once a read has run.
WITH scans AS (FROM query_table(scans_table)),
     latest AS (SELECT file_path, max(scan_id) AS scan_id FROM scans GROUP BY file_path)
SELECT s.file_path AS file, e.line, min(e.byte_position) AS byte_position,
       string_agg(DISTINCT e.error_type::VARCHAR, '; ' ORDER BY e.error_type::VARCHAR) AS error_type,
       first(e.error_message ORDER BY e.column_idx) AS reason, first(e.csv_line) AS csv_line, e.scan_id
FROM query_table(errors_table) e
JOIN scans s ON e.scan_id = s.scan_id AND e.file_id = s.file_id
JOIN latest l ON l.file_path = s.file_path AND l.scan_id = s.scan_id
GROUP BY s.file_path, e.scan_id, e.line ORDER BY file, e.line
