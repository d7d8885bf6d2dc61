//! What the report shows, as the `ecoreco.report` macro aggregated it: the
//! JSON value it hands to `ecoreco_report_write`, read into plain structs.
//! Every list in it is bounded (fixed bins, top-N, a sample of at most
//! 2,000 points), so nothing here grows with the number of events.

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

/// The user features whose per-segment means are the segments' centroids
/// (the default clustering columns of `ecoreco.kmeans_segments`), with the
/// unit shown on the page.
pub const FEATURES: [(&str, &str); 8] = [
    ("recency", "days since last event"),
    ("frequency", "active days"),
    ("monetary", "revenue per user"),
    ("total_events", "events"),
    ("purchases", "purchases"),
    ("conversion_rate", "purchases / views"),
    ("cart_abandonment", "share of carts not bought"),
    ("unique_products", "distinct products"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct Totals {
    pub events: i64,
    pub users: i64,
    pub sessions: i64,
    pub products: i64,
    pub first_event: Option<String>,
    pub last_event: Option<String>,
    pub revenue: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    pub label: String,
    pub n: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Funnel {
    pub views: i64,
    pub carts: i64,
    pub purchases: i64,
    pub viewers: i64,
    pub carters: i64,
    pub buyers: i64,
    pub view_to_cart: Option<f64>,
    pub cart_to_purchase: Option<f64>,
    pub view_to_purchase: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PriceType {
    pub label: String,
    pub priced: i64,
    /// Rows per price bin, `Prices::bins` of them.
    pub counts: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Prices {
    pub max_price: Option<f64>,
    pub bins: usize,
    pub types: Vec<PriceType>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub id: i64,
    pub name: String,
    pub users: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Centroid {
    pub segment: Segment,
    /// Mean of each of [`FEATURES`] over the segment's users.
    pub means: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segments {
    pub sizes: Vec<Segment>,
    /// Rows of the segments table whose user_id repeats (should be 0).
    pub duplicate_users: i64,
    pub centroids: Vec<Centroid>,
    /// Mean of each feature over every segmented user.
    pub overall: Vec<f64>,
}

/// One row of `ecoreco.rfm_segment_summary` over every user of the events.
#[derive(Debug, Clone, PartialEq)]
pub struct RfmSegment {
    pub segment: String,
    pub users: i64,
    /// Share of all users; `None` when there are no users.
    pub share: Option<f64>,
    pub revenue: f64,
    pub revenue_share: Option<f64>,
    /// The members' mean recency (days), frequency (purchases) and monetary
    /// value (USD); `None` for an empty segment.
    pub avg_recency: Option<f64>,
    pub avg_frequency: Option<f64>,
    pub avg_monetary: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreBin {
    pub lo: f64,
    pub hi: f64,
    pub n: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub label: String,
    pub recs: i64,
    pub mean_score: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recommendations {
    pub users: i64,
    pub rows: i64,
    pub model_products: i64,
    pub recommended_products: i64,
    pub score_bins: Vec<ScoreBin>,
    pub categories: Vec<Group>,
    pub brands: Vec<Group>,
    /// Recommendations drawn for the scatter plot (before dropping those
    /// whose product has no price).
    pub sample_size: i64,
    /// (price, score) of the sampled recommendations with a price.
    pub sample: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub model: String,
    pub k: Option<i64>,
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub ndcg: Option<f64>,
    pub map: Option<f64>,
    pub coverage: Option<f64>,
    pub users_evaluated: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportData {
    pub totals: Totals,
    pub event_mix: Vec<Count>,
    /// (hour 0..23, events), all 24 hours.
    pub hours: Vec<(i64, i64)>,
    /// (date, events), every date from the first to the last.
    pub days: Vec<(String, i64)>,
    pub funnel: Funnel,
    pub prices: Prices,
    /// (events in the session, sessions); the last size means "or more".
    pub session_sizes: Vec<(i64, i64)>,
    /// The RFM segments, in the rules' order (Champions first); empty when
    /// the payload has none.
    pub rfm: Vec<RfmSegment>,
    pub segments: Option<Segments>,
    pub recommendations: Option<Recommendations>,
    pub evaluation: Option<Vec<Evaluation>>,
}

/// Largest list the page accepts, a guard against a payload that is not
/// the macro's.
const MAX_ITEMS: usize = 100_000;

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&Value::Null)
}
fn opt_i64(v: &Value, key: &str) -> Option<i64> {
    let f = field(v, key);
    f.as_i64().or_else(|| f.as_f64().map(|x| x as i64))
}
fn i64_or0(v: &Value, key: &str) -> i64 {
    opt_i64(v, key).unwrap_or(0)
}
fn opt_f64(v: &Value, key: &str) -> Option<f64> {
    field(v, key).as_f64()
}
fn opt_str(v: &Value, key: &str) -> Option<String> {
    field(v, key).as_str().map(str::to_string)
}
fn text(v: &Value, key: &str) -> String {
    opt_str(v, key).unwrap_or_else(|| "(missing)".to_string())
}
/// The list under `key`; NULL (DuckDB's `list()` over no rows) is empty.
fn items<'a>(v: &'a Value, key: &str) -> Result<&'a [Value]> {
    match field(v, key) {
        Value::Null => Ok(&[]),
        Value::Array(a) if a.len() <= MAX_ITEMS => Ok(a),
        Value::Array(a) => Err(anyhow!(
            "`{key}` has {} items, more than {MAX_ITEMS}",
            a.len()
        )),
        _ => Err(anyhow!("`{key}` is not a list")),
    }
}

impl ReportData {
    /// Reads the macro's JSON payload.
    pub fn from_json(payload: &str) -> Result<ReportData> {
        let v: Value =
            serde_json::from_str(payload).context("the report data is not valid JSON")?;
        anyhow::ensure!(v.is_object(), "the report data is not a JSON object");
        let t = field(&v, "totals");
        let totals = Totals {
            events: i64_or0(t, "events"),
            users: i64_or0(t, "users"),
            sessions: i64_or0(t, "sessions"),
            products: i64_or0(t, "products"),
            first_event: opt_str(t, "first_event"),
            last_event: opt_str(t, "last_event"),
            revenue: opt_f64(t, "revenue").unwrap_or(0.0),
        };
        let event_mix = items(&v, "event_mix")?
            .iter()
            .map(|e| Count {
                label: text(e, "label"),
                n: i64_or0(e, "events"),
            })
            .collect();
        let hours = items(&v, "hours")?
            .iter()
            .map(|h| (i64_or0(h, "hour"), i64_or0(h, "events")))
            .collect();
        let days = items(&v, "days")?
            .iter()
            .map(|d| (text(d, "day"), i64_or0(d, "events")))
            .collect();
        let f = field(&v, "funnel");
        let funnel = Funnel {
            views: i64_or0(f, "views"),
            carts: i64_or0(f, "carts"),
            purchases: i64_or0(f, "purchases"),
            viewers: i64_or0(f, "viewers"),
            carters: i64_or0(f, "carters"),
            buyers: i64_or0(f, "buyers"),
            view_to_cart: opt_f64(f, "view_to_cart"),
            cart_to_purchase: opt_f64(f, "cart_to_purchase"),
            view_to_purchase: opt_f64(f, "view_to_purchase"),
        };
        let p = field(&v, "prices");
        let bins = opt_i64(p, "bins").unwrap_or(0).clamp(0, 1000) as usize;
        let mut types = Vec::new();
        for t in items(p, "types")? {
            let counts: Vec<i64> = items(t, "counts")?
                .iter()
                .map(|c| c.as_i64().unwrap_or(0))
                .collect();
            anyhow::ensure!(
                counts.len() == bins,
                "a price histogram has {} bins, not {bins}",
                counts.len()
            );
            types.push(PriceType {
                label: text(t, "label"),
                priced: i64_or0(t, "priced"),
                counts,
            });
        }
        let prices = Prices {
            max_price: opt_f64(p, "max_price"),
            bins,
            types,
        };
        let session_sizes = items(&v, "session_sizes")?
            .iter()
            .map(|s| (i64_or0(s, "size"), i64_or0(s, "sessions")))
            .collect();
        Ok(ReportData {
            totals,
            event_mix,
            hours,
            days,
            funnel,
            prices,
            session_sizes,
            rfm: items(&v, "rfm")?
                .iter()
                .map(|r| RfmSegment {
                    segment: text(r, "segment"),
                    users: i64_or0(r, "users"),
                    share: opt_f64(r, "share"),
                    revenue: opt_f64(r, "revenue").unwrap_or(0.0),
                    revenue_share: opt_f64(r, "revenue_share"),
                    avg_recency: opt_f64(r, "avg_recency"),
                    avg_frequency: opt_f64(r, "avg_frequency"),
                    avg_monetary: opt_f64(r, "avg_monetary"),
                })
                .collect(),
            segments: segments(field(&v, "segments"))?,
            recommendations: recommendations(field(&v, "recommendations"))?,
            evaluation: evaluation(&v)?,
        })
    }
}

fn segment(s: &Value) -> Segment {
    Segment {
        id: i64_or0(s, "segment_id"),
        name: text(s, "segment"),
        users: i64_or0(s, "users"),
    }
}

fn means(row: &Value) -> Vec<f64> {
    FEATURES
        .iter()
        .map(|(name, _)| opt_f64(row, name).unwrap_or(f64::NAN))
        .collect()
}

fn segments(s: &Value) -> Result<Option<Segments>> {
    if s.is_null() {
        return Ok(None);
    }
    Ok(Some(Segments {
        sizes: items(s, "sizes")?.iter().map(segment).collect(),
        duplicate_users: i64_or0(s, "duplicate_users"),
        centroids: items(s, "centroids")?
            .iter()
            .map(|c| Centroid {
                segment: segment(c),
                means: means(c),
            })
            .collect(),
        overall: means(field(s, "overall")),
    }))
}

fn groups(r: &Value, key: &str) -> Result<Vec<Group>> {
    Ok(items(r, key)?
        .iter()
        .map(|g| Group {
            label: text(g, "label"),
            recs: i64_or0(g, "recs"),
            mean_score: opt_f64(g, "mean_score").unwrap_or(f64::NAN),
        })
        .collect())
}

fn recommendations(r: &Value) -> Result<Option<Recommendations>> {
    if r.is_null() {
        return Ok(None);
    }
    Ok(Some(Recommendations {
        users: i64_or0(r, "users"),
        rows: i64_or0(r, "rows"),
        model_products: i64_or0(r, "model_products"),
        recommended_products: i64_or0(r, "recommended_products"),
        score_bins: items(r, "score_bins")?
            .iter()
            .map(|b| ScoreBin {
                lo: opt_f64(b, "lo").unwrap_or(0.0),
                hi: opt_f64(b, "hi").unwrap_or(0.0),
                n: i64_or0(b, "n"),
            })
            .collect(),
        categories: groups(r, "categories")?,
        brands: groups(r, "brands")?,
        sample_size: i64_or0(r, "sample_size"),
        sample: items(r, "sample")?
            .iter()
            .filter_map(|p| Some((opt_f64(p, "price")?, opt_f64(p, "score")?)))
            .collect(),
    }))
}

fn evaluation(v: &Value) -> Result<Option<Vec<Evaluation>>> {
    if field(v, "evaluation").is_null() {
        // No evaluation table given (an empty one also reads as NULL:
        // DuckDB's list() over no rows).
        return Ok(None);
    }
    Ok(Some(
        items(v, "evaluation")?
            .iter()
            .map(|e| Evaluation {
                model: text(e, "model"),
                k: opt_i64(e, "k"),
                precision: opt_f64(e, "precision"),
                recall: opt_f64(e, "recall"),
                ndcg: opt_f64(e, "ndcg"),
                map: opt_f64(e, "map"),
                coverage: opt_f64(e, "coverage"),
                users_evaluated: opt_i64(e, "users_evaluated"),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_minimal_payload_and_leaves_optional_parts_out() {
        let data = ReportData::from_json(
            r#"{"totals": {"events": 3, "users": 2, "sessions": 2, "products": 2, "revenue": 5.5,
                "first_event": "2019-10-01 00:00:00", "last_event": "2019-10-02 01:00:00"},
                "event_mix": [{"label": "view", "events": 2}, {"label": "purchase", "events": 1}],
                "hours": [{"hour": 0, "events": 2}, {"hour": 1, "events": 1}],
                "days": [{"day": "2019-10-01", "events": 2}],
                "funnel": {"views": 2, "carts": 0, "purchases": 1, "viewers": 2, "carters": 0, "buyers": 1,
                           "view_to_cart": 0.0, "cart_to_purchase": null, "view_to_purchase": 0.5},
                "prices": {"max_price": 5.5, "bins": 2, "types": [{"label": "view", "priced": 2, "counts": [1, 1]}]},
                "session_sizes": null, "segments": null, "recommendations": null, "evaluation": null}"#,
        )
        .unwrap();
        assert_eq!(data.totals.events, 3);
        assert_eq!(
            data.event_mix[1],
            Count {
                label: "purchase".into(),
                n: 1
            }
        );
        assert_eq!(data.funnel.cart_to_purchase, None);
        assert_eq!(data.prices.types[0].counts, vec![1, 1]);
        assert!(data.session_sizes.is_empty());
        assert!(
            data.segments.is_none() && data.recommendations.is_none() && data.evaluation.is_none()
        );
        assert!(data.rfm.is_empty());
    }

    #[test]
    fn reads_the_rfm_rows_in_their_order_with_empty_segments_as_none() {
        let data = ReportData::from_json(
            r#"{"totals": {"events": 1}, "funnel": {}, "prices": {"bins": 0, "types": []},
                "rfm": [{"segment": "Champions", "users": 3, "share": 0.75, "revenue": 90.5,
                         "revenue_share": 1.0, "avg_recency": 1.5, "avg_frequency": 2.0, "avg_monetary": 30.25},
                        {"segment": "Lost", "users": 1, "share": 0.25, "revenue": 0.0,
                         "revenue_share": 0.0, "avg_recency": 40.0, "avg_frequency": 1.0, "avg_monetary": 0.0},
                        {"segment": "New", "users": 0, "share": 0.0, "revenue": 0.0,
                         "revenue_share": null, "avg_recency": null, "avg_frequency": null, "avg_monetary": null}]}"#,
        )
        .unwrap();
        let names: Vec<&str> = data.rfm.iter().map(|r| r.segment.as_str()).collect();
        assert_eq!(names, ["Champions", "Lost", "New"]);
        assert_eq!(
            data.rfm[0],
            RfmSegment {
                segment: "Champions".into(),
                users: 3,
                share: Some(0.75),
                revenue: 90.5,
                revenue_share: Some(1.0),
                avg_recency: Some(1.5),
                avg_frequency: Some(2.0),
                avg_monetary: Some(30.25),
            }
        );
        assert_eq!(
            (
                data.rfm[2].users,
                data.rfm[2].revenue_share,
                data.rfm[2].avg_monetary
            ),
            (0, None, None)
        );
    }

    #[test]
    fn rejects_what_is_not_the_macros_payload() {
        assert!(ReportData::from_json("not json").is_err());
        assert!(ReportData::from_json("[1]").is_err());
        let bad_bins = r#"{"prices": {"bins": 3, "types": [{"label": "view", "counts": [1]}]}}"#;
        assert!(ReportData::from_json(bad_bins)
            .unwrap_err()
            .to_string()
            .contains("3"));
    }
}
