-- ecoreco.event_mix(events): one row per event_type, most frequent first.
SELECT event_type, count(*) AS events,
       count(*) / sum(count(*)) OVER () AS share,
       count(DISTINCT user_id) AS users
FROM query_table(events)
GROUP BY event_type
ORDER BY count(*) DESC, event_type
