//! Sessions folded in from their events, one list each: the list of one
//! session (what `ecoreco.recommend_session` returns) and
//! `ecoreco.recommend_sessions(model, sessions)`, the lists of a whole
//! table of sessions in one call, computed side by side over one read of
//! the model and its fold-in.
//!
//! A session is anonymous and live: its products' weights are summed and
//! capped as the trainer's, transformed by the model's confidence, and
//! never decayed (a session happens now, after the model's data).

use super::foldin::{FoldIn, Scratch};
use super::functions::{blend, model_inputs, session_params, weights, ModelInput, MODEL_FEED};
use super::state::{Kind, Touch, UserState, Weights};
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Computed};
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::{Args, Column, Param, SqlType};
use crate::budget;
use crate::model::top_categories_of;
use crate::recommend::serving::{Recommendation, ServingModel};
use anyhow::{bail, ensure, Result};
use rayon::prelude::*;
use std::sync::Arc;

/// The event code of an event type `{t}`, as the macros pass it: 1 view,
/// 2 cart, 3 purchase, 0 any other (ignored), NULL kept NULL.
pub const EVENT_CODE_SQL: &str = "CASE WHEN {t} IS NULL THEN NULL WHEN lower({t}) = 'view' THEN 1 \
     WHEN lower({t}) = 'cart' THEN 2 WHEN lower({t}) = 'purchase' THEN 3 ELSE 0 END";

/// What the lists of sessions need besides the session: the model, its
/// fold-in and the call's weights, k and blend.
pub struct SessionScorer<'a> {
    pub model: &'a ServingModel,
    pub fold: &'a FoldIn,
    pub weights: Weights,
    pub k: usize,
    pub blend: f32,
    /// The serving rules (off: the plain list).
    pub rules: &'a crate::recommend::rules::Rules,
    /// The item-to-item weight; `None`: the model's.
    pub item_weight: Option<f32>,
    /// The model's own list of a session: its length and collaborative
    /// candidates; `None`: those of a list of `k` (`base_length`,
    /// `base_candidates`). The validation asks for the list of its `k`
    /// at every weight at once.
    pub base: Option<(usize, usize)>,
}

impl SessionScorer<'_> {
    /// The list of one session: its products in event order with their
    /// event codes (1 view, 2 cart, 3 purchase; others are ignored).
    /// Products bought in it are not recommended back.
    pub fn list(
        &self,
        products: &[i64],
        codes: &[i64],
        scratch: &mut Scratch,
    ) -> Result<Vec<Recommendation>> {
        let model = self.model;
        let mut user = UserState::new(&[]);
        for (&product, &code) in products.iter().zip(codes) {
            let kind = match code {
                1 => Kind::View,
                2 => Kind::Cart,
                3 => Kind::Purchase,
                _ => continue,
            };
            let item = model.product(product);
            let touch = Touch {
                kind,
                time: None,
                item,
                category: item.map(|i| model.product_category[i as usize]),
            };
            user.apply(&touch, &self.weights, self.fold, model.item_factors())?;
        }
        let mut vector = vec![0f32; model.factors];
        let vector = if user.fold.is_empty() {
            None
        } else {
            user.fold
                .solve(self.fold, model.item_factors(), scratch, &mut vector)?;
            Some(vector.as_slice())
        };
        if !self.rules.is_off() {
            // Under rules, the ruled list alone: the item-to-item part
            // could offer a product a rule forbids.
            return Ok(super::rules::session_list(
                model,
                vector,
                &top_categories_of(&user.categories),
                &user.bought,
                self.k,
                self.blend,
                self.rules,
            ));
        }
        let (length, candidates) = self.base.unwrap_or((
            crate::recommend::items::base_length(model, self.item_weight, self.k),
            crate::recommend::items::base_candidates(self.k),
        ));
        let base = model.recommend_vector_from(
            vector,
            &top_categories_of(&user.categories),
            &user.bought,
            length,
            candidates,
            self.blend,
        );
        // With the model's item-to-item signal: blended with the session's
        // neighbours (crate::recommend::items), through its view, cart and
        // purchase events only (others are ignored, as the replay ignores
        // them).
        let steps: Vec<i64> = products
            .iter()
            .zip(codes)
            .filter(|(_, &c)| (1..=3).contains(&c))
            .map(|(&p, _)| p)
            .collect();
        Ok(crate::recommend::items::session_list(
            model,
            base,
            &steps,
            &user.bought,
            self.item_weight,
            self.k,
        ))
    }
}

/// The inputs of one session: its products and event codes in event
/// order, then the model's rows.
fn session_inputs() -> Vec<Column> {
    use SqlType::*;
    let mut c = vec![
        Column::new("product_ids", List(Box::new(BigInt))),
        Column::new("event_codes", List(Box::new(BigInt))),
    ];
    c.extend(model_inputs());
    c
}

/// The columns of a session's list.
fn list_columns() -> Vec<Column> {
    vec![
        Column::new("rank", SqlType::Integer),
        Column::new("product_id", SqlType::BigInt),
        Column::new("score", SqlType::Double),
        Column::new("source", SqlType::Varchar),
    ]
}

/// One session as the macro passes it: its number in the call, its
/// products and event codes in event order.
type Session = (i64, Vec<i64>, Vec<i64>);

#[derive(Default)]
pub struct SessionsState {
    sessions: Vec<Session>,
    /// Product ids and codes held, for the memory check.
    values: usize,
    model: ModelInput,
}

/// `ecoreco_recommend_sessions`: one list per session of a table, fed one
/// row per session (its number and two lists) plus the model's rows.
pub struct RecommendSessions;

impl AggregateFunction for RecommendSessions {
    const NAME: &'static str = "ecoreco_recommend_sessions";
    const FUNCTION: &'static str = "ecoreco.recommend_sessions";
    const EMPTY: &'static str = crate::model::table::EMPTY_MODEL;
    type State = SessionsState;
    fn inputs() -> Vec<Column> {
        use SqlType::*;
        let mut c = vec![Column::new("session_no", BigInt)];
        c.extend(session_inputs());
        c
    }
    fn params() -> Vec<Param> {
        session_params()
    }
    fn columns() -> Vec<Column> {
        let mut c = vec![Column::new("session_no", SqlType::BigInt)];
        c.extend(list_columns());
        c
    }
    fn update(
        state: &mut SessionsState,
        call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> Result<()> {
        let (number, products, codes, m) = (
            input.col("session_no")?,
            input.col("product_ids")?,
            input.col("event_codes")?,
            input.col("side")?,
        );
        let budget = budget::Budget::from_setting(call.text("memory_limit")?);
        for row in rows {
            if state.model.read(input, row, m)? {
                continue;
            }
            let Some(session) = input.i64(number, row) else {
                continue;
            };
            // The macro's lists never hold NULLs (rows without a product are
            // left out, unknown event types are 0).
            let list = |c: usize| -> Result<Vec<i64>> {
                match input.list::<i64>(c, row) {
                    Some(Ok(v)) => Ok(v.to_vec()),
                    _ => bail!("session {session}'s lists hold a NULL; the macro feeds none"),
                }
            };
            let (products, codes) = (list(products)?, list(codes)?);
            state.values += 2 * products.len();
            budget.check(
                "holding the sessions",
                (state.values * 8 + state.sessions.len() * 56) as u64,
                "16 bytes per event plus 56 per session",
            )?;
            budget::reserve(&mut state.sessions, 1, "the sessions")?;
            state.sessions.push((session, products, codes));
        }
        Ok(())
    }
    fn combine(target: &mut SessionsState, mut source: SessionsState) -> Result<()> {
        if target.sessions.is_empty() {
            std::mem::swap(&mut target.sessions, &mut source.sessions);
        }
        budget::reserve(&mut target.sessions, source.sessions.len(), "the sessions")?;
        target.sessions.extend(source.sessions);
        target.values += source.values;
        target.model.merge(source.model)
    }
    fn finalize(mut state: SessionsState, call: &Args) -> Result<Arc<dyn BlockSource>> {
        let pool = crate::threads::pool(call.int("threads")?)?;
        let rule_rows = std::mem::take(&mut state.model.rules);
        let (model, fold) = state.model.load(call, &pool)?;
        let rules = rule_rows.rules(call, &model)?;
        let scorer = SessionScorer {
            model: &model,
            fold: &fold,
            weights: weights(call)?,
            k: call.int("k")? as usize,
            blend: blend(call, &model)?,
            rules: &rules,
            item_weight: crate::recommend::items::call_weight(call)?,
            base: None,
        };
        let mut sessions = state.sessions;
        sessions.sort_unstable_by_key(|s| s.0);
        ensure!(
            sessions.windows(2).all(|w| w[0].0 != w[1].0),
            "a session came twice; the macro feeds each once"
        );
        let lists: Vec<Vec<Recommendation>> = pool.install(|| {
            sessions
                .par_iter()
                .map_init(Scratch::default, |scratch, (_, products, codes)| {
                    scorer.list(products, codes, scratch)
                })
                .collect::<Result<_>>()
        })?;
        let mut rows = RowSet::for_columns(&Self::columns());
        let (number, rank, product) = (
            rows.col("session_no")?,
            rows.col("rank")?,
            rows.col("product_id")?,
        );
        let (score, source) = (rows.col("score")?, rows.col("source")?);
        for ((session, _, _), recs) in sessions.iter().zip(&lists) {
            for (r, rec) in recs.iter().enumerate() {
                rows.put(number, Some(*session));
                rows.put(rank, Some(r as i32 + 1));
                rows.put(product, Some(model.product_ids[rec.product as usize]));
                rows.put(score, Some(rec.score as f64));
                rows.put_str(source, Some(rec.source.as_str()));
            }
        }
        Ok(Arc::new(Computed::new(rows)))
    }
}

/// The body of `ecoreco.recommend_sessions(model, sessions, session_col,
/// order_col, ...)`: the sessions table's rows grouped into one row per
/// session (its events in `order_col` order, ties in table order; rows
/// without a session or product left out), numbered in session order, fed
/// to the aggregate with the model's rows; the numbers joined back to the
/// session ids.
pub fn sessions_sql() -> String {
    let code = EVENT_CODE_SQL.replace("{t}", "r.event_type::VARCHAR");
    let feed = format!(
        "(SELECT s.session_no, s.product_ids, s.event_codes, NULL::VARCHAR AS side, NULL::BIGINT AS id, NULL::BIGINT AS item, \
         NULL::VARCHAR AS name, NULL::DOUBLE AS value, NULL::FLOAT[] AS factors, NULL::BIGINT AS model_id FROM ecoreco_session_lists s \
         UNION ALL SELECT NULL, NULL, NULL, {model} FROM query_table(model) m \
         WHERE m.side = 'param' OR NOT ecoreco_model_ready(model) \
         UNION ALL SELECT NULL, NULL, NULL, r.* FROM ({rules}) r) f",
        model = MODEL_FEED.join(", "),
        rules = super::rules::rule_feed_sql("ecoreco.recommend_sessions"),
    );
    let inputs = [
        "f.session_no",
        "f.product_ids",
        "f.event_codes",
        "f.side",
        "f.id",
        "f.item",
        "f.name",
        "f.value",
        "f.factors",
        "f.model_id",
    ];
    format!(
        "WITH ecoreco_session_events AS (\
           SELECT struct_extract(r, session_col) AS session_id, r.product_id::BIGINT AS product_id, coalesce({code}, 0) AS code, \
                  struct_extract(r, order_col) AS ecoreco_order, ecoreco_row \
           FROM (SELECT r, row_number() OVER () AS ecoreco_row FROM query_table(sessions) r)), \
         ecoreco_session_lists AS MATERIALIZED (\
           SELECT session_id, row_number() OVER (ORDER BY session_id) AS session_no, \
                  list(product_id ORDER BY ecoreco_order, ecoreco_row) AS product_ids, \
                  list(code ORDER BY ecoreco_order, ecoreco_row) AS event_codes \
           FROM ecoreco_session_events WHERE session_id IS NOT NULL AND product_id IS NOT NULL GROUP BY session_id) \
         SELECT l.session_id, r.rank, r.product_id, r.score, r.source \
         FROM ({rows}) r JOIN ecoreco_session_lists l ON l.session_no = r.session_no \
         ORDER BY r.session_no, r.rank",
        rows = aggregate::rows_sql::<RecommendSessions>(
            "ecoreco.recommend_sessions",
            &inputs,
            &[],
            &feed
        ),
    )
}

/// `ecoreco_recommend_session`: the fold-in of one anonymous session from
/// its events (two lists: products and event codes, 1 view, 2 cart,
/// 3 purchase, 0 other), fed with the model's rows.
#[derive(Default)]
pub struct SessionState {
    session: Option<(Vec<i64>, Vec<i64>)>,
    model: ModelInput,
}

pub struct RecommendSession;
impl AggregateFunction for RecommendSession {
    const NAME: &'static str = "ecoreco_recommend_session";
    const FUNCTION: &'static str = "ecoreco.recommend_session";
    const EMPTY: &'static str = crate::model::table::EMPTY_MODEL;
    type State = SessionState;
    fn inputs() -> Vec<Column> {
        session_inputs()
    }
    fn params() -> Vec<Param> {
        session_params()
    }
    fn columns() -> Vec<Column> {
        list_columns()
    }
    fn update(
        state: &mut SessionState,
        _call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> Result<()> {
        let (products, codes, m) = (
            input.col("product_ids")?,
            input.col("event_codes")?,
            input.col("side")?,
        );
        for row in rows {
            state.model.read(input, row, m)?;
        }
        // The session's lists are the same on every row: kept from the first.
        if state.session.is_none() && input.rows() > 0 {
            let list = |c: usize, name: &str| -> Result<Vec<i64>> {
                match input.list::<i64>(c, 0) {
                    None => bail!("`{name}` is NULL; pass a list, e.g. [1005115, 1004767]"),
                    Some(Err(at)) => bail!(
                        "`{name}` has a NULL at position {}; pass a list without NULLs",
                        at + 1
                    ),
                    Some(Ok(v)) => Ok(v.to_vec()),
                }
            };
            let products = list(products, "product_ids")?;
            let codes = list(codes, "event_types")?;
            ensure!(
                products.len() == codes.len(),
                "product_ids has {} elements and event_types {}; pass one event type per product",
                products.len(),
                codes.len()
            );
            state.session = Some((products, codes));
        }
        Ok(())
    }
    fn combine(target: &mut SessionState, source: SessionState) -> Result<()> {
        if target.session.is_none() {
            target.session = source.session;
        }
        target.model.merge(source.model)
    }
    fn finalize(mut state: SessionState, call: &Args) -> Result<Arc<dyn BlockSource>> {
        let (products, codes) = state
            .session
            .ok_or_else(|| anyhow::anyhow!("{}", Self::EMPTY))?;
        let pool = crate::threads::pool(call.int("threads")?)?;
        let rule_rows = std::mem::take(&mut state.model.rules);
        let (model, fold) = state.model.load(call, &pool)?;
        let rules = rule_rows.rules(call, &model)?;
        let scorer = SessionScorer {
            model: &model,
            fold: &fold,
            weights: weights(call)?,
            k: call.int("k")? as usize,
            blend: blend(call, &model)?,
            rules: &rules,
            item_weight: crate::recommend::items::call_weight(call)?,
            base: None,
        };
        let recs = pool.install(|| scorer.list(&products, &codes, &mut Scratch::default()))?;
        let mut rows = RowSet::for_columns(&Self::columns());
        let (rank, product, score, source) = (
            rows.col("rank")?,
            rows.col("product_id")?,
            rows.col("score")?,
            rows.col("source")?,
        );
        for (r, rec) in recs.iter().enumerate() {
            rows.put(rank, Some(r as i32 + 1));
            rows.put(product, Some(model.product_ids[rec.product as usize]));
            rows.put(score, Some(rec.score as f64));
            rows.put_str(source, Some(rec.source.as_str()));
        }
        Ok(Arc::new(Computed::new(rows)))
    }
}

/// The body of `ecoreco.recommend_session`.
pub fn session_sql() -> String {
    let codes = format!(
        "list_transform(event_types::VARCHAR[], lambda t: {})::BIGINT[]",
        EVENT_CODE_SQL.replace("{t}", "t")
    );
    let mut inputs = vec!["product_ids::BIGINT[]", codes.as_str()];
    inputs.extend(MODEL_FEED);
    aggregate::rows_sql::<RecommendSession>(
        "ecoreco.recommend_session",
        &inputs,
        &[],
        &format!(
            "(SELECT m.side, m.id, m.item, m.name, m.value, m.factors, m.model_id FROM query_table(model) m \
             WHERE m.side = 'param' OR NOT ecoreco_model_ready(model) UNION ALL {}) m",
            super::rules::rule_feed_sql("ecoreco.recommend_session")
        ),
    )
}
