-- Views over the pipeline's tables for BI tools (Superset, Metabase, Tableau,
-- a notebook, ...). Run after the pipeline (sql/demo.sql runs it from
-- sql/06_report.sql); it expects the tables events, user_features, segments,
-- segment_summary, segment_centroids, rfm_segments, rfm_summary, products and
-- model. The views are what a person reads in a BI tool: shares and rates
-- are rounded to 4 decimals, money to 2; the tables under them keep full
-- precision for programs. Every view but bi_recommendations is plain SQL over
-- tables, so any DuckDB client reads it from the database file without the
-- ecoreco extension. bi_recommendations calls ecoreco.recommend_all and so
-- needs the extension loaded at query time: bi_recommendations_table below
-- is its materialised form, readable by any client.

-- One row per user: the features of ecoreco.rfm_features, the K-Means
-- segment and the RFM scores and segment.
CREATE OR REPLACE VIEW bi_users AS
SELECT f.*, s.segment_id, s.segment, s.distance AS segment_distance,
       r.r_score, r.f_score, r.m_score, r.segment AS rfm_segment
FROM user_features f LEFT JOIN segments s USING (user_id) LEFT JOIN rfm_segments r USING (user_id);

-- One row per K-Means segment: size, share, silhouette and the centroid, one
-- column per clustering feature in the feature's units.
CREATE OR REPLACE VIEW bi_segments AS
SELECT s.segment_id, s.segment, s.users, round(s.share, 4) AS share, round(s.silhouette, 4) AS silhouette,
       c.* EXCLUDE (segment_id)
FROM segment_summary s
LEFT JOIN (PIVOT (SELECT segment_id, feature,
                         CASE WHEN feature IN ('conversion_rate', 'cart_abandonment') THEN round(value, 4) ELSE round(value, 2) END AS value
                  FROM segment_centroids)
           ON feature IN ('recency', 'frequency', 'monetary', 'total_events', 'purchases', 'conversion_rate',
                          'cart_abandonment', 'unique_products')
           USING first(value)) c USING (segment_id)
ORDER BY s.segment_id;

-- One row per RFM segment (all ten names, in rule order): size, share,
-- revenue and revenue share.
CREATE OR REPLACE VIEW bi_rfm_segments AS
SELECT segment, users, round(share, 4) AS share, round(revenue, 2) AS revenue, round(revenue_share, 4) AS revenue_share,
       round(avg_recency, 2) AS avg_recency, round(avg_frequency, 2) AS avg_frequency, round(avg_monetary, 2) AS avg_monetary
FROM rfm_summary;

-- One row per product: what happened to it, and where it ranks.
CREATE OR REPLACE VIEW bi_product_performance AS
SELECT product_id, category, category_code, brand, round(avg_price, 2) AS avg_price, views, carts, purchases, unique_users,
       round(revenue, 2) AS revenue,
       round(purchases / nullif(views, 0), 4) AS view_to_purchase,
       round(revenue / nullif(sum(revenue) OVER (), 0), 4) AS revenue_share,
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
       round(count(DISTINCT user_session) FILTER (event_type = 'purchase') / nullif(count(DISTINCT user_session), 0), 4) AS conversion,
       round(coalesce(sum(price) FILTER (event_type = 'purchase'), 0.0), 2) AS revenue
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
