-- ecoreco.session_stats(events): one row describing the sessions (non-NULL
-- user_session values): length, duration, share with a purchase.
SELECT x.sessions, x.n_mean AS events_per_session_mean, x.n_std AS events_per_session_std,
       x.n_min AS events_per_session_min, x.n_q[1] AS events_per_session_p25,
       x.n_q[2] AS events_per_session_median, x.n_q[3] AS events_per_session_p75,
       x.n_max AS events_per_session_max, x.duration_mean_s, x.duration_median_s,
       x.purchase_session_share
FROM (SELECT count(*) AS sessions, avg(s.n) AS n_mean, stddev_samp(s.n) AS n_std,
             min(s.n) AS n_min, max(s.n) AS n_max, quantile_cont(s.n, [0.25, 0.5, 0.75]) AS n_q,
             avg(s.duration) AS duration_mean_s, quantile_cont(s.duration, 0.5) AS duration_median_s,
             ((count(*) FILTER (s.bought))::DOUBLE / nullif(count(*), 0)) AS purchase_session_share
      FROM (SELECT count(*) AS n, epoch(max(event_time) - min(event_time)) AS duration,
                   bool_or(event_type = 'purchase') AS bought
            FROM query_table(events) WHERE user_session IS NOT NULL GROUP BY user_session) s) x
