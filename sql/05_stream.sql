-- 8. Real time: the last fifth of the time span replayed event by event against
-- the pipeline's model (section 5's, with the confidence, recency decay,
-- alpha, regularization and blend its search chose), in event-time order
-- (arrival := 'event_time'), as fast as possible; every event updates its
-- user's state and fold-in (the same weighting as training) and refreshes
-- their top-10 (ecoreco.replay).
.print '== 8. Real time: replay of the last fifth of the time span, a fresh top-10 after every event (ecoreco.replay) =='
SET VARIABLE stream_start = (SELECT make_timestamp((epoch_us(min(event_time)) + 0.8 * (epoch_us(max(event_time)) - epoch_us(min(event_time))))::BIGINT) FROM events);
CREATE OR REPLACE VIEW recent AS FROM events WHERE event_time >= getvariable('stream_start');
CREATE OR REPLACE TABLE stream_windows AS FROM ecoreco.replay(recent, model := 'model', arrival := 'event_time', k := 10);
SELECT count(*) AS windows, sum(events)::BIGINT AS events, sum(late_events)::BIGINT AS late, sum(new_users)::BIGINT AS users,
       sum(unknown_users)::BIGINT AS unknown_to_model, sum(recommendations)::BIGINT AS lists,
       round(sum(fallback_share * recommendations) / sum(recommendations), 4) AS fallback_share,
       round(max(p99_ms), 3) AS worst_window_p99_ms, round(quantile_cont(p50_ms, 0.5), 4) AS median_p50_ms
FROM stream_windows;
.print 'The busiest windows:'
SELECT window_start, events, active_users, recommendations, round(fallback_share, 3) AS fallback_share,
       round(events_per_s)::BIGINT AS events_per_s, round(p50_ms, 4) AS p50_ms, round(p99_ms, 4) AS p99_ms
FROM stream_windows ORDER BY events DESC, window_start LIMIT 5;
.print 'InfluxDB line protocol of the first window (ecoreco.influx_lines; make stream-demo sends them to a server):'
SELECT line FROM ecoreco.influx_lines(stream_windows, model := 'model') LIMIT 2;
.print 'An anonymous session of two views (ecoreco.recommend_session):'
FROM ecoreco.recommend_session('model', (SELECT list(id ORDER BY value DESC, id) FROM (FROM model WHERE side = 'product' ORDER BY value DESC, id LIMIT 2)), ['view', 'view'], k := 5);
.print 'The ten most recent sessions, one list each in one call (ecoreco.recommend_sessions):'
CREATE OR REPLACE VIEW last_sessions AS
  FROM recent WHERE user_session IN (SELECT user_session FROM recent GROUP BY user_session ORDER BY max(event_time) DESC, user_session LIMIT 10);
SELECT session_id, list(product_id ORDER BY rank) AS top5 FROM ecoreco.recommend_sessions('model', last_sessions, k := 5) GROUP BY session_id ORDER BY session_id;
