-- clean_events' source: a table with the nine raw columns, event_time as the
-- REES46 text or a TIMESTAMP (e.g. ecoreco_synth output kept in DuckDB).
(SELECT * REPLACE (coalesce(try_strptime(event_time::VARCHAR, '%Y-%m-%d %H:%M:%S UTC'),
                            try_cast(event_time::VARCHAR AS TIMESTAMP)) AS event_time,
                   event_type::VARCHAR AS event_type, category_code::VARCHAR AS category_code,
                   brand::VARCHAR AS brand, price::DOUBLE AS price, user_session::VARCHAR AS user_session)
 FROM query_table(raw_events))
