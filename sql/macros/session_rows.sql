-- The events of any table as session steps (session_key, step_order,
-- product_id), shared by ecoreco.covisit_train and
-- ecoreco.evaluate_sessions. The session is any column (session_col: a
-- session id of any type, or a user column), hashed to 63 bits so that
-- Rust holds 8 bytes per event whatever its type (two sessions share a
-- hash with odds below 1e-5 at 22M sessions). step_order is time_col as
-- seconds (a TIMESTAMP, a DATE, or a number such as a position). Events
-- without a session or product are not steps and are left out; an event
-- without an order cannot be placed and is an error.
ecoreco_session_raw AS (SELECT r AS ecoreco_row FROM query_table(events) r),
ecoreco_session_cols AS (
  SELECT struct_extract(ecoreco_row, session_col) AS ecoreco_session,
         struct_extract(ecoreco_row, item_col)::BIGINT AS product_id,
         struct_extract(ecoreco_row, time_col) AS ecoreco_time
  FROM ecoreco_session_raw),
ecoreco_session_rows AS (
  SELECT (hash(ecoreco_session) & 9223372036854775807)::BIGINT AS session_key,
         coalesce(epoch(try_cast(ecoreco_time::VARCHAR AS TIMESTAMP)),
                  try_cast(ecoreco_time::VARCHAR AS DOUBLE),
                  error('ecoreco.' || ecoreco_function || ': the ' || time_col || ' of an event of session '
                        || ecoreco_session::VARCHAR || ' is '
                        || coalesce('''' || ecoreco_time::VARCHAR || '''', 'NULL')
                        || ', not a time or a number; pass time_col := ''...'' naming a column that orders each session')) AS step_order,
         product_id, ecoreco_session
  FROM ecoreco_session_cols
  WHERE ecoreco_session IS NOT NULL AND product_id IS NOT NULL)
