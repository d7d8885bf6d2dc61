-- Body of the table macro ecoreco.report(events, model, segments, evaluation,
-- path, seed). Everything is aggregated here, in DuckDB, into one bounded
-- JSON value (fixed-size histograms, top-N lists, a seeded sample of at most
-- 2,000 points), so the page does not grow with the number of events; the
-- Rust scalar ecoreco_report_write renders and writes it.
-- The optional tables (model, segments, evaluation) are read through
-- query(ecoreco_report_sql(...)), which gives a typed empty table when the
-- name is NULL. Column names below never equal a macro parameter (events,
-- model, segments, evaluation, path, seed): DuckDB would substitute them.
WITH
by_hour_date AS MATERIALIZED (
    SELECT event_type, hour, date, count(*) AS n
    FROM query_table(events) GROUP BY ALL
),
totals AS (
    SELECT count(*) AS n, count(DISTINCT user_id) AS users, count(DISTINCT user_session) AS sessions,
           count(DISTINCT product_id) AS products, min(event_time) AS first_event, max(event_time) AS last_event,
           coalesce(sum(price) FILTER (event_type = 'purchase'), 0.0) AS revenue
    FROM query_table(events)
),
mix AS (
    -- At most 12 bars: the 11 most frequent types, the rest as one bar.
    SELECT CASE WHEN rn <= 11 OR cnt <= 12 THEN coalesce(event_type, '(missing)') ELSE '(other types)' END AS label,
           sum(n)::BIGINT AS n, min(rn) AS first_rank
    FROM (SELECT event_type, sum(n) AS n, row_number() OVER (ORDER BY sum(n) DESC, event_type) AS rn,
                 count(*) OVER () AS cnt
          FROM by_hour_date GROUP BY event_type)
    GROUP BY label
),
hours AS (
    SELECT h.range::INTEGER AS hour, coalesce(sum(b.n), 0)::BIGINT AS n
    FROM range(24) h LEFT JOIN by_hour_date b ON b.hour = h.range
    GROUP BY h.range
),
days AS (
    SELECT d.day, coalesce(sum(b.n), 0)::BIGINT AS n
    FROM (SELECT unnest(generate_series(min(date)::TIMESTAMP, max(date)::TIMESTAMP, INTERVAL 1 DAY))::DATE AS day
          FROM by_hour_date) d
    LEFT JOIN by_hour_date b ON b.date = d.day
    GROUP BY d.day
),
fun AS (FROM ecoreco.funnel(events)),
price_top AS (SELECT max(price) AS hi FROM query_table(events)),
price_hist AS (
    SELECT coalesce(e.event_type, '(missing)') AS label, least(floor(e.price / (t.hi / 30)), 29)::INTEGER AS bin, count(*) AS n
    FROM query_table(events) e, price_top t
    WHERE e.price IS NOT NULL AND t.hi > 0
      AND coalesce(e.event_type, '(missing)') IN (SELECT label FROM mix)
    GROUP BY ALL
),
price_types AS (
    SELECT p.label, min(p.n)::BIGINT AS priced,
           list(coalesce(h.n, 0)::BIGINT ORDER BY b.range) AS counts
    FROM (SELECT label, sum(n) AS n FROM price_hist GROUP BY label) p
    CROSS JOIN range(30) b
    LEFT JOIN price_hist h ON h.label = p.label AND h.bin = b.range
    GROUP BY p.label
),
per_session AS (
    SELECT least(count(*), 20)::INTEGER AS size
    FROM query_table(events) WHERE user_session IS NOT NULL GROUP BY user_session
),
session_sizes AS (
    SELECT s.range::INTEGER AS size, count(p.size)::BIGINT AS n
    FROM range(1, (SELECT coalesce(max(size), 0) + 1 FROM per_session)) s
    LEFT JOIN per_session p ON p.size = s.range
    GROUP BY s.range
),
-- Segments: sizes, and centroids as the members' mean features in original
-- units (what k-means' centroid is once the standardisation is undone).
seg AS MATERIALIZED (FROM query(ecoreco_report_sql('segments', segments, seed))),
rfm_users AS MATERIALIZED (FROM ecoreco.rfm_features(events)),
seg_features AS (
    SELECT s.segment_id, s.segment, f.*
    FROM rfm_users f JOIN seg s ON s.user_id = f.user_id
    WHERE segments IS NOT NULL
),
-- RFM segments of every user, always (they need only the events): the rows
-- of ecoreco.rfm_segment_summary over rfm_users, in its order (Champions
-- first); the placeholder below is that macro's query, put there when the macro is
-- made (src/report/mod.rs), so the rules are written once.
rfm_summary AS ({rfm_summary}),
centroid_rows AS (
    SELECT segment_id, min(segment) AS segment, count(*)::BIGINT AS users,
           avg(recency) AS recency, avg(frequency) AS frequency, avg(monetary) AS monetary,
           avg(total_events) AS total_events, avg(purchases) AS purchases, avg(conversion_rate) AS conversion_rate,
           avg(cart_abandonment) AS cart_abandonment, avg(unique_products) AS unique_products
    FROM seg_features GROUP BY segment_id
),
overall_row AS (
    SELECT count(*)::BIGINT AS users,
           avg(recency) AS recency, avg(frequency) AS frequency, avg(monetary) AS monetary,
           avg(total_events) AS total_events, avg(purchases) AS purchases, avg(conversion_rate) AS conversion_rate,
           avg(cart_abandonment) AS cart_abandonment, avg(unique_products) AS unique_products
    FROM seg_features
),
seg_sizes AS (
    SELECT segment_id, min(segment) AS segment, count(*)::BIGINT AS users, count(*) - count(DISTINCT user_id) AS duplicate_users
    FROM seg GROUP BY segment_id
),
-- Recommendations: per recommended product, a seeded sample, score bins.
recs AS MATERIALIZED (FROM query(ecoreco_report_sql('recommendations', model, seed))),
products AS MATERIALIZED (
    SELECT product_id, category, brand, avg_price FROM ecoreco.product_features(events)
    WHERE model IS NOT NULL
),
rec_products AS (
    SELECT r.id AS product_id, r.n, r.x AS score_sum, coalesce(p.category, 'unknown') AS category,
           coalesce(p.brand, 'unknown') AS brand
    FROM recs r LEFT JOIN products p ON p.product_id = r.id WHERE r.kind = 'product'
),
rec_categories AS (
    SELECT category AS label, sum(n)::BIGINT AS n, sum(score_sum) / sum(n) AS mean_score
    FROM rec_products GROUP BY category ORDER BY n DESC, label LIMIT 15
),
rec_brands AS (
    SELECT brand AS label, sum(n)::BIGINT AS n, sum(score_sum) / sum(n) AS mean_score
    FROM rec_products GROUP BY brand ORDER BY n DESC, label LIMIT 15
),
rec_sample AS (
    SELECT p.avg_price AS price, r.x AS score, r.id AS product_id, r.n AS user_id
    FROM recs r JOIN products p ON p.product_id = r.id
    WHERE r.kind = 'sample' AND p.avg_price IS NOT NULL
),
eval AS (FROM query(ecoreco_report_sql('evaluation', evaluation, seed))),
data AS (
    SELECT json_object(
        'totals', (SELECT {'events': n, 'users': users, 'sessions': sessions, 'products': products,
                           'first_event': first_event::VARCHAR, 'last_event': last_event::VARCHAR, 'revenue': revenue}
                   FROM totals),
        'event_mix', (SELECT list({'label': label, 'events': n} ORDER BY first_rank) FROM mix),
        'hours', (SELECT list({'hour': hour, 'events': n} ORDER BY hour) FROM hours),
        'days', (SELECT list({'day': day::VARCHAR, 'events': n} ORDER BY day) FROM days),
        'funnel', (SELECT {'views': views, 'carts': carts, 'purchases': purchases,
                           'viewers': viewers, 'carters': carters, 'buyers': buyers,
                           'view_to_cart': view_to_cart, 'cart_to_purchase': cart_to_purchase,
                           'view_to_purchase': view_to_purchase} FROM fun),
        'prices', (SELECT {'max_price': (SELECT hi FROM price_top), 'bins': 30,
                           'types': list({'label': label, 'priced': priced, 'counts': counts} ORDER BY priced DESC, label)}
                   FROM price_types),
        'session_sizes', (SELECT list({'size': size, 'sessions': n} ORDER BY size) FROM session_sizes),
        'rfm', (SELECT list({'segment': segment, 'users': users, 'share': share, 'revenue': revenue,
                             'revenue_share': revenue_share, 'avg_recency': avg_recency,
                             'avg_frequency': avg_frequency, 'avg_monetary': avg_monetary})
                FROM rfm_summary),
        'segments', CASE WHEN segments IS NOT NULL THEN (SELECT {
            'sizes': (SELECT list({'segment_id': segment_id, 'segment': segment, 'users': users} ORDER BY segment_id) FROM seg_sizes),
            'duplicate_users': (SELECT coalesce(sum(duplicate_users), 0) FROM seg_sizes),
            'centroids': (SELECT list(c ORDER BY c.segment_id) FROM centroid_rows c),
            'overall': (SELECT o FROM overall_row o)}) END,
        'recommendations', CASE WHEN model IS NOT NULL THEN (SELECT {
            'users': (SELECT id FROM recs WHERE kind = 'totals'),
            'rows': (SELECT n FROM recs WHERE kind = 'totals'),
            'model_products': (SELECT id FROM recs WHERE kind = 'model'),
            'recommended_products': (SELECT count(*) FROM rec_products),
            'score_bins': (SELECT list({'lo': x, 'hi': y, 'n': n} ORDER BY id) FROM recs WHERE kind = 'bin'),
            'categories': (SELECT list({'label': label, 'recs': n, 'mean_score': mean_score} ORDER BY n DESC, label) FROM rec_categories),
            'brands': (SELECT list({'label': label, 'recs': n, 'mean_score': mean_score} ORDER BY n DESC, label) FROM rec_brands),
            'sample_size': (SELECT count(*) FROM recs WHERE kind = 'sample'),
            'sample': (SELECT list({'price': price, 'score': score} ORDER BY user_id, product_id) FROM rec_sample)}) END,
        'evaluation', CASE WHEN evaluation IS NOT NULL THEN (SELECT list({'model': recommender, 'k': k, 'precision': "precision",
            'recall': recall, 'ndcg': ndcg, 'map': "map", 'coverage': coverage, 'users_evaluated': users_evaluated}
            ORDER BY recommender) FROM eval) END
    ) AS payload
)
SELECT path AS path,
       ecoreco_report_write(path, current_setting('enable_external_access')::BOOLEAN, payload::VARCHAR) AS bytes
FROM data,
     -- Checked while the query is bound, before any row is read.
     range(CASE WHEN current_setting('enable_external_access')::BOOLEAN THEN 1 ELSE error(
         'ecoreco.report: writing files is refused because enable_external_access is false, '
         || 'run the report in a session that allows file access') END) AS access_checked(ok),
     range(CASE WHEN path IS NOT NULL AND path <> '' THEN 1 ELSE error(
         'ecoreco.report: path is NULL or empty, pass a file name such as path := ''report.html''') END) AS path_checked(ok)
