-- The tables the fuzz calls read: good ones, empty ones, NULL-filled ones,
-- extreme values, wrong types, wrong-shape models. Built once per campaign
-- into a database file that every worker opens read-only.
CREATE TABLE raw AS FROM ecoreco_synth(events := 3000, seed := 5);
CREATE TABLE events AS FROM ecoreco.clean_events(raw);
CREATE TABLE users AS FROM ecoreco.rfm_features(events);
CREATE TABLE products AS FROM ecoreco.product_features(events);
CREATE TABLE model AS FROM ecoreco.als_train(events, factors := 4, iterations := 2, search := false);
CREATE TABLE model_other AS FROM ecoreco.als_train(events, factors := 3, iterations := 1, seed := 9, search := false);
CREATE TABLE inter AS FROM ecoreco.interactions(events);
CREATE TABLE segments AS FROM ecoreco.kmeans_segments(users, k := 3, max_iter := 5);
CREATE TABLE kmodel AS FROM ecoreco.kmeans_model(users, k := 3, max_iter := 5);

-- Empty, and every column NULL.
CREATE TABLE empty_events AS FROM events LIMIT 0;
CREATE TABLE empty_users AS FROM users LIMIT 0;
CREATE TABLE empty_model AS FROM model LIMIT 0;
CREATE TABLE empty_inter AS FROM inter LIMIT 0;
CREATE TABLE null_events AS SELECT * REPLACE (NULL AS event_time, NULL AS event_type, NULL AS product_id, NULL AS category_id, NULL AS user_id, NULL AS price, NULL AS user_session) FROM events LIMIT 50;
CREATE TABLE null_users AS FROM users LIMIT 0;
INSERT INTO null_users BY NAME SELECT NULL AS user_id FROM range(20);
CREATE TABLE null_model AS SELECT seq, model_id, side, NULL::BIGINT AS id, NULL::BIGINT AS item, name, NULL::DOUBLE AS value, NULL::FLOAT[] AS factors FROM model;
CREATE TABLE null_inter AS SELECT NULL::BIGINT AS user_id, NULL::BIGINT AS product_id, NULL::DOUBLE AS weight, interactions, views, carts, purchases, category_id, last_event FROM inter LIMIT 50;

-- Extremes: ids at +-2^63, huge and tiny numbers, times at the ends of the range.
CREATE TABLE extreme_events AS SELECT * REPLACE (
    CASE WHEN row_number() OVER () % 3 = 0 THEN 9223372036854775807 WHEN row_number() OVER () % 3 = 1 THEN -9223372036854775808 ELSE user_id END AS user_id,
    CASE WHEN row_number() OVER () % 2 = 0 THEN -9223372036854775808 ELSE product_id END AS product_id,
    CASE WHEN row_number() OVER () % 5 = 0 THEN 1e308 ELSE price END AS price,
    CASE WHEN row_number() OVER () % 7 = 0 THEN TIMESTAMP '1677-09-22 00:00:00' WHEN row_number() OVER () % 7 = 1 THEN TIMESTAMP '2262-04-11 00:00:00' ELSE event_time END AS event_time)
    FROM events LIMIT 300;
CREATE TABLE extreme_users AS SELECT * REPLACE (
    CASE WHEN row_number() OVER () % 2 = 0 THEN 9223372036854775807 - row_number() OVER () ELSE -9223372036854775808 + row_number() OVER () END AS user_id,
    CASE WHEN row_number() OVER () % 4 = 0 THEN 1e300 ELSE recency END AS recency)
    FROM users LIMIT 100;
CREATE TABLE extreme_inter AS SELECT * REPLACE (
    CASE WHEN row_number() OVER () % 2 = 0 THEN 9223372036854775807 ELSE -9223372036854775808 + row_number() OVER () END AS user_id,
    CASE WHEN row_number() OVER () % 3 = 0 THEN 1e308 WHEN row_number() OVER () % 3 = 1 THEN 'nan'::DOUBLE ELSE weight END AS weight)
    FROM inter LIMIT 200;
CREATE TABLE duplicate_users AS FROM users UNION ALL FROM users;

-- Wrong types and wrong shapes.
CREATE TABLE wrong_types AS SELECT event_time::VARCHAR || 'x' AS event_time, 42 AS event_type, 'p' || product_id AS product_id, 'c' AS category_id, 1 AS category_code, 2 AS brand, 'cheap' AS price, 'u' || user_id AS user_id, 3 AS user_session FROM events LIMIT 50;
CREATE TABLE one_col AS SELECT 1 AS x;
CREATE TABLE model_wrong AS FROM users;
CREATE TABLE model_short_factors AS SELECT * REPLACE (CASE WHEN side = 'product' THEN [1.0]::FLOAT[] ELSE factors END AS factors) FROM model;
CREATE TABLE model_nan AS SELECT * REPLACE (CASE WHEN factors IS NULL THEN NULL ELSE list_transform(factors, lambda x: 'nan'::FLOAT) END AS factors) FROM model;
CREATE TABLE model_dup AS FROM model UNION ALL FROM model;
CREATE TABLE model_mixed AS FROM model UNION ALL FROM model_other;
CREATE TABLE model_no_params AS FROM model WHERE side <> 'param';
CREATE TABLE model_huge_ids AS SELECT * REPLACE (CASE WHEN side IN ('user', 'product') THEN id * 1000000000 + 9000000000000000000 // 2 END AS id) FROM model;

-- The long (user, feature, value) rows ecoreco_kmeans reads, and the rows
-- ecoreco_evaluate reads, as the macros feed them.
CREATE TABLE kfeat AS SELECT user_id, list_position(['recency', 'frequency', 'monetary'], feature)::BIGINT AS pos, feature, value
    FROM (SELECT user_id, recency::DOUBLE AS recency, frequency::DOUBLE AS frequency, monetary::DOUBLE AS monetary FROM users)
    UNPIVOT INCLUDE NULLS (value FOR feature IN (recency, frequency, monetary));
CREATE TABLE kfeat_extreme AS SELECT user_id, list_position(['recency', 'frequency', 'monetary'], feature)::BIGINT AS pos, feature, value
    FROM (SELECT user_id, recency::DOUBLE AS recency, frequency::DOUBLE AS frequency, monetary::DOUBLE AS monetary FROM extreme_users)
    UNPIVOT INCLUDE NULLS (value FOR feature IN (recency, frequency, monetary));
CREATE TABLE evalrows AS
    SELECT CASE WHEN last_event < TIMESTAMP '2019-10-25' THEN 'train' ELSE 'test' END AS part, user_id, product_id, weight, purchases, interactions, category_id,
           last_event >= TIMESTAMP '2019-10-25' AND carts + purchases > 0 AS relevant
    FROM inter;

-- The pair rows ecoreco_als_train and ecoreco_evaluate read (one row per
-- user and product, with the validation columns of the parameter search),
-- shaped as the macros shape them from `inter`.
CREATE TABLE als_src AS
    WITH span AS (SELECT min(epoch(last_event)) AS lo, max(epoch(last_event)) AS hi FROM inter)
    SELECT user_id, product_id, weight, purchases, interactions, category_id, epoch(last_event) AS last_time,
           weight AS v_weight, purchases AS v_purchases, interactions AS v_interactions, epoch(last_event) AS v_time,
           carts + purchases > 0 AS v_target, lo + (hi - lo) * 0.8 AS v_cut, lo AS first_time
    FROM inter, span;
CREATE TABLE eval_src AS
    SELECT CASE WHEN last_time < v_cut THEN 'train' ELSE 'test' END AS part, *,
           last_time >= v_cut AND v_target AS relevant
    FROM als_src;
CREATE TABLE empty_als_src AS FROM als_src LIMIT 0;
CREATE TABLE extreme_als_src AS SELECT * REPLACE (
    CASE WHEN row_number() OVER () % 2 = 0 THEN 9223372036854775807 ELSE -9223372036854775808 + row_number() OVER () END AS user_id,
    CASE WHEN row_number() OVER () % 3 = 0 THEN 1e308 WHEN row_number() OVER () % 3 = 1 THEN 'nan'::DOUBLE ELSE weight END AS weight,
    CASE WHEN row_number() OVER () % 5 = 0 THEN -1e300 ELSE last_time END AS last_time)
    FROM als_src LIMIT 200;
