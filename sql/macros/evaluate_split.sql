-- The split point of ecoreco.evaluate_recommendations: `split` is a timestamp,
-- or a fraction of the events' time span strictly between 0 and 1.
bounds AS (SELECT min(event_time) AS lo, max(event_time) AS hi FROM query_table(events)),
cut AS (
  SELECT coalesce(
           try_cast(split::VARCHAR AS TIMESTAMP),
           make_timestamp((epoch_us(lo) + (epoch_us(hi) - epoch_us(lo)) *
             CASE WHEN try_cast(split::VARCHAR AS DOUBLE) > 0 AND try_cast(split::VARCHAR AS DOUBLE) < 1
                  THEN try_cast(split::VARCHAR AS DOUBLE)
                  ELSE error('ecoreco.evaluate_recommendations: split must be a fraction strictly between 0 and 1 or a timestamp, got '
                             || split::VARCHAR || '; pass e.g. split := 0.8')
             END)::BIGINT)) AS at
  FROM bounds)
