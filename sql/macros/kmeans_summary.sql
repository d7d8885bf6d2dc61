-- The body of ecoreco.kmeans_summary after `WITH m AS MATERIALIZED (<the
-- model's rows>)`: one row per segment with its share and centroid.
, total AS (SELECT users AS all_users, within_ss AS inertia, silhouette, silhouette_metric, sample_size, iterations
            FROM m WHERE kind = 'model'),
  centroids AS (SELECT segment_id, map_from_entries(list((feature, value) ORDER BY feature)) AS centroid
                FROM m WHERE kind = 'centroid' GROUP BY segment_id)
SELECT s.segment_id, s.segment, s.users, s.users / t.all_users AS share, s.within_ss, t.inertia,
       t.silhouette, t.silhouette_metric, t.sample_size, t.iterations, c.centroid
FROM m s JOIN centroids c USING (segment_id), total t
WHERE s.kind = 'segment'
ORDER BY s.segment_id
