-- 9. BI views, Parquet exports and the HTML report.
.print '== 9. BI views (sql/views.sql), Parquet exports, report (ecoreco.report) =='
CREATE OR REPLACE TABLE products AS FROM ecoreco.product_features(events);
.read sql/views.sql
SELECT 'bi_users' AS view_name, count(*) AS rows FROM bi_users
UNION ALL SELECT 'bi_segments', count(*) FROM bi_segments
UNION ALL SELECT 'bi_rfm_segments', count(*) FROM bi_rfm_segments
UNION ALL SELECT 'bi_product_performance', count(*) FROM bi_product_performance
UNION ALL SELECT 'bi_daily_kpis', count(*) FROM bi_daily_kpis
UNION ALL SELECT 'bi_recommendations_table', count(*) FROM bi_recommendations_table;
.print 'Every pipeline output as Parquet (in the folder export_dir, default data/):'
-- USE_TMP_FILE: each file is written beside its name and renamed when whole,
-- so a process killed mid-export leaves no torn Parquet file under the name
-- (test/python/test_kill.py).
SET VARIABLE export_dir = coalesce(getvariable('export_dir'), 'data');
COPY events TO (getvariable('export_dir') || '/events.parquet') (FORMAT parquet, USE_TMP_FILE true);
COPY user_features TO (getvariable('export_dir') || '/user_features.parquet') (FORMAT parquet, USE_TMP_FILE true);
COPY segments TO (getvariable('export_dir') || '/segments.parquet') (FORMAT parquet, USE_TMP_FILE true);
COPY rfm_segments TO (getvariable('export_dir') || '/rfm_segments.parquet') (FORMAT parquet, USE_TMP_FILE true);
COPY model TO (getvariable('export_dir') || '/model.parquet') (FORMAT parquet, USE_TMP_FILE true);
COPY products TO (getvariable('export_dir') || '/products.parquet') (FORMAT parquet, USE_TMP_FILE true);
COPY evaluation TO (getvariable('export_dir') || '/evaluation.parquet') (FORMAT parquet, USE_TMP_FILE true);
COPY bi_recommendations_table TO (getvariable('export_dir') || '/recommendations.parquet') (FORMAT parquet, USE_TMP_FILE true);
SELECT parse_filename(file_name) AS file, num_rows AS rows
FROM parquet_file_metadata(getvariable('export_dir') || '/*.parquet') ORDER BY file;
.print 'The report (one self-contained HTML file):'
SET VARIABLE report_html = coalesce(getvariable('report_html'), 'data/report.html');
FROM ecoreco.report(events, model := 'model', segments := 'segments', evaluation := 'evaluation',
                    path := getvariable('report_html'));
