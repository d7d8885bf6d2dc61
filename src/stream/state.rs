//! Incremental per-user and per-product state, updated one event at a time.
//!
//! Per user: recent activity (events, last event time), category interest (interaction counts per category, whose
//! top 3 feed the scorer as `recommend` uses them), the products bought,
//! the interaction weight per product of the model (event weights summed
//! and capped exactly as `ecoreco.interactions` does for training, then
//! decayed by the model's recency half-life from the product's last event)
//! and the fold-in of those weights ([`super::foldin::UserFold`]).
//! Per product: views, carts and purchases seen in the stream.

use super::foldin::{FoldIn, UserFold};
use super::score::UserTop;

/// The event types that count; others are ignored (and counted as such).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    View,
    Cart,
    Purchase,
}

impl Kind {
    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "view" => Some(Kind::View),
            "cart" => Some(Kind::Cart),
            "purchase" => Some(Kind::Purchase),
            _ => None,
        }
    }
}

/// Event weights and the cap per (user, product): those the model was
/// trained with (`ecoreco.als_train`'s view, cart, purchase, cap).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    pub view: f32,
    pub cart: f32,
    pub purchase: f32,
    pub cap: f32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            view: 1.0,
            cart: 3.0,
            purchase: 5.0,
            cap: 10.0,
        }
    }
}

impl Weights {
    pub fn of(&self, kind: Kind) -> f32 {
        match kind {
            Kind::View => self.view,
            Kind::Cart => self.cart,
            Kind::Purchase => self.purchase,
        }
    }
}

/// One event as the state sees it: the product as a model index when the
/// model knows it, and the category (the event's, else the model's).
#[derive(Clone, Copy, Debug)]
pub struct Touch {
    pub kind: Kind,
    /// Event time, microseconds since the epoch (`None`: not given, as in
    /// a session passed as lists: counted as now, so never decayed).
    pub time: Option<i64>,
    pub item: Option<u32>,
    pub category: Option<i64>,
}

/// A product's last event time when no event of it had one.
const NO_TIME: i64 = i64::MIN;

#[derive(Clone, Debug, Default)]
pub struct UserState {
    pub events: u64,
    pub last_time: i64,
    /// Interactions per category (all of the user's view, cart and
    /// purchase events in the stream), one entry per category, in the
    /// order first seen: users touch few categories, so a list.
    pub categories: Vec<(i64, f32)>,
    /// Products of the model bought, sorted (excluded from the lists).
    pub bought: Vec<u32>,
    /// Summed (uncapped) event weight per product of the model, and its
    /// last event time (µs; [`NO_TIME`] when none was given), in the order
    /// first touched.
    sums: Vec<(u32, f32, i64)>,
    pub fold: UserFold,
    /// The collaborative top of the user's last list (a hint for the next,
    /// or the next itself while nothing it depends on changed).
    pub top: UserTop,
    /// The latest steps, for the item-to-item signal (empty without it).
    pub steps: RecentSteps,
}

/// A user's latest steps in the stream as the item-to-item part of a list
/// reads a session (`crate::recommend::items::steps_of`): products of the
/// model, repeats of one product in a row merged into one step, oldest
/// first; only the latest `most` are kept (the caller's bound: the steps
/// the scorer reads at the model's decay), so a user's state stays small
/// however long their stream.
#[derive(Clone, Debug, Default)]
pub struct RecentSteps {
    steps: Vec<u32>,
}

impl RecentSteps {
    /// Records a step on `item`, keeping at most `most` steps.
    pub fn push(&mut self, item: u32, most: usize) {
        if most == 0 || self.steps.last() == Some(&item) {
            return;
        }
        if self.steps.len() >= most {
            let drop = self.steps.len() + 1 - most;
            self.steps.drain(..drop);
        } else if self.steps.capacity() == 0 {
            self.steps.reserve_exact(most);
        }
        self.steps.push(item);
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.steps
    }
}

impl UserState {
    /// A user the model knows starts with the purchases the model
    /// recorded for them (never recommended again, as in `recommend`).
    pub fn new(model_purchases: &[u32]) -> UserState {
        let mut bought = model_purchases.to_vec();
        bought.sort_unstable();
        UserState {
            bought,
            ..UserState::default()
        }
    }

    /// Applies one event; `y` are the model's product factors.
    pub fn apply(
        &mut self,
        touch: &Touch,
        weights: &Weights,
        fold: &FoldIn,
        y: &[f32],
    ) -> anyhow::Result<()> {
        self.events += 1;
        if let Some(time) = touch.time {
            self.last_time = self.last_time.max(time);
        }
        if let Some(c) = touch.category {
            match self.categories.iter_mut().find(|e| e.0 == c) {
                Some(e) => e.1 += 1.0,
                None => self.categories.push((c, 1.0)),
            }
        }
        let Some(item) = touch.item else {
            return Ok(());
        };
        if touch.kind == Kind::Purchase {
            if let Err(at) = self.bought.binary_search(&item) {
                self.bought.insert(at, item);
                self.top.current = false;
            }
        }
        let add = weights.of(touch.kind);
        let time = touch.time.unwrap_or(NO_TIME);
        let (sum, last) = match self.sums.iter_mut().find(|s| s.0 == item) {
            Some(s) => {
                s.1 += add;
                s.2 = s.2.max(time);
                (s.1, s.2)
            }
            None => {
                self.sums.push((item, add, time));
                (add, time)
            }
        };
        // As the trainer: the capped pair weight decayed from the pair's
        // last event (seconds) to the model's reference time.
        let last = if last == NO_TIME {
            f64::NAN
        } else {
            last as f64 / 1e6
        };
        let weight = fold.weighting().decay(sum.min(weights.cap), last);
        // A product at the cap already: the fold-in is unchanged.
        if self.fold.set_weight(fold, y, item, weight)? {
            self.top.current = false;
        }
        Ok(())
    }

    /// The interaction weight of a product of the model (0 if untouched).
    pub fn weight(&self, item: u32, weights: &Weights) -> f32 {
        self.sums
            .iter()
            .find(|s| s.0 == item)
            .map_or(0.0, |s| s.1.min(weights.cap))
    }
}

/// Stream counters of one product.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProductCounters {
    pub views: u64,
    pub carts: u64,
    pub purchases: u64,
}

impl ProductCounters {
    pub fn count(&mut self, kind: Kind) {
        match kind {
            Kind::View => self.views += 1,
            Kind::Cart => self.carts += 1,
            Kind::Purchase => self.purchases += 1,
        }
    }
    pub fn add(&mut self, other: &ProductCounters) {
        self.views += other.views;
        self.carts += other.carts;
        self.purchases += other.purchases;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_per_product_and_cap_as_the_trainer_does() {
        let y = vec![1.0, 0.0, 0.0, 1.0];
        let fold = FoldIn::new(&y, 2, 0.1, 1.0).unwrap();
        let w = Weights::default();
        let mut user = UserState::new(&[1]);
        let touch = |kind, item| Touch {
            kind,
            time: Some(5),
            item: Some(item),
            category: Some(7),
        };
        for kind in [Kind::View, Kind::Cart, Kind::Purchase, Kind::Purchase] {
            user.apply(&touch(kind, 0), &w, &fold, &y).unwrap();
        }
        // 1 + 3 + 5 + 5 = 14, capped at 10.
        assert_eq!(user.weight(0, &w), 10.0);
        assert_eq!(user.weight(1, &w), 0.0);
        assert_eq!(user.bought, [0, 1]);
        assert_eq!(user.categories, [(7, 4.0)]);
        assert_eq!(user.events, 4);
        // A product the model does not know: interest only.
        user.apply(
            &Touch {
                kind: Kind::View,
                time: Some(9),
                item: None,
                category: Some(8),
            },
            &w,
            &fold,
            &y,
        )
        .unwrap();
        assert_eq!(user.fold.products(), 1);
        assert_eq!(user.categories, [(7, 4.0), (8, 1.0)]);
        assert_eq!(user.last_time, 9);
        assert_eq!(Kind::parse("remove_from_cart"), None);
    }

    #[test]
    fn recent_steps_merge_repeats_and_keep_the_latest() {
        let mut r = RecentSteps::default();
        for item in [4, 4, 5, 4, 6, 6, 7] {
            r.push(item, 3);
        }
        // Steps 4, 5, 4, 6, 7: the latest three.
        assert_eq!(r.as_slice(), [4, 6, 7]);
        r.push(7, 3);
        assert_eq!(r.as_slice(), [4, 6, 7]);
        r.push(4, 3);
        assert_eq!(r.as_slice(), [6, 7, 4]);
        let mut none = RecentSteps::default();
        none.push(1, 0);
        assert!(none.as_slice().is_empty());
    }

    #[test]
    fn product_counters_count_and_merge() {
        let mut a = ProductCounters::default();
        a.count(Kind::View);
        a.count(Kind::View);
        a.count(Kind::Purchase);
        let mut b = ProductCounters::default();
        b.count(Kind::Cart);
        b.add(&a);
        assert_eq!(
            b,
            ProductCounters {
                views: 2,
                carts: 1,
                purchases: 1
            }
        );
    }
}
