-- ecoreco.price_stats(events): price distribution per event_type.
SELECT s.event_type, s.n_rows AS "rows", s.priced, s.mean, s.std, s.min_price AS "min",
       s.q[1] AS p25, s.q[2] AS median, s.q[3] AS p75, s.max_price AS "max"
FROM (SELECT event_type, count(*) AS n_rows, count(price) AS priced, avg(price) AS mean,
             stddev_samp(price) AS std, min(price) AS min_price, max(price) AS max_price,
             quantile_cont(price, [0.25, 0.5, 0.75]) AS q
      FROM query_table(events) GROUP BY event_type) s
ORDER BY s.n_rows DESC, s.event_type
