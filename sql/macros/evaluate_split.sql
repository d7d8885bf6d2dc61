-- The split point of ecoreco.evaluate_recommendations, in seconds like the
-- rows' t: `split` is a timestamp, or a fraction of the rows' time span
-- strictly between 0 and 1.
ecoreco_bounds AS (SELECT min(t) AS lo, max(t) AS hi FROM ecoreco_rows),
ecoreco_cut AS (
  SELECT coalesce(
           epoch(try_cast(split::VARCHAR AS TIMESTAMP)),
           lo + (hi - lo) *
             CASE WHEN try_cast(split::VARCHAR AS DOUBLE) > 0 AND try_cast(split::VARCHAR AS DOUBLE) < 1
                  THEN try_cast(split::VARCHAR AS DOUBLE)
                  ELSE error('ecoreco.evaluate_recommendations: split must be a fraction strictly between 0 and 1 or a timestamp, got '
                             || split::VARCHAR || '; pass e.g. split := 0.8')
             END) AS at
  FROM ecoreco_bounds)
