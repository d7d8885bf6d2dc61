-- The split of ecoreco.evaluate_sessions: sessions ordered by their first
-- event; `split` is a timestamp (sessions starting before it train), or the
-- share of sessions, earliest first, that train (strictly between 0 and 1).
ecoreco_session_start AS (
  SELECT session_key, min(step_order) AS started FROM ecoreco_session_rows GROUP BY session_key),
ecoreco_session_cut AS (
  SELECT coalesce(
           epoch(try_cast(split::VARCHAR AS TIMESTAMP)),
           CASE WHEN try_cast(split::VARCHAR AS DOUBLE) > 0 AND try_cast(split::VARCHAR AS DOUBLE) < 1
                THEN (SELECT started FROM (
                        SELECT started, row_number() OVER (ORDER BY started, session_key) AS r, count(*) OVER () AS n
                        FROM ecoreco_session_start)
                      WHERE r = floor(n * try_cast(split::VARCHAR AS DOUBLE))::BIGINT + 1)
                ELSE error('ecoreco.evaluate_sessions: split must be a fraction strictly between 0 and 1 or a timestamp, got '
                           || split::VARCHAR || '; pass e.g. split := 0.7')
           END) AS at)
