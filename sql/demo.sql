-- ecoreco demo pipeline, run by `make demo` in the DuckDB CLI after
-- LOAD 'build/release/ecoreco.duckdb_extension'.
-- Input: data/demo_events.csv, REES46-shaped rows from ecoreco_synth.
.print '== 1. Ingest and clean (ecoreco.read_events) =='
CREATE OR REPLACE TEMP TABLE events AS FROM ecoreco.read_events('data/demo_events.csv');
SELECT count(*) AS events, count(DISTINCT user_id) AS users, count(DISTINCT product_id) AS products,
       count(DISTINCT user_session) AS sessions, min(event_time) AS first_event, max(event_time) AS last_event
FROM events;
.print 'Rejected lines (none expected in generated data):'
SELECT count(*) AS rejected_lines FROM ecoreco.rejects();
.print 'Real REES46 head (../shared/data) when present:'
SELECT event_type, count(*) AS events FROM ecoreco.read_events('../shared/data/rees46-2019-oct-head.csv') GROUP BY ALL ORDER BY events DESC;
