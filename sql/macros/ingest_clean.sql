-- The cleaning projection shared by read_events and clean_events.
-- {source} is the row source with the nine raw columns and event_time a
-- TIMESTAMP; {category_code} and {brand} are the two text rules (see
-- ingest_unknown_*.sql). Time features come from the time of day in
-- microseconds (event time minus its midnight) with three integer divisions
-- and one DATE cast: calendar date-part calls, or a modulo per feature,
-- would cost a third of the whole ingest. The hash() filter references every
-- column, so DuckDB converts (and so rejects) every column even for count(*).
SELECT event_time, event_type, product_id, category_id, {category_code}, {brand},
       CASE WHEN price > 0 THEN price::DOUBLE END AS price, user_id, user_session,
       hours::INTEGER AS hour, (minutes - hours * 60)::INTEGER AS minute,
       (seconds - minutes * 60)::INTEGER AS second,
       day(d)::INTEGER AS day, month(d)::INTEGER AS month,
       (isodow(d) % 7 + 1)::INTEGER AS dayofweek, d AS date,
       make_timestamp(midnight + hours * 3600000000) AS hour_bucket
FROM (SELECT *, micros // 3600000000 AS hours, micros // 60000000 AS minutes, micros // 1000000 AS seconds
      FROM (SELECT *, epoch_us(event_time) - epoch_us(d) AS micros, epoch_us(d) AS midnight
            FROM (SELECT *, event_time::DATE AS d FROM {source}
                  WHERE hash(event_time, event_type, product_id, category_id, category_code, brand,
                             price, user_id, user_session) IS NOT NULL)))
