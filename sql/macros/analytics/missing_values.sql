-- ecoreco.missing_values(events): per raw column in file order, the rows
-- whose value is missing after cleaning ('unknown' counts as missing for
-- category_code and brand), in one scan.
SELECT c.names[i.i] AS column_name, c.missing[i.i] AS missing,
       100.0 * ((c.missing[i.i])::DOUBLE / nullif(c.n_rows, 0)) AS missing_pct
FROM (SELECT count(*) AS n_rows,
             ['event_time', 'event_type', 'product_id', 'category_id', 'category_code',
              'brand', 'price', 'user_id', 'user_session'] AS names,
             [count(*) - count(event_time),
              count(*) - count(event_type),
              count(*) - count(product_id),
              count(*) - count(category_id),
              count(*) FILTER (category_code IS NULL OR category_code = 'unknown'),
              count(*) FILTER (brand IS NULL OR brand = 'unknown'),
              count(*) - count(price),
              count(*) - count(user_id),
              count(*) - count(user_session)] AS missing
      FROM query_table(events)) c,
     range(1, 10) AS i(i)
ORDER BY i.i
