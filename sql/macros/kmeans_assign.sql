-- ecoreco.kmeans_assign(features_table, model, columns := [...]): each user of
-- features_table in the segment of the nearest centroid of a stored k-means
-- model (ecoreco.kmeans_model's rows), with no refit: features are scaled by
-- the model's stored means and standard deviations, NULL imputed as 0, ties
-- go to the lower segment_id.
WITH m AS (SELECT * FROM query_table(model)),
scaling AS (SELECT feature, value AS mean, distance AS std FROM m WHERE kind = 'scaling'),
same_features AS (
  SELECT CASE WHEN (SELECT list(feature ORDER BY feature) FROM scaling) = list_sort(columns) THEN true
              ELSE error('ecoreco.kmeans_assign: the model was fitted on ' || (SELECT list(feature ORDER BY feature) FROM scaling)::VARCHAR
                         || ' but columns is ' || columns::VARCHAR || '; pass the columns the model was fitted on')
         END AS ok),
centroid AS (
  SELECT c.segment_id, c.segment, c.feature, (c.value - s.mean) / s.std AS z
  FROM m c JOIN scaling s USING (feature) WHERE c.kind = 'centroid'),
cells AS (
  SELECT u.user_id, u.feature, (coalesce(u.value, 0) - s.mean) / s.std AS z
  FROM (SELECT user_id, COLUMNS(lambda c: list_contains(columns, c))::DOUBLE FROM query_table(features_table))
       UNPIVOT INCLUDE NULLS (value FOR feature IN (COLUMNS(* EXCLUDE (user_id)))) u
  JOIN scaling s USING (feature)),
distances AS (
  SELECT x.user_id, c.segment_id, c.segment, sqrt(sum((x.z - c.z) ^ 2)) AS distance
  FROM cells x JOIN centroid c USING (feature), same_features
  WHERE same_features.ok
  GROUP BY x.user_id, c.segment_id, c.segment)
SELECT user_id,
       arg_min(segment_id, (distance, segment_id)) AS segment_id,
       arg_min(segment, (distance, segment_id)) AS segment,
       min(distance) AS distance
FROM distances
GROUP BY user_id
ORDER BY user_id
