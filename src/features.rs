//! Stage 3: user (RFM + behaviour) and product features, as SQL macros.
//!
//! Same conventions as [`crate::analytics`] (documented in
//! docs/analytics.md): the events table is read through `query_table`,
//! views / carts / purchases are rows of exactly that event_type, revenue and
//! monetary sum the prices of purchase rows. Rows with a NULL user_id are left
//! out of `rfm_features` and rows with a NULL product_id out of
//! `product_features` (a feature row needs a key); `rfm_features` has exactly
//! one row per user, as the k-means macros require.

use crate::analytics::{ratio, CARTS, PURCHASES, REVENUE, SRC, VIEWS};
use crate::binding::SqlMacro;

/// The most frequent value of `value` among the (group, value, n) rows of
/// `counts`, ties broken alphabetically: `min_by` over (-count, value).
fn most_frequent(value: &str) -> String {
    format!("min_by({value}, {{'n': -n, 'v': {value}}})")
}

fn rfm_features() -> SqlMacro {
    SqlMacro::table(
        "rfm_features",
        &["events"],
        format!(
            "WITH u AS (SELECT user_id, min(event_time) AS first_seen, max(event_time) AS last_seen, \
               count(DISTINCT date) AS frequency, {REVENUE} AS monetary, count(*) AS total_events, \
               {VIEWS} AS views, {CARTS} AS carts, {PURCHASES} AS purchases, \
               count(DISTINCT product_id) AS unique_products, count(DISTINCT category_id) AS unique_categories, \
               count(DISTINCT brand) FILTER (brand <> 'unknown') AS unique_brands, \
               avg(price) AS avg_price, count(DISTINCT user_session) AS sessions \
               FROM {SRC} WHERE user_id IS NOT NULL GROUP BY user_id), \
             cats AS (SELECT user_id, {top} AS top_category \
               FROM (SELECT user_id, split_part(category_code, '.', 1) AS cat, count(*) AS n FROM {SRC} \
                     WHERE user_id IS NOT NULL AND category_code <> 'unknown' GROUP BY user_id, cat) \
               GROUP BY user_id), \
             horizon AS (SELECT max(event_time) AS max_time FROM {SRC}) \
             SELECT u.user_id, epoch(horizon.max_time - u.last_seen) / 86400.0 AS recency, \
             u.frequency, u.monetary, u.total_events, u.views, u.carts, u.purchases, \
             coalesce({conv}, 0.0) AS conversion_rate, \
             CASE WHEN u.carts > 0 THEN greatest(0.0, least(1.0, (u.carts - u.purchases) / u.carts::DOUBLE)) \
               ELSE 0.0 END AS cart_abandonment, \
             u.unique_products, u.unique_categories, u.unique_brands, \
             coalesce(u.avg_price, 0.0) AS avg_price, u.sessions, u.first_seen, u.last_seen, \
             coalesce(cats.top_category, 'unknown') AS top_category \
             FROM u CROSS JOIN horizon LEFT JOIN cats ON cats.user_id = u.user_id \
             ORDER BY u.user_id",
            top = most_frequent("cat"),
            conv = ratio("u.purchases", "u.views"),
        ),
    )
}

fn product_features() -> SqlMacro {
    SqlMacro::table(
        "product_features",
        &["events"],
        format!(
            "WITH p AS (SELECT product_id, {VIEWS} AS views, {CARTS} AS carts, {PURCHASES} AS purchases, \
               count(DISTINCT user_id) AS unique_users, avg(price) AS avg_price, {REVENUE} AS revenue \
               FROM {SRC} WHERE product_id IS NOT NULL GROUP BY product_id), \
             labels AS MATERIALIZED (SELECT product_id, category_code, brand, count(*) AS n FROM {SRC} \
               WHERE product_id IS NOT NULL GROUP BY product_id, category_code, brand), \
             codes AS (SELECT product_id, {top_code} AS category_code \
               FROM (SELECT product_id, category_code, sum(n) AS n FROM labels WHERE category_code <> 'unknown' \
                     GROUP BY product_id, category_code) GROUP BY product_id), \
             brands AS (SELECT product_id, {top_brand} AS brand \
               FROM (SELECT product_id, brand, sum(n) AS n FROM labels WHERE brand <> 'unknown' \
                     GROUP BY product_id, brand) GROUP BY product_id) \
             SELECT p.product_id, split_part(coalesce(codes.category_code, 'unknown'), '.', 1) AS category, \
             coalesce(codes.category_code, 'unknown') AS category_code, coalesce(brands.brand, 'unknown') AS brand, \
             p.views, p.carts, p.purchases, p.unique_users, p.avg_price, p.revenue, \
             {pop} AS popularity \
             FROM p LEFT JOIN codes ON codes.product_id = p.product_id \
             LEFT JOIN brands ON brands.product_id = p.product_id \
             ORDER BY p.product_id",
            top_code = most_frequent("category_code"),
            top_brand = most_frequent("brand"),
            pop = ratio("p.purchases * 3 + p.carts * 2 + p.views", "p.unique_users"),
        ),
    )
}

pub fn macros() -> Vec<SqlMacro> {
    vec![rfm_features(), product_features()]
}
