-- Views over the pipeline's tables for BI tools (Superset, Metabase, Tableau,
-- a notebook, ...). Run after the pipeline (sql/demo.sql runs it from
-- sql/06_report.sql); it expects the tables events, user_features, segments,
-- products and model. Every view but bi_recommendations is plain SQL over
-- tables, so any DuckDB client reads it from the database file without the
-- ecoreco extension. bi_recommendations calls ecoreco.recommend_all and so
-- needs the extension loaded at query time: bi_recommendations_table below
-- is its materialised form, readable by any client.

-- One row per user: the features of ecoreco.rfm_features and the segment.
CREATE OR REPLACE VIEW bi_users AS
SELECT f.*, s.segment_id, s.segment, s.distance AS segment_distance
FROM user_features f LEFT JOIN segments s USING (user_id);

-- One row per product: what happened to it, and where it ranks.
CREATE OR REPLACE VIEW bi_product_performance AS
SELECT product_id, category, category_code, brand, avg_price, views, carts, purchases, unique_users, revenue,
       purchases / nullif(views, 0) AS view_to_purchase,
       revenue / nullif(sum(revenue) OVER (), 0) AS revenue_share,
       rank() OVER (ORDER BY revenue DESC) AS revenue_rank,
       rank() OVER (ORDER BY views DESC) AS views_rank
FROM products;

-- One row per calendar day (UTC).
CREATE OR REPLACE VIEW bi_daily_kpis AS
SELECT date,
       count(*) AS events,
       count(DISTINCT user_id) AS users,
       count(DISTINCT user_session) AS sessions,
       count(*) FILTER (event_type = 'view') AS views,
       count(*) FILTER (event_type = 'cart') AS carts,
       count(*) FILTER (event_type = 'purchase') AS purchases,
       count(DISTINCT user_id) FILTER (event_type = 'purchase') AS buyers,
       count(DISTINCT user_session) FILTER (event_type = 'purchase') AS purchase_sessions,
       count(DISTINCT user_session) FILTER (event_type = 'purchase') / nullif(count(DISTINCT user_session), 0) AS conversion,
       coalesce(sum(price) FILTER (event_type = 'purchase'), 0.0) AS revenue
FROM events
GROUP BY date;

-- Top-10 recommendations of every user of the model, with the product's
-- attributes. Needs the ecoreco extension at query time.
CREATE OR REPLACE VIEW bi_recommendations AS
SELECT r.user_id, r.rank, r.product_id, r.score, r.source,
       p.category, p.category_code, p.brand, p.avg_price AS price
FROM ecoreco.recommend_all('model', k := 10) r LEFT JOIN products p USING (product_id);

-- The materialised form: a plain table, readable without the extension.
-- Run again after retraining the model.
CREATE OR REPLACE TABLE bi_recommendations_table AS FROM bi_recommendations ORDER BY user_id, rank;
