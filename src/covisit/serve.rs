//! `ecoreco.covisit_recommend(model, sessions, ...)`: one list per session
//! from the item-to-item rows, for a whole table of sessions at once.
//!
//! The macro feeds the aggregate two kinds of rows: the model's rows
//! (`part = 'model'`) and the sessions' events (`part = 'session'`, as
//! `session_rows.sql` reads them). The aggregate rebuilds the
//! [`ItemModel`] from the rows, orders each session's steps and scores it
//! with [`super::session`]; the macro joins the lists back to the session
//! values.

use super::kernel::Kind;
use super::session::{popular_order, Scorer, SessionBlend};
use super::train::VALIDATION_KIND;
use super::train::{event_inputs, read_events};
use super::{Event, ItemModel, Sessions};
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Ranges};
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::{Args, Check, Column, Param, SqlMacro, SqlType, Value};
use crate::budget::{self, Budget};
use std::sync::Arc;

/// One model row as read.
#[derive(Clone, Copy, Debug)]
pub struct ModelRow {
    pub product: i64,
    pub neighbour: Option<i64>,
    pub score: f64,
    /// `None`: the product's `events` row.
    pub kind: Option<Kind>,
}

/// The blend stored in a model's rows over the defaults.
pub fn blend_of_rows(rows: &[(usize, f64)]) -> SessionBlend {
    rows.iter()
        .fold(SessionBlend::default(), |b, &(name, value)| {
            b.with(SessionBlend::NAMES[name], value as f32).unwrap_or(b)
        })
}

/// The item-to-item model of its rows (any order; a neighbour without rows
/// of its own is still a product).
pub fn model_of_rows(rows: &[ModelRow]) -> ItemModel {
    let mut ids: Vec<i64> = rows
        .iter()
        .flat_map(|r| std::iter::once(r.product).chain(r.neighbour))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let n = ids.len();
    let index = |id: i64| ids.binary_search(&id).expect("every id was collected") as u32;
    let mut model = ItemModel {
        cooc: vec![Vec::new(); n],
        seq: vec![Vec::new(); n],
        counts: vec![0; n],
        product_ids: Vec::new(),
    };
    for r in rows {
        let a = index(r.product) as usize;
        match (r.kind, r.neighbour) {
            (None, _) => model.counts[a] = r.score.max(0.0).min(u32::MAX as f64) as u32,
            (Some(kind), Some(b)) => {
                let list = match kind {
                    Kind::Cooccurrence => &mut model.cooc[a],
                    Kind::Sequence => &mut model.seq[a],
                };
                list.push((index(b), r.score as f32));
            }
            (Some(_), None) => {}
        }
    }
    for list in model.cooc.iter_mut().chain(model.seq.iter_mut()) {
        list.sort_unstable_by(|x, y| y.1.total_cmp(&x.1).then(x.0.cmp(&y.0)));
    }
    model.product_ids = ids;
    model
}

#[derive(Default)]
pub struct ServeState {
    model: Vec<ModelRow>,
    /// The stored blend: (index in [`SessionBlend::NAMES`], value).
    blend: Vec<(usize, f64)>,
    events: Vec<Event>,
}

pub struct CovisitRecommend;

/// The session blend's parameters, shared with `evaluate_sessions`: NULL
/// takes the model's choice.
pub fn blend_params() -> Vec<Param> {
    use SqlType::*;
    let doc = |name: &str| -> &'static str {
        match name {
            "sequence_weight" => "the weight of the sequence neighbours, e.g. sequence_weight := 1.0 (NULL: the model's)",
            "cooccurrence_weight" => "the weight of the co-occurrence neighbours, e.g. cooccurrence_weight := 0.5 (NULL: the model's)",
            "repeat_weight" => "the weight of re-offering the session's own products, e.g. repeat_weight := 2.0 (NULL: the model's)",
            _ => "how much each older step weighs relative to the next, e.g. decay := 0.5 (NULL: the model's)",
        }
    };
    SessionBlend::NAMES
        .iter()
        .map(|&name| {
            let max = if name == "decay" { 1.0 } else { 1e6 };
            Param::named(name, Double, Value::Null, doc(name))
                .check(Check::Range(0.0, max))
                .nullable()
        })
        .collect()
}

/// The caller's weights over `base` (NULL keeps base's).
pub fn blend(call: &Args, base: SessionBlend) -> anyhow::Result<SessionBlend> {
    let mut blend = base;
    for name in SessionBlend::NAMES {
        if let Some(v) = call.opt_double(name)? {
            blend = blend.with(name, v as f32).unwrap_or(blend);
        }
    }
    Ok(blend)
}

/// Whether the caller left some weight NULL (so the model's is needed).
pub fn blend_open(call: &Args) -> anyhow::Result<bool> {
    for name in SessionBlend::NAMES {
        if call.is_null(name)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The `k` parameter of list-making functions.
pub fn k_param() -> Param {
    Param::named(
        "k",
        SqlType::BigInt,
        Value::Int(20),
        "the length of every list, e.g. k := 20",
    )
    .check(Check::IntRange(1, 10_000))
}

impl AggregateFunction for CovisitRecommend {
    const NAME: &'static str = "ecoreco_covisit_recommend";
    const FUNCTION: &'static str = "ecoreco.covisit_recommend";
    const EMPTY: &'static str = "the model and the sessions are empty: pass the rows of ecoreco.covisit_train and a table of session events";
    type State = ServeState;
    fn inputs() -> Vec<Column> {
        use SqlType::*;
        let mut inputs = vec![
            Column::new("part", Varchar),
            Column::new("m_product", BigInt),
            Column::new("m_neighbour", BigInt),
            Column::new("m_score", Double),
            Column::new("m_kind", Varchar),
        ];
        inputs.extend(event_inputs());
        inputs
    }
    fn params() -> Vec<Param> {
        let mut params = vec![k_param()];
        params.extend(blend_params());
        params.extend(crate::binding::params::settings_params());
        params
    }
    fn columns() -> Vec<Column> {
        use SqlType::*;
        vec![
            Column::new("session_key", BigInt),
            Column::new("rank", Integer),
            Column::new("product_id", BigInt),
            Column::new("score", Double),
            Column::new("source", Varchar),
        ]
    }
    fn update(
        state: &mut ServeState,
        call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let (part, p, nb, sc, kd) = (
            input.col("part")?,
            input.col("m_product")?,
            input.col("m_neighbour")?,
            input.col("m_score")?,
            input.col("m_kind")?,
        );
        let mut start = rows.start;
        while start < rows.end {
            let is_model = input.str(part, start) == Some("model");
            let mut end = start + 1;
            while end < rows.end && (input.str(part, end) == Some("model")) == is_model {
                end += 1;
            }
            if is_model {
                budget.check(
                    "holding the item-to-item rows",
                    ((state.model.len() + end - start) * std::mem::size_of::<ModelRow>()) as u64,
                    "32 bytes per model row",
                )?;
                budget::reserve(&mut state.model, end - start, "the item-to-item rows")?;
                for row in start..end {
                    let kind_text = input.str(kd, row);
                    if let Some(name) =
                        kind_text.and_then(|k| SessionBlend::NAMES.iter().position(|&n| n == k))
                    {
                        state
                            .blend
                            .push((name, input.f64(sc, row).unwrap_or(f64::NAN)));
                        continue;
                    }
                    if kind_text == Some(VALIDATION_KIND) {
                        continue;
                    }
                    let Some(product) = input.i64(p, row) else {
                        continue;
                    };
                    let kind = match kind_text {
                        Some("cooccurrence") => Some(Kind::Cooccurrence),
                        Some("sequence") => Some(Kind::Sequence),
                        Some("events") => None,
                        other => anyhow::bail!(
                            "the model row of product {product} has kind {}; pass the rows of ecoreco.covisit_train (kinds cooccurrence, sequence, events and the blend's)",
                            other.map_or("NULL".to_string(), |k| format!("'{k}'"))
                        ),
                    };
                    state.model.push(ModelRow {
                        product,
                        neighbour: input.i64(nb, row),
                        score: input.f64(sc, row).unwrap_or(0.0),
                        kind,
                    });
                }
            } else {
                read_events(&mut state.events, input, start..end, &budget)?;
            }
            start = end;
        }
        Ok(())
    }
    fn combine(target: &mut ServeState, source: ServeState) -> anyhow::Result<()> {
        budget::reserve(
            &mut target.model,
            source.model.len(),
            "the item-to-item rows",
        )?;
        budget::reserve(
            &mut target.events,
            source.events.len(),
            "the session events",
        )?;
        target.model.extend(source.model);
        target.blend.extend(source.blend);
        target.events.extend(source.events);
        Ok(())
    }
    fn finalize(state: ServeState, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let budget = Budget::from_setting(call.text("memory_limit")?);
        anyhow::ensure!(
            !state.model.is_empty(),
            "the model has no rows: pass the rows of ecoreco.covisit_train"
        );
        if let Some(&(name, value)) = state
            .blend
            .iter()
            .find(|&&(_, v)| !(v.is_finite() && v >= 0.0))
        {
            anyhow::bail!(
                "the model's {} is {value}; pass the rows of ecoreco.covisit_train",
                SessionBlend::NAMES[name]
            );
        }
        let (k, blend) = (
            call.int("k")? as usize,
            blend(call, blend_of_rows(&state.blend))?,
        );
        let model = model_of_rows(&state.model);
        drop(state.model);
        let sessions = Sessions::build(state.events, &budget)?;
        // The sessions' steps as model indices; products the model does not
        // know are left out of the scoring.
        let to_model: Vec<Option<u32>> = sessions
            .product_ids
            .iter()
            .map(|&id| model.index(id))
            .collect();
        let popular = popular_order(&model.counts);
        let shared = Arc::new((model, sessions, to_model, popular));
        let columns = Self::columns();
        let n = shared.1.len();
        Ok(Arc::new(Ranges::new(n, 256, move |range| {
            let (model, sessions, to_model, popular) = &*shared;
            let mut rows = RowSet::for_columns(&columns);
            let (key, rank, product, score, source) = (
                rows.col::<i64>("session_key")?,
                rows.col::<i32>("rank")?,
                rows.col::<i64>("product_id")?,
                rows.col::<f64>("score")?,
                rows.col::<String>("source")?,
            );
            let mut scorer = Scorer::default();
            for s in range {
                let steps: Vec<u32> = sessions
                    .session(s)
                    .iter()
                    .filter_map(|&p| to_model[p as usize])
                    .collect();
                let last = sessions
                    .session(s)
                    .last()
                    .and_then(|&p| to_model[p as usize]);
                for (r, (b, x, from)) in scorer
                    .recommend(model, popular, &steps, last, &blend, k)
                    .into_iter()
                    .enumerate()
                {
                    rows.put(key, Some(sessions.keys[s]));
                    rows.put(rank, Some(r as i32 + 1));
                    rows.put(product, Some(model.product_ids[b as usize]));
                    rows.put(score, Some(x as f64));
                    rows.put_str(source, Some(from.name()));
                }
            }
            Ok(rows)
        })))
    }
}

pub fn macros() -> Vec<SqlMacro> {
    let params = aggregate::signature::<CovisitRecommend>(
        &["model", "sessions"],
        &super::train::column_params(),
    );
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    // The sessions are read as `events` by session_rows.sql.
    let rows = super::train::session_rows_sql("covisit_recommend")
        .replace("query_table(events)", "query_table(sessions)");
    let body = format!(
        "WITH {rows}, \
         ecoreco_lists AS ({call}), \
         ecoreco_session_names AS (SELECT DISTINCT session_key, ecoreco_session AS session FROM ecoreco_session_rows) \
         SELECT n.session, l.rank, l.product_id, l.score, l.source \
         FROM ecoreco_lists l JOIN ecoreco_session_names n USING (session_key)",
        call = aggregate::rows_sql::<CovisitRecommend>(
            "ecoreco.covisit_recommend",
            &[
                "part",
                "m_product",
                "m_neighbour",
                "m_score",
                "m_kind",
                "session_key",
                "step_order",
                "product_id"
            ],
            &[],
            "(SELECT 'model' AS part, m.product_id::BIGINT AS m_product, m.neighbour_id::BIGINT AS m_neighbour, \
               m.score::DOUBLE AS m_score, m.kind::VARCHAR AS m_kind, NULL::BIGINT AS session_key, \
               NULL::DOUBLE AS step_order, NULL::BIGINT AS product_id FROM query_table(model) m \
              UNION ALL SELECT 'session', NULL, NULL, NULL, NULL, session_key, step_order, product_id \
              FROM ecoreco_session_rows)",
        ),
    );
    vec![SqlMacro::table("covisit_recommend", &params, body)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_back_into_the_model() {
        let row = |product, neighbour, score, kind| ModelRow {
            product,
            neighbour,
            score,
            kind,
        };
        let rows = vec![
            row(20, Some(10), 1.0, Some(Kind::Sequence)),
            row(10, None, 4.0, None),
            row(10, Some(30), 1.0, Some(Kind::Cooccurrence)),
            row(10, Some(20), 3.0, Some(Kind::Cooccurrence)),
            row(20, None, 2.0, None),
        ];
        let m = model_of_rows(&rows);
        // 30 has no rows of its own but is a neighbour: a product.
        assert_eq!(m.product_ids, vec![10, 20, 30]);
        assert_eq!(m.counts, vec![4, 2, 0]);
        assert_eq!(m.cooc[0], vec![(1, 3.0), (2, 1.0)]);
        assert_eq!(m.seq[1], vec![(0, 1.0)]);
        assert!(m.seq[0].is_empty() && m.cooc[2].is_empty());
    }
}
