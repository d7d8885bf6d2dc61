//! The serving rules ([`crate::recommend::rules`]: include and exclude
//! tables, caps per category and brand, price bounds, diversity) in the
//! session functions: the rule tables reach the aggregates as extra rows
//! of the model feed (side `include` or `exclude`, the product_id in `id`,
//! as `recommend`'s query carries them), and a session's list is chosen
//! by [`ServingModel::ruled_list`], the same selection `recommend` makes.

use super::foldin::{FoldIn, Scratch, UserFold};
use crate::binding::Args;
use crate::recommend::rules::{RuleRequest, Rules};
use crate::recommend::serving::{Recommendation, ServingModel};
use anyhow::Result;

/// The rule tables' product_ids as the feed passes them.
#[derive(Default, Debug, Clone)]
pub struct RuleRows {
    /// `Some` when the call names an include table (even an empty one).
    pub include: Option<Vec<i64>>,
    pub exclude: Vec<i64>,
}

impl RuleRows {
    /// Takes a feed row of side `side` with product `id`; false when the
    /// row is not a rule row.
    pub fn read(&mut self, side: &str, id: Option<i64>) -> bool {
        match side {
            "include" => {
                self.include.get_or_insert_with(Vec::new).extend(id);
                true
            }
            "exclude" => {
                self.exclude.extend(id);
                true
            }
            _ => false,
        }
    }

    pub fn merge(&mut self, other: RuleRows) {
        if let Some(include) = other.include {
            self.include.get_or_insert_with(Vec::new).extend(include);
        }
        self.exclude.extend(other.exclude);
    }

    /// The call's rules against `model` (the rule parameters as declared
    /// by [`crate::recommend::rules::rule_params`]).
    pub fn rules(&self, call: &Args, model: &ServingModel) -> Result<Rules> {
        model.rules(&RuleRequest {
            include: self.include.as_deref().map(|p| model.product_indices(p)),
            exclude: model.product_indices(&self.exclude),
            min_price: call.opt_double("min_price")?,
            max_price: call.opt_double("max_price")?,
            max_per_category: call.opt_int("max_per_category")?.map(|n| n as u32),
            max_per_brand: call.opt_int("max_per_brand")?.map(|n| n as u32),
            diversity: call.double("diversity")? as f32,
        })
    }
}

/// A folded-in list under `rules`: the plain list when no rule is set
/// (bit for bit what the session functions gave before rules).
pub fn session_list(
    model: &ServingModel,
    vector: Option<&[f32]>,
    interest: &[(i64, f32)],
    excluded: &[u32],
    k: usize,
    blend: f32,
    rules: &Rules,
) -> Vec<Recommendation> {
    if rules.is_off() {
        return model.recommend_vector(vector, interest, excluded, k, blend);
    }
    let vector = vector.filter(|_| blend < 1.0);
    model.ruled_list(vector, None, interest, excluded, k, blend, rules)
}

/// A replayed user's list under `rules` (not off): their folded-in vector
/// solved afresh (none for a user without a product of the model), then
/// [`session_list`].
#[allow(clippy::too_many_arguments)]
pub fn folded_list(
    model: &ServingModel,
    fold: &FoldIn,
    user: &UserFold,
    (scratch, vector): (&mut Scratch, &mut Vec<f32>),
    interest: &[(i64, f32)],
    excluded: &[u32],
    (k, blend): (usize, f32),
    rules: &Rules,
) -> Result<Vec<Recommendation>> {
    let vector = if user.is_empty() {
        None
    } else {
        vector.resize(fold.factors, 0.0);
        user.solve(fold, model.item_factors(), scratch, vector)?;
        Some(vector.as_slice())
    };
    Ok(session_list(
        model, vector, interest, excluded, k, blend, rules,
    ))
}

/// The feed rows of the rule tables for a session macro, in the model
/// feed's columns (side, id, item, name, value, factors, model_id).
pub fn rule_feed_sql(function: &str) -> String {
    format!(
        "SELECT r.side::VARCHAR, r.id::BIGINT, NULL::BIGINT, NULL::VARCHAR, NULL::DOUBLE, NULL::FLOAT[], NULL::BIGINT \
         FROM query(ecoreco_rule_rows_sql({}, include, exclude)) r",
        crate::binding::sql::quote_literal(function)
    )
}
