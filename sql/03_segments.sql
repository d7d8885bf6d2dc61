-- 3-4. User features, K-Means customer segments and RFM segments. Tables
-- keep full precision (a program reads them); what is printed is rounded.
.print '== 3. User features (ecoreco.rfm_features) =='
CREATE OR REPLACE TABLE user_features AS FROM ecoreco.rfm_features(events);
SELECT count(*) AS users, round(avg(recency), 2) AS avg_recency_days, round(avg(frequency), 2) AS avg_active_days,
       round(sum(monetary), 2) AS revenue, count(*) FILTER (purchases > 0) AS buyers
FROM user_features;
.print '== 4. Customer segments: K-Means (k = 5), fitted once (ecoreco.kmeans_model) and stored =='
CREATE OR REPLACE TABLE kmeans_model AS FROM ecoreco.kmeans_model(user_features, k := 5, seed := 42);
CREATE OR REPLACE TABLE segments AS FROM ecoreco.kmeans_assign(user_features, kmeans_model);
CREATE OR REPLACE TABLE segment_summary AS FROM ecoreco.kmeans_model_summary(kmeans_model);
CREATE OR REPLACE TABLE segment_centroids AS FROM ecoreco.kmeans_model_centroids(kmeans_model);
SELECT segment_id, segment, users, round(share, 4) AS share, round(silhouette, 3) AS silhouette FROM segment_summary;
.print 'Centroids: one column per feature, each in the units of the feature (the mean over the segment):'
PIVOT (SELECT segment_id, segment, feature,
              CASE WHEN feature IN ('conversion_rate', 'cart_abandonment') THEN round(value, 4) ELSE round(value, 2) END AS value
       FROM segment_centroids)
ON feature IN ('recency', 'frequency', 'monetary', 'total_events', 'purchases', 'conversion_rate', 'cart_abandonment', 'unique_products')
USING first(value) ORDER BY segment_id;
.print '== 4b. RFM segments (ecoreco.rfm_segments: R, F and M scored 1-5 by quintiles of these users) =='
CREATE OR REPLACE TABLE rfm_segments AS FROM ecoreco.rfm_segments(user_features);
CREATE OR REPLACE TABLE rfm_summary AS FROM ecoreco.rfm_segment_summary(user_features);
SELECT segment, users, round(share, 4) AS share, round(revenue, 2) AS revenue, round(revenue_share, 4) AS revenue_share,
       round(avg_recency, 1) AS avg_recency_days, round(avg_frequency, 2) AS avg_active_days, round(avg_monetary, 2) AS avg_monetary
FROM rfm_summary;
