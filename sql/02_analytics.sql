-- 2. Exploratory analytics. The functions return full precision (tables a
-- program reads); what is printed here is rounded for a person: shares and
-- rates to 4 decimals (0..1), percentages and money to 2.
.print '== 2. Event mix, missing values, activity, prices, sessions, funnel, top products =='
SELECT * REPLACE (round(share, 4) AS share) FROM ecoreco.event_mix(events);
SELECT * REPLACE (round(missing_pct, 2) AS missing_pct) FROM ecoreco.missing_values(events);
SELECT * REPLACE (round(revenue, 2) AS revenue) FROM ecoreco.activity(events, by := 'hour');
SELECT * REPLACE (round(revenue, 2) AS revenue) FROM ecoreco.activity(events, by := 'dayofweek');
SELECT event_type, rows, priced, round(mean, 2) AS mean, round(std, 2) AS std, round(min, 2) AS min,
       round(p25, 2) AS p25, round(median, 2) AS median, round(p75, 2) AS p75, round(max, 2) AS max
FROM ecoreco.price_stats(events);
SELECT sessions, round(events_per_session_mean, 2) AS events_per_session_mean,
       round(events_per_session_std, 2) AS events_per_session_std, events_per_session_min,
       round(events_per_session_median, 2) AS events_per_session_median, events_per_session_max,
       round(duration_mean_s, 1) AS duration_mean_s, round(duration_median_s, 1) AS duration_median_s,
       round(purchase_session_share, 4) AS purchase_session_share
FROM ecoreco.session_stats(events);
SELECT * REPLACE (round(view_to_cart, 4) AS view_to_cart, round(cart_to_purchase, 4) AS cart_to_purchase,
                  round(view_to_purchase, 4) AS view_to_purchase, round(cart_abandonment, 4) AS cart_abandonment,
                  round(purchase_sessions_without_cart_share, 4) AS purchase_sessions_without_cart_share)
FROM ecoreco.funnel(events);
SELECT rank, product_id, category_code, brand, views, purchases, round(revenue, 2) AS revenue, gap
FROM ecoreco.top_products(events, by := 'revenue', k := 10);
.print 'Product features (top 5 by popularity score):'
SELECT product_id, category, brand, views, carts, purchases, unique_users, round(popularity, 3) AS popularity
FROM ecoreco.product_features(events) ORDER BY popularity DESC NULLS LAST, product_id LIMIT 5;
