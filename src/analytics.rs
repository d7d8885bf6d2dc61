//! Stage 2: exploratory analytics over a cleaned events table, as SQL macros.
//!
//! Every macro takes the cleaned events table (the output of
//! `ecoreco.read_events` / `ecoreco.clean_events`, or any table with those
//! columns) as its first argument and reads it through `query_table`, so the
//! caller's TEMP tables work and no name is pasted into SQL. The bodies are
//! plain DuckDB SQL with as few scans as the result allows (one for most; a
//! per-user and a per-session aggregation for `funnel`), later steps working
//! on aggregated rows, and window functions only over aggregated rows (never
//! over the events). benches/analytics.py times each against the same SQL
//! written by hand.
//!
//! Conventions shared by all of them (and documented in docs/analytics.md):
//! - views / carts / purchases count rows whose event_type is exactly
//!   `view` / `cart` / `purchase`; other event types (`remove_from_cart` in
//!   the cosmetics files) count in totals only;
//! - revenue is the sum of `price` over purchase rows (a purchase with a NULL,
//!   i.e. missing or non-positive, price adds nothing), 0 when there is none;
//! - a ratio whose denominator is 0 is NULL (DuckDB 1.5+ would give inf);
//! - a session is a non-NULL `user_session` value; rows without one are left
//!   out of every session figure (and kept in every other one);
//! - choice parameters (`by`) are checked when the query is bound, so a bad
//!   value is an error even on an empty table.

use crate::binding::SqlMacro;

/// The events table argument, as every macro reads it.
pub(crate) const SRC: &str = "query_table(events)";

/// Counts of the three funnel event types, as aggregate expressions.
pub(crate) const VIEWS: &str = "count(*) FILTER (event_type = 'view')";
pub(crate) const CARTS: &str = "count(*) FILTER (event_type = 'cart')";
pub(crate) const PURCHASES: &str = "count(*) FILTER (event_type = 'purchase')";
/// Revenue: the sum of prices of purchase rows, 0 when there is none.
pub(crate) const REVENUE: &str = "coalesce(sum(price) FILTER (event_type = 'purchase'), 0.0)";

/// A one-row table-function call that fails while the query is bound when
/// `valid` (a constant expression over macro parameters) is not true. Put it
/// in a FROM list: it checks arguments before any row is read, so the error
/// also comes on an empty table (a per-row `error()` would never run there).
pub(crate) fn guard(valid: &str, message: &str) -> String {
    format!("range(CASE WHEN {valid} THEN 1 ELSE error({message}) END) AS ecoreco_guard(ok)")
}

/// The message for a choice parameter outside its allowed values, with the
/// value received. `param` is the parameter as SQL (`"by"`: BY is a keyword).
pub(crate) fn choice_error(function: &str, param: &str, allowed: &[&str]) -> String {
    format!(
        "'ecoreco.{function}: {name} must be one of {}, got ' || coalesce('''' || {param}::VARCHAR || '''', 'NULL')",
        allowed.join(", "),
        name = param.trim_matches('"'),
    )
}

/// A guard that `param` is one of `allowed` (compared case-insensitively).
pub(crate) fn choice_guard(function: &str, param: &str, allowed: &[&str]) -> String {
    let list: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
    guard(
        &format!("lower({param}::VARCHAR) IN ({})", list.join(", ")),
        &choice_error(function, param, allowed),
    )
}

/// `x / y` as DOUBLE, NULL when `y` is 0 or NULL.
pub(crate) fn ratio(x: &str, y: &str) -> String {
    format!("(({x})::DOUBLE / nullif({y}, 0))")
}

fn event_mix() -> SqlMacro {
    SqlMacro::table(
        "event_mix",
        &["events"],
        format!(
            "SELECT event_type, count(*) AS events, \
             count(*) / sum(count(*)) OVER () AS share, \
             count(DISTINCT user_id) AS users \
             FROM {SRC} GROUP BY event_type ORDER BY count(*) DESC, event_type"
        ),
    )
}

/// The raw columns in file order, with what counts as missing after cleaning.
const MISSING: [(&str, &str); 9] = [
    ("event_time", "count(*) - count(event_time)"),
    ("event_type", "count(*) - count(event_type)"),
    ("product_id", "count(*) - count(product_id)"),
    ("category_id", "count(*) - count(category_id)"),
    (
        "category_code",
        "count(*) FILTER (category_code IS NULL OR category_code = 'unknown')",
    ),
    (
        "brand",
        "count(*) FILTER (brand IS NULL OR brand = 'unknown')",
    ),
    ("price", "count(*) - count(price)"),
    ("user_id", "count(*) - count(user_id)"),
    ("user_session", "count(*) - count(user_session)"),
];

fn missing_values() -> SqlMacro {
    let names: Vec<String> = MISSING.iter().map(|(n, _)| format!("'{n}'")).collect();
    let counts: Vec<&str> = MISSING.iter().map(|(_, c)| *c).collect();
    SqlMacro::table(
        "missing_values",
        &["events"],
        format!(
            "SELECT c.names[i.i] AS column_name, c.missing[i.i] AS missing, \
             100.0 * {pct} AS missing_pct \
             FROM (SELECT count(*) AS n_rows, [{names}] AS names, [{counts}] AS missing FROM {SRC}) c, \
             range(1, {n}) AS i(i) ORDER BY i.i",
            pct = ratio("c.missing[i.i]", "c.n_rows"),
            names = names.join(", "),
            counts = counts.join(", "),
            n = MISSING.len() + 1,
        ),
    )
}

fn activity() -> SqlMacro {
    let allowed = ["hour", "day", "dayofweek", "date", "hour_bucket"];
    SqlMacro::table(
        "activity",
        &["events", "\"by\" := 'hour'"],
        format!(
            // The grouping key is an INTEGER whatever `by` is (dates as days
            // since 1970-01-01): the CASE on a constant folds away before
            // execution, and formatting happens on the few result rows.
            "SELECT CASE lower(\"by\"::VARCHAR) \
               WHEN 'date' THEN (DATE '1970-01-01' + a.bucket_key)::VARCHAR \
               WHEN 'hour_bucket' THEN (TIMESTAMP '1970-01-01' + to_hours(a.bucket_key))::VARCHAR \
               WHEN 'dayofweek' THEN a.bucket_key::VARCHAR \
               ELSE lpad(a.bucket_key::VARCHAR, 2, '0') END AS bucket, \
             a.n_events AS events, a.n_users AS users, a.n_sessions AS sessions, \
             a.n_views AS views, a.n_carts AS carts, a.n_purchases AS purchases, a.revenue \
             FROM (SELECT CASE lower(\"by\"::VARCHAR) WHEN 'hour' THEN hour WHEN 'day' THEN day \
                     WHEN 'dayofweek' THEN dayofweek WHEN 'date' THEN (date - DATE '1970-01-01')::INTEGER \
                     WHEN 'hour_bucket' THEN date_diff('hour', TIMESTAMP '1970-01-01', hour_bucket)::INTEGER \
                     ELSE error({msg}) END AS bucket_key, \
                   count(*) AS n_events, count(DISTINCT user_id) AS n_users, \
                   count(DISTINCT user_session) AS n_sessions, \
                   {VIEWS} AS n_views, {CARTS} AS n_carts, {PURCHASES} AS n_purchases, {REVENUE} AS revenue \
                   FROM {SRC} GROUP BY bucket_key) a, {guard} \
             ORDER BY a.bucket_key NULLS LAST",
            msg = choice_error("activity", "\"by\"", &allowed),
            guard = choice_guard("activity", "\"by\"", &allowed),
        ),
    )
}

fn price_stats() -> SqlMacro {
    SqlMacro::table(
        "price_stats",
        &["events"],
        format!(
            "SELECT s.event_type, s.n_rows AS \"rows\", s.priced, s.mean, s.std, s.min_price AS \"min\", \
             s.q[1] AS p25, s.q[2] AS median, s.q[3] AS p75, s.max_price AS \"max\" \
             FROM (SELECT event_type, count(*) AS n_rows, count(price) AS priced, avg(price) AS mean, \
                   stddev_samp(price) AS std, min(price) AS min_price, max(price) AS max_price, \
                   quantile_cont(price, [0.25, 0.5, 0.75]) AS q \
                   FROM {SRC} GROUP BY event_type) s \
             ORDER BY s.n_rows DESC, s.event_type"
        ),
    )
}

fn session_stats() -> SqlMacro {
    SqlMacro::table(
        "session_stats",
        &["events"],
        format!(
            "SELECT x.sessions, x.n_mean AS events_per_session_mean, x.n_std AS events_per_session_std, \
             x.n_min AS events_per_session_min, x.n_q[1] AS events_per_session_p25, \
             x.n_q[2] AS events_per_session_median, x.n_q[3] AS events_per_session_p75, \
             x.n_max AS events_per_session_max, x.duration_mean_s, x.duration_median_s, \
             x.purchase_session_share \
             FROM (SELECT count(*) AS sessions, avg(s.n) AS n_mean, stddev_samp(s.n) AS n_std, \
                   min(s.n) AS n_min, max(s.n) AS n_max, quantile_cont(s.n, [0.25, 0.5, 0.75]) AS n_q, \
                   avg(s.duration) AS duration_mean_s, quantile_cont(s.duration, 0.5) AS duration_median_s, \
                   {share} AS purchase_session_share \
                   FROM (SELECT count(*) AS n, epoch(max(event_time) - min(event_time)) AS duration, \
                         bool_or(event_type = 'purchase') AS bought \
                         FROM {SRC} WHERE user_session IS NOT NULL GROUP BY user_session) s) x",
            share = ratio("count(*) FILTER (s.bought)", "count(*)"),
        ),
    )
}

fn funnel() -> SqlMacro {
    // Two aggregations of the same table, per user and per session (faster
    // than one GROUPING SETS aggregation in DuckDB 1.5 and 2.0), each
    // reduced to one row.
    SqlMacro::table(
        "funnel",
        &["events"],
        format!(
            "WITH per_user AS (SELECT user_id, {VIEWS} AS v, {CARTS} AS c, {PURCHASES} AS p \
               FROM {SRC} GROUP BY user_id), \
             per_session AS (SELECT {CARTS} AS c, {PURCHASES} AS p \
               FROM {SRC} WHERE user_session IS NOT NULL GROUP BY user_session), \
             fu AS (SELECT coalesce(sum(v), 0)::BIGINT AS views, coalesce(sum(c), 0)::BIGINT AS carts, \
               coalesce(sum(p), 0)::BIGINT AS purchases, \
               count(*) FILTER (user_id IS NOT NULL AND v > 0) AS viewers, \
               count(*) FILTER (user_id IS NOT NULL AND c > 0) AS carters, \
               count(*) FILTER (user_id IS NOT NULL AND p > 0) AS buyers, \
               count(*) FILTER (user_id IS NOT NULL AND v > 0 AND c > 0) AS viewers_carted, \
               count(*) FILTER (user_id IS NOT NULL AND c > 0 AND p > 0) AS carters_bought, \
               count(*) FILTER (user_id IS NOT NULL AND v > 0 AND p > 0) AS viewers_bought \
               FROM per_user), \
             fs AS (SELECT count(*) AS sessions, count(*) FILTER (c > 0) AS cart_sessions, \
               count(*) FILTER (c > 0 AND p = 0) AS cart_sessions_without_purchase, \
               count(*) FILTER (p > 0) AS purchase_sessions, \
               count(*) FILTER (p > 0 AND c = 0) AS purchase_sessions_without_cart \
               FROM per_session) \
             SELECT fu.views, fu.carts, fu.purchases, fu.viewers, fu.carters, fu.buyers, \
             {v2c} AS view_to_cart, {c2p} AS cart_to_purchase, {v2p} AS view_to_purchase, \
             fs.sessions, fs.cart_sessions, fs.purchase_sessions, {abandon} AS cart_abandonment, \
             fs.purchase_sessions_without_cart, {nocart} AS purchase_sessions_without_cart_share \
             FROM fu, fs",
            v2c = ratio("fu.viewers_carted", "fu.viewers"),
            c2p = ratio("fu.carters_bought", "fu.carters"),
            v2p = ratio("fu.viewers_bought", "fu.viewers"),
            abandon = ratio("fs.cart_sessions_without_purchase", "fs.cart_sessions"),
            nocart = ratio("fs.purchase_sessions_without_cart", "fs.purchase_sessions"),
        ),
    )
}

/// Per product (product_id not NULL), in one scan: event counts, revenue and
/// the most frequent non-'unknown' category_code and brand (ties broken
/// alphabetically, 'unknown' when there is none). The scan groups by
/// (product, category_code, brand), which leaves a few rows per product;
/// everything after works on those.
pub(crate) fn product_totals() -> String {
    format!(
        "WITH l1 AS MATERIALIZED (SELECT product_id, category_code, brand, count(*) AS n, \
           {VIEWS} AS v, {CARTS} AS c, {PURCHASES} AS p, sum(price) FILTER (event_type = 'purchase') AS rev \
           FROM {SRC} WHERE product_id IS NOT NULL GROUP BY product_id, category_code, brand), \
         codes AS (SELECT product_id, min_by(category_code, {{'n': -n, 'v': category_code}}) AS category_code \
           FROM (SELECT product_id, category_code, sum(n) AS n FROM l1 WHERE category_code <> 'unknown' \
           GROUP BY product_id, category_code) GROUP BY product_id), \
         brands AS (SELECT product_id, min_by(brand, {{'n': -n, 'v': brand}}) AS brand \
           FROM (SELECT product_id, brand, sum(n) AS n FROM l1 WHERE brand <> 'unknown' \
           GROUP BY product_id, brand) GROUP BY product_id), \
         totals AS (SELECT product_id, sum(v)::BIGINT AS views, sum(c)::BIGINT AS carts, sum(p)::BIGINT AS purchases, \
           coalesce(sum(rev), 0.0) AS revenue FROM l1 GROUP BY product_id) \
         SELECT t.product_id, coalesce(codes.category_code, 'unknown') AS category_code, \
           coalesce(brands.brand, 'unknown') AS brand, t.views, t.carts, t.purchases, t.revenue \
         FROM totals t LEFT JOIN codes ON codes.product_id = t.product_id \
         LEFT JOIN brands ON brands.product_id = t.product_id"
    )
}

fn top_products() -> SqlMacro {
    let allowed = ["views", "carts", "purchases", "revenue"];
    SqlMacro::table(
        "top_products",
        &["events", "\"by\" := 'views'", "k := 10"],
        format!(
            "WITH prod AS ({totals}), \
             ranked AS (SELECT *, rank() OVER (ORDER BY views DESC) AS views_rank, \
               rank() OVER (ORDER BY purchases DESC) AS purchases_rank, \
               CASE lower(\"by\"::VARCHAR) WHEN 'views' THEN views WHEN 'carts' THEN carts \
                 WHEN 'purchases' THEN purchases WHEN 'revenue' THEN revenue END AS sort_key \
               FROM prod), \
             best AS (SELECT * FROM ranked ORDER BY sort_key DESC, product_id LIMIT greatest(k::BIGINT, 0)) \
             SELECT product_id, category_code, brand, views, carts, purchases, revenue, \
             coalesce({v2p}, 0.0) AS view_to_purchase, \
             row_number() OVER (ORDER BY sort_key DESC, product_id) AS rank, \
             views_rank, purchases_rank, views_rank - purchases_rank AS gap \
             FROM best, {by_guard}, {k_guard} ORDER BY rank",
            totals = product_totals(),
            v2p = ratio("purchases", "views"),
            by_guard = choice_guard("top_products", "\"by\"", &allowed),
            k_guard = guard(
                "k IS NOT NULL AND k::DOUBLE >= 1 AND k::DOUBLE = floor(k::DOUBLE)",
                "'ecoreco.top_products: k must be a positive integer, got ' || coalesce(k::VARCHAR, 'NULL')"
            )
            .replace("ecoreco_guard(ok)", "ecoreco_guard_k(ok)"),
        ),
    )
}

pub fn macros() -> Vec<SqlMacro> {
    vec![
        event_mix(),
        missing_values(),
        activity(),
        price_stats(),
        session_stats(),
        funnel(),
        top_products(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_macro_reads_its_table_argument_only_through_query_table() {
        let all: Vec<SqlMacro> = macros()
            .into_iter()
            .chain(crate::features::macros())
            .collect();
        let mut names: Vec<&str> = all.iter().map(|m| m.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len(), "duplicate macro names");
        for m in &all {
            assert!(m.table, "{} is a table macro", m.name);
            assert_eq!(m.params[0], "events", "{}: the table comes first", m.name);
            assert!(m.body.contains(SRC), "{} reads query_table(events)", m.name);
        }
    }

    #[test]
    fn choice_errors_name_the_parameter_without_quotes() {
        let msg = choice_error("activity", "\"by\"", &["hour", "date"]);
        assert!(
            msg.starts_with("'ecoreco.activity: by must be one of hour, date, got '"),
            "{msg}"
        );
        assert!(choice_guard("activity", "\"by\"", &["hour"])
            .contains("lower(\"by\"::VARCHAR) IN ('hour')"));
    }
}
