-- 2. Exploratory analytics.
.print '== 2. Event mix, missing values, activity, prices, sessions, funnel, top products =='
FROM ecoreco.event_mix(events);
FROM ecoreco.missing_values(events);
FROM ecoreco.activity(events, by := 'hour');
FROM ecoreco.activity(events, by := 'dayofweek');
FROM ecoreco.price_stats(events);
FROM ecoreco.session_stats(events);
FROM ecoreco.funnel(events);
SELECT rank, product_id, category_code, brand, views, purchases, revenue, gap
FROM ecoreco.top_products(events, by := 'revenue', k := 10);
.print 'Product features (top 5 by popularity score):'
SELECT product_id, category, brand, views, carts, purchases, unique_users, round(popularity, 3) AS popularity
FROM ecoreco.product_features(events) ORDER BY popularity DESC NULLS LAST, product_id LIMIT 5;
