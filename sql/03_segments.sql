-- 3-4. User features and K-Means customer segments.
.print '== 3. User features (ecoreco.rfm_features) =='
CREATE OR REPLACE TABLE user_features AS FROM ecoreco.rfm_features(events);
SELECT count(*) AS users, round(avg(recency), 2) AS avg_recency_days, round(avg(frequency), 2) AS avg_active_days,
       round(sum(monetary), 2) AS revenue, count(*) FILTER (purchases > 0) AS buyers
FROM user_features;
.print '== 4. Customer segments (ecoreco.kmeans_segments, k = 5) =='
CREATE OR REPLACE TABLE segments AS FROM ecoreco.kmeans_segments(user_features, k := 5, seed := 42);
SELECT segment_id, segment, users, round(share, 3) AS share, round(silhouette, 3) AS silhouette, centroid
FROM ecoreco.kmeans_summary(user_features, k := 5, seed := 42);
