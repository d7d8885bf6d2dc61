-- 1. Ingest and clean: REES46 CSV (a file, a glob, .csv.gz) -> events.
.print '== 1. Ingest and clean (ecoreco.read_events) =='
CREATE OR REPLACE TABLE events AS FROM ecoreco.read_events(getvariable('events_csv'));
SELECT count(*) AS events, count(DISTINCT user_id) AS users, count(DISTINCT product_id) AS products,
       count(DISTINCT user_session) AS sessions, min(event_time) AS first_event, max(event_time) AS last_event
FROM events;
.print 'Rejected lines (file, line, reason):'
SELECT file, line, error_type, reason FROM ecoreco.rejects() LIMIT 10;
