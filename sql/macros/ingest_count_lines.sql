-- count_lines(path): data lines in the files (headers excluded), the "rows
-- in" of the accounting rows in = kept + rejected.
SELECT filename AS file, count(*) - 1 AS data_lines FROM read_text(path),
       LATERAL (SELECT unnest(string_split(rtrim(replace(content, chr(13), ''), chr(10)), chr(10))))
GROUP BY filename ORDER BY filename
