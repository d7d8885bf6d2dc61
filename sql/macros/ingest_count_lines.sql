-- count_lines(path): data lines in the files (headers excluded), the "rows
-- in" of the accounting rows in = kept + rejected. glob lists the files;
-- ecoreco_count_data_lines reads each in blocks, so memory stays constant
-- whatever a file's size (reading a file as one value, as read_text does,
-- holds it whole). A path that matches no file is an error, as in read_events.
WITH files AS (SELECT file FROM glob({checked_path}))
SELECT file, ecoreco_count_data_lines(file, current_setting('enable_external_access')) AS data_lines
FROM files
UNION ALL
SELECT error('ecoreco.count_lines: path ''' || path::VARCHAR || ''' matches no file')::VARCHAR, NULL::BIGINT
WHERE NOT EXISTS (FROM files)
ORDER BY file
