-- ecoreco: the whole pipeline from CSV to top-10, run by `make demo` in the
-- DuckDB CLI after LOAD 'build/release/ecoreco.duckdb_extension'.
-- Input: the CSV named by the variable events_csv (make demo generates
-- data/demo_events.csv with ecoreco_synth; point it at a real REES46 file to
-- run on real data).
.timer off
SET VARIABLE events_csv = coalesce(getvariable('events_csv'), 'data/demo_events.csv');
.read sql/01_ingest.sql
.read sql/02_analytics.sql
.read sql/03_segments.sql
.read sql/04_recommend.sql
.read sql/05_stream.sql
.read sql/06_report.sql
