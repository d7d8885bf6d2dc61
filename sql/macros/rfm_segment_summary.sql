-- ecoreco.rfm_segment_summary(users): one row per RFM segment name, all ten
-- in the order of the rules (Champions first, Lost last), empty ones with 0
-- users. Preceded by "WITH seg AS (<the rfm_segments query>)".
, names(rule, segment) AS (VALUES
    (1, 'Champions'), (2, 'Loyal'), (3, 'Potential loyalists'), (4, 'New'), (5, 'Promising'),
    (6, 'Need attention'), (7, 'Cannot lose them'), (8, 'At risk'), (9, 'Hibernating'), (10, 'Lost')),
per AS (
  SELECT segment, count(*) AS users, coalesce(sum(monetary), 0) AS revenue,
         avg(recency) AS avg_recency, avg(frequency) AS avg_frequency, avg(monetary) AS avg_monetary
  FROM seg GROUP BY segment),
total AS (SELECT count(*) AS users, coalesce(sum(monetary), 0) AS revenue FROM seg)
SELECT n.segment,
       coalesce(p.users, 0)::BIGINT AS users,
       coalesce(p.users, 0) / nullif(t.users, 0) AS share,
       coalesce(p.revenue, 0)::DOUBLE AS revenue,
       coalesce(p.revenue, 0) / nullif(t.revenue, 0) AS revenue_share,
       p.avg_recency, p.avg_frequency, p.avg_monetary
FROM names n CROSS JOIN total t LEFT JOIN per p USING (segment)
ORDER BY n.rule
