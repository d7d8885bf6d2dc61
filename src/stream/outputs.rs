//! What the replay functions return: the window rows (`ecoreco.replay`),
//! every list emitted (`ecoreco.replay_recommendations`, in bounded
//! blocks) and the stream's product counters (`ecoreco.replay_products`).

use super::functions::Output;
use super::replay::{self, Emitted, Event};
use crate::binding::blocks::{BlockSource, Computed, Ranges};
use crate::binding::rows::RowSet;
use crate::binding::{Column, SqlType};
use crate::recommend::serving::ServingModel;
use anyhow::Result;
use std::sync::Arc;

/// A window row's counters (BIGINT), in column order; `result` fills them
/// in this order too.
const WINDOW_COUNTS: [&str; 7] = [
    "events",
    "late_events",
    "ignored_events",
    "active_users",
    "new_users",
    "unknown_users",
    "recommendations",
];
/// A window row's measures (DOUBLE), in column order.
const WINDOW_MEASURES: [&str; 6] = [
    "fallback_share",
    "processing_ms",
    "events_per_s",
    "p50_ms",
    "p95_ms",
    "p99_ms",
];

/// `ecoreco.replay`: one row per window.
pub struct Windows;
impl Output for Windows {
    const NAME: &'static str = "ecoreco_replay_windows";
    const FUNCTION: &'static str = "ecoreco.replay";
    const KEEP_RECOMMENDATIONS: bool = false;
    fn columns() -> Vec<Column> {
        let mut c = vec![
            Column::new("window_start_us", SqlType::BigInt),
            Column::new("window_end_us", SqlType::BigInt),
        ];
        for name in WINDOW_COUNTS {
            c.push(Column::new(name, SqlType::BigInt));
        }
        for name in WINDOW_MEASURES {
            c.push(Column::new(name, SqlType::Double));
        }
        c.push(Column::new("closed_by", SqlType::BigInt));
        c
    }
    fn result(
        outcome: replay::Outcome,
        _: Vec<Event>,
        _: Arc<ServingModel>,
        _: i64,
    ) -> Result<Arc<dyn BlockSource>> {
        let mut rows = RowSet::for_columns(&Self::columns());
        let (start, end, closed) = (
            rows.col("window_start_us")?,
            rows.col("window_end_us")?,
            rows.col("closed_by")?,
        );
        let counts: Vec<_> = WINDOW_COUNTS
            .iter()
            .map(|n| rows.col::<i64>(n))
            .collect::<Result<_>>()?;
        let reals: Vec<_> = WINDOW_MEASURES
            .iter()
            .map(|n| rows.col::<f64>(n))
            .collect::<Result<_>>()?;
        for w in &outcome.windows {
            rows.put(start, Some(w.start));
            rows.put(end, Some(w.end));
            let ints = [
                w.events,
                w.late_events,
                w.ignored_events,
                w.active_users,
                w.new_users,
                w.unknown_users,
                w.recommendations,
            ];
            for (&c, v) in counts.iter().zip(ints) {
                rows.put(c, Some(v as i64));
            }
            let floats = [
                w.fallback_share,
                w.processing_ms,
                w.events_per_s,
                w.p50_ms,
                w.p95_ms,
                w.p99_ms,
            ];
            for (&c, v) in reals.iter().zip(floats) {
                rows.put(c, v);
            }
            rows.put(closed, w.closed_by);
        }
        Ok(Arc::new(Computed::new(rows)))
    }
}

/// Lists per result block of `ecoreco.replay_recommendations`.
const LISTS_PER_BLOCK: usize = 64;

/// `ecoreco.replay_recommendations`: every list emitted, a row per rank.
pub struct Recommendations;
impl Output for Recommendations {
    const NAME: &'static str = "ecoreco_replay_recommendations";
    const FUNCTION: &'static str = "ecoreco.replay_recommendations";
    const KEEP_RECOMMENDATIONS: bool = true;
    fn columns() -> Vec<Column> {
        vec![
            Column::new("event", SqlType::BigInt),
            Column::new("event_time_us", SqlType::BigInt),
            Column::new("window_start_us", SqlType::BigInt),
            Column::new("user_id", SqlType::BigInt),
            Column::new("rank", SqlType::Integer),
            Column::new("product_id", SqlType::BigInt),
            Column::new("score", SqlType::Double),
            Column::new("source", SqlType::Varchar),
            Column::new("latency_ms", SqlType::Double),
        ]
    }
    fn result(
        outcome: replay::Outcome,
        events: Vec<Event>,
        model: Arc<ServingModel>,
        window_us: i64,
    ) -> Result<Arc<dyn BlockSource>> {
        let emitted = outcome.emitted;
        Ok(Arc::new(Ranges::new(
            emitted.len(),
            LISTS_PER_BLOCK,
            move |range| {
                let mut rows = RowSet::for_columns(&Self::columns());
                let (event, time, window, user) = (
                    rows.col("event")?,
                    rows.col("event_time_us")?,
                    rows.col("window_start_us")?,
                    rows.col("user_id")?,
                );
                let (rank, product, score, source) = (
                    rows.col("rank")?,
                    rows.col("product_id")?,
                    rows.col("score")?,
                    rows.col("source")?,
                );
                let latency = rows.col("latency_ms")?;
                for Emitted {
                    position,
                    user: u,
                    recommendations,
                    latency_ns,
                } in &emitted[range]
                {
                    let e = &events[*position];
                    for (r, rec) in recommendations.iter().enumerate() {
                        rows.put(event, Some(e.arrival));
                        rows.put(time, Some(e.time));
                        rows.put(window, Some(super::clock::window_start(e.time, window_us)));
                        rows.put(user, Some(*u));
                        rows.put(rank, Some(r as i32 + 1));
                        rows.put(product, Some(model.product_ids[rec.product as usize]));
                        rows.put(score, Some(rec.score as f64));
                        rows.put_str(source, Some(rec.source.as_str()));
                        rows.put(latency, Some(*latency_ns as f64 / 1e6));
                    }
                }
                Ok(rows)
            },
        )))
    }
}

/// `ecoreco.replay_products`: the stream's counters per product.
pub struct Products;
impl Output for Products {
    const NAME: &'static str = "ecoreco_replay_products";
    const FUNCTION: &'static str = "ecoreco.replay_products";
    const KEEP_RECOMMENDATIONS: bool = false;
    fn columns() -> Vec<Column> {
        ["product_id", "views", "carts", "purchases"]
            .iter()
            .map(|n| Column::new(n, SqlType::BigInt))
            .collect()
    }
    fn result(
        outcome: replay::Outcome,
        _: Vec<Event>,
        _: Arc<ServingModel>,
        _: i64,
    ) -> Result<Arc<dyn BlockSource>> {
        let mut p: Vec<_> = outcome.products.into_iter().collect();
        p.sort_unstable_by_key(|x| x.0);
        let mut rows = RowSet::for_columns(&Self::columns());
        let (id, views, carts, purchases) = (
            rows.col("product_id")?,
            rows.col("views")?,
            rows.col("carts")?,
            rows.col("purchases")?,
        );
        for (product, c) in p {
            rows.put(id, Some(product));
            rows.put(views, Some(c.views as i64));
            rows.put(carts, Some(c.carts as i64));
            rows.put(purchases, Some(c.purchases as i64));
        }
        Ok(Arc::new(Computed::new(rows)))
    }
}
