//! `ecoreco.evaluate_sessions(events, split := 0.7, k := 20, ...)`: the
//! next-click protocol of session-based recommendation, on any table with a
//! session column.
//!
//! Sessions are split in time by their first event (`split`: the share of
//! sessions, earliest first, that train, or a timestamp). Every test
//! session is revealed step by step (repeats of one product in a row are one
//! step); after each prefix every recommender ranks `k` products and the
//! next step is the target. HR@k is the share of prefixes whose target is
//! in the list, MRR@k the mean of 1/rank (0 when absent); `targets = 'new'`
//! counts only targets not yet in the prefix. A target never seen in
//! training stays in the denominators: no recommender can find it.
//!
//! Recommenders: `ecoreco` (the item-to-item model of `covisit_train`
//! with the same parameters, through [`crate::covisit::session`], with the
//! blend covisit_train chooses on the latest training sessions unless the
//! caller gives the weights),
//! `ar` (association rules: co-occurrence in whole sessions with the last
//! product, by count), `sr` (sequential rules: products after the last
//! product within 10 steps, 1/distance), `sknn` (the 100 most similar of
//! the 1,000 most recent sessions sharing a product, cosine on product
//! sets) and `popular` (most frequent products in training).

use super::baselines::SessionIndex;
use crate::binding::aggregate::{self, AggregateFunction};
use crate::binding::blocks::{BlockSource, Computed};
use crate::binding::rows::{InputChunk, RowSet};
use crate::binding::{Args, Column, Param, SqlMacro, SqlType};
use crate::budget::{self, Budget};
use crate::covisit::choose::{self, Tally, UNKNOWN};
use crate::covisit::kernel::{self, Windows};
use crate::covisit::serve::{blend, blend_open, blend_params, k_param};
use crate::covisit::session::{popular_order, Scorer, SessionBlend};
use crate::covisit::train::{counting_params, read_events, windows};
use crate::covisit::{Event, ItemModel, Sessions};
use crate::progress::Progress;
use rayon::prelude::*;
use std::sync::Arc;

/// The baselines' fixed settings, as the literature describes them.
const SR_WINDOW: usize = 10;
const SKNN_SAMPLE: usize = 1000;
const SKNN_NEIGHBOURS: usize = 100;

pub const RECOMMENDERS: [&str; 5] = ["ecoreco", "ar", "sr", "sknn", "popular"];

#[derive(Default)]
pub struct SessionEvalState {
    train: Vec<Event>,
    test: Vec<Event>,
}

pub struct EvaluateSessions;

fn columns() -> Vec<Column> {
    use SqlType::*;
    vec![
        Column::new("model", Varchar),
        Column::new("targets", Varchar),
        Column::new("k", Integer),
        Column::new("hit_rate", Double),
        Column::new("mrr", Double),
        Column::new("prefixes", BigInt),
        Column::new("train_sessions", BigInt),
        Column::new("test_sessions", BigInt),
    ]
}

/// The recommenders, trained on the training sessions.
pub struct Recommenders {
    model: ItemModel,
    rules: ItemModel,
    index: SessionIndex,
    popular: Vec<u32>,
    blend: SessionBlend,
    k: usize,
}

impl Recommenders {
    pub fn train(
        train: &Sessions,
        windows: Windows,
        neighbours: usize,
        blend: SessionBlend,
        k: usize,
        threads: usize,
        budget: &Budget,
    ) -> anyhow::Result<Self> {
        let model = ItemModel::train(train, windows, neighbours, threads, budget)?;
        // AR counts over whole sessions, SR within 10 steps: one count.
        let rules = ItemModel::train(
            train,
            Windows {
                cooc: 0,
                seq: SR_WINDOW,
            },
            k,
            threads,
            budget,
        )?;
        let popular = popular_order(&model.counts);
        Ok(Recommenders {
            model,
            rules,
            index: SessionIndex::new(train),
            popular,
            blend,
            k,
        })
    }

    /// Each recommender's list for a prefix (steps as training indices,
    /// [`UNKNOWN`] for products training never saw), in [`RECOMMENDERS`]
    /// order.
    fn lists(&self, scorer: &mut Scorer, prefix: &[u32]) -> [Vec<u32>; 5] {
        let known: Vec<u32> = prefix.iter().copied().filter(|&p| p != UNKNOWN).collect();
        let last = prefix.last().copied().filter(|&p| p != UNKNOWN);
        let rule = |lists: &[kernel::Neighbours]| -> Vec<u32> {
            last.map_or_else(Vec::new, |p| {
                lists[p as usize].iter().take(self.k).map(|x| x.0).collect()
            })
        };
        let ecoreco = scorer
            .recommend(
                &self.model,
                &self.popular,
                &known,
                last,
                &self.blend,
                self.k,
            )
            .into_iter()
            .map(|x| x.0)
            .collect();
        [
            ecoreco,
            rule(&self.rules.cooc),
            rule(&self.rules.seq),
            self.index
                .sknn(&known, SKNN_SAMPLE, SKNN_NEIGHBOURS, self.k),
            self.popular.iter().copied().take(self.k).collect(),
        ]
    }

    /// The tallies of every recommender over the test sessions.
    pub fn evaluate(&self, test: &[Vec<u32>]) -> [Tally; 5] {
        test.par_iter()
            .map_init(Scorer::default, |scorer, session| {
                let mut tallies = [Tally::default(); 5];
                for t in 1..session.len() {
                    let (prefix, target) = (&session[..t], session[t]);
                    let new = target == UNKNOWN || !prefix.contains(&target);
                    let lists = self.lists(scorer, prefix);
                    for (tally, list) in tallies.iter_mut().zip(&lists) {
                        tally.add(list, target, new);
                    }
                }
                tallies
            })
            .reduce(
                || [Tally::default(); 5],
                |a, b| std::array::from_fn(|i| a[i].merge(b[i])),
            )
    }
}

/// The test sessions' steps as training indices ([`UNKNOWN`] when new).
fn map_test(test: &Sessions, train: &Sessions) -> Vec<Vec<u32>> {
    let to_train: Vec<u32> = test
        .product_ids
        .iter()
        .map(|id| {
            train
                .product_ids
                .binary_search(id)
                .map_or(UNKNOWN, |i| i as u32)
        })
        .collect();
    (0..test.len())
        .map(|s| {
            test.session(s)
                .iter()
                .map(|&p| to_train[p as usize])
                .collect()
        })
        .collect()
}

impl AggregateFunction for EvaluateSessions {
    const NAME: &'static str = "ecoreco_evaluate_sessions";
    const FUNCTION: &'static str = "ecoreco.evaluate_sessions";
    const EMPTY: &'static str =
        "the events table is empty: nothing to evaluate; pass a table with sessions of products";
    type State = SessionEvalState;
    fn inputs() -> Vec<Column> {
        let mut inputs = vec![Column::new("part", SqlType::Varchar)];
        inputs.extend(crate::covisit::train::event_inputs());
        inputs
    }
    fn params() -> Vec<Param> {
        let mut params = vec![k_param()];
        params.extend(counting_params());
        params.extend(blend_params());
        params.extend(crate::binding::params::settings_params());
        params
    }
    fn columns() -> Vec<Column> {
        columns()
    }
    fn update(
        state: &mut SessionEvalState,
        call: &Args,
        input: &InputChunk,
        rows: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let part = input.col("part")?;
        for (is_train, run) in super::part_runs(input, part, rows) {
            let events = if is_train {
                &mut state.train
            } else {
                &mut state.test
            };
            read_events(events, input, run, &budget)?;
        }
        Ok(())
    }
    fn combine(target: &mut SessionEvalState, source: SessionEvalState) -> anyhow::Result<()> {
        budget::reserve(&mut target.train, source.train.len(), "the session events")?;
        budget::reserve(&mut target.test, source.test.len(), "the session events")?;
        target.train.extend(source.train);
        target.test.extend(source.test);
        Ok(())
    }
    fn finalize(state: SessionEvalState, call: &Args) -> anyhow::Result<Arc<dyn BlockSource>> {
        let budget = Budget::from_setting(call.text("memory_limit")?);
        let progress = Progress::new(call.function(), call.text("progress")?);
        let threads = call.int("threads")?;
        let k = call.int("k")? as usize;
        anyhow::ensure!(
            !state.train.is_empty(),
            "no session starts before the split: move the split later"
        );
        anyhow::ensure!(
            !state.test.is_empty(),
            "no session starts after the split: move the split earlier"
        );
        let (windows, neighbours) = (windows(call)?, call.int("neighbours")? as usize);
        let open = blend_open(call)?;
        let (tallies, n_train, n_test) = crate::threads::pool(threads)?.install(|| {
            let train = Sessions::build(state.train, &budget)?;
            let test = Sessions::build(state.test, &budget)?;
            // The blend covisit_train would store for these sessions, with
            // the caller's weights over it.
            let chosen = if open {
                choose::choose(&train, windows, neighbours, threads as usize, &budget)?.blend
            } else {
                SessionBlend::default()
            };
            let blend = blend(call, chosen)?;
            let recommenders = Recommenders::train(
                &train,
                windows,
                neighbours,
                blend,
                k,
                threads as usize,
                &budget,
            )?;
            progress.say(format!(
                "{} training sessions; evaluating {} test sessions",
                train.len(),
                test.len()
            ));
            let steps = map_test(&test, &train);
            anyhow::Ok((recommenders.evaluate(&steps), train.len(), test.len()))
        })?;
        let mut rows = RowSet::for_columns(&columns());
        for (name, tally) in RECOMMENDERS.iter().zip(tallies) {
            for (class, targets) in ["all", "new"].iter().enumerate() {
                let n = tally.prefixes[class];
                let mean = |x: f64| (n > 0).then(|| x / n as f64);
                let c = rows.col::<String>("model")?;
                rows.put_str(c, Some(name));
                let c = rows.col::<String>("targets")?;
                rows.put_str(c, Some(targets));
                let c = rows.col("k")?;
                rows.put(c, Some(k as i32));
                let c = rows.col("hit_rate")?;
                rows.put(c, mean(tally.hits[class] as f64));
                let c = rows.col("mrr")?;
                rows.put(c, mean(tally.reciprocal[class]));
                let c = rows.col("prefixes")?;
                rows.put(c, Some(n as i64));
                let c = rows.col("train_sessions")?;
                rows.put(c, Some(n_train as i64));
                let c = rows.col("test_sessions")?;
                rows.put(c, Some(n_test as i64));
            }
        }
        Ok(Arc::new(Computed::new(rows)) as Arc<dyn BlockSource>)
    }
}

pub fn macros() -> Vec<SqlMacro> {
    let params = aggregate::signature::<EvaluateSessions>(
        &["events", "split := 0.7"],
        &crate::covisit::train::column_params(),
    );
    let params: Vec<&str> = params.iter().map(String::as_str).collect();
    let body = format!(
        "WITH {rows}, {split} {call}",
        rows = crate::covisit::train::session_rows_sql("evaluate_sessions"),
        split = include_str!("../../sql/macros/evaluate_sessions_split.sql"),
        call = aggregate::rows_sql::<EvaluateSessions>(
            "ecoreco.evaluate_sessions",
            &["part", "session_key", "step_order", "product_id"],
            &[],
            "(SELECT CASE WHEN s.started < c.at THEN 'train' ELSE 'test' END AS part, r.* \
             FROM ecoreco_session_rows r JOIN ecoreco_session_start s USING (session_key), \
             ecoreco_session_cut c)",
        ),
    );
    vec![SqlMacro::table("evaluate_sessions", &params, body)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_by_hand() {
        // Training: [1 2 3] twice, [2 4]. Test: [1 2 9 3] (9 unknown).
        let mut events = Vec::new();
        for (s, list) in [[1i64, 2, 3].as_slice(), &[1, 2, 3], &[2, 4]]
            .iter()
            .enumerate()
        {
            for (i, &p) in list.iter().enumerate() {
                events.push(Event {
                    session: s as i64,
                    order: i as f64,
                    product: p,
                });
            }
        }
        let budget = Budget::from_setting("1 GB");
        let train = Sessions::build(events, &budget).unwrap();
        let test = Sessions::build(
            [1i64, 2, 9, 3]
                .iter()
                .enumerate()
                .map(|(i, &p)| Event {
                    session: 9,
                    order: i as f64,
                    product: p,
                })
                .collect(),
            &budget,
        )
        .unwrap();
        let steps = map_test(&test, &train);
        assert_eq!(steps, vec![vec![0, 1, UNKNOWN, 2]]);
        let r = Recommenders::train(
            &train,
            Windows { cooc: 0, seq: 10 },
            10,
            SessionBlend::default(),
            1,
            1,
            &budget,
        )
        .unwrap();
        let t = r.evaluate(&steps);
        // Prefixes: [1] -> 2, [1 2] -> 9, [1 2 9] -> 3; all targets new.
        // SR from 1: 2 (2 * 1) before 3 (2 * 1/2): hit at 1. From 2: 3 (2)
        // before 4 (1): a miss, the target is 9. From 9: nothing.
        let sr = t[2];
        assert_eq!(sr.prefixes, [3, 3]);
        assert_eq!(sr.hits, [1, 1]);
        // Popular: 2 (3 steps): hit on the first prefix only.
        assert_eq!(t[4].hits, [1, 1]);
        assert!((t[4].reciprocal[0] - 1.0).abs() < 1e-12);
    }
}
