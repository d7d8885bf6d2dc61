-- A replay's window rows as InfluxDB line protocol, the same two points per
-- window that the replay writes while it runs (`influx :=`), at the window's
-- start, in window order.
SELECT line FROM (
    SELECT window_start, 1 AS part,
           ecoreco_influx_line('ecoreco_events', to_json({'model': model, 'run': run}),
               to_json({'events': events, 'late_events': late_events, 'ignored_events': ignored_events,
                        'active_users': active_users, 'new_users': new_users, 'unknown_users': unknown_users}),
               epoch_ns(window_start)) AS line
    FROM query_table(windows)
    UNION ALL
    SELECT window_start, 2,
           ecoreco_influx_line('ecoreco_recommendations', to_json({'model': model, 'run': run}),
               to_json({'recommendations': recommendations, 'fallback_share': fallback_share,
                        'processing_ms': processing_ms, 'events_per_s': events_per_s,
                        'p50_ms': p50_ms, 'p95_ms': p95_ms, 'p99_ms': p99_ms}),
               epoch_ns(window_start))
    FROM query_table(windows)
)
WHERE line IS NOT NULL
ORDER BY window_start, part
