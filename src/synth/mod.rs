//! A REES46-shaped clickstream generator, calibrated to the published figures
//! of the real data (../shared/REES46.md) and with learnable structure planted
//! in it, for demos, tests and benchmarks at any scale.
//!
//! Shape: the same nine columns and text formats as the real CSV files, so
//! `COPY (FROM ecoreco_synth(...)) TO 'x.csv'` gives a file `read_events`
//! reads back. Empty category_code, brand and user_session are NULL, which
//! DuckDB's CSV writer writes as empty fields, as in the source files.
//!
//! Planted structure: every user has a latent taste, a few favourite
//! categories (the "item groups"), fixed over the whole time span. Most of a
//! user's views, and even more of their carts and purchases, fall in those
//! categories, so a collaborative model trained on the early part of the time
//! span can predict later purchases better than global popularity can.
//!
//! Determinism: a user's whole history is drawn from a random stream of its
//! own (`Rng::for_stream(seed, user)`), so the rows depend only on the
//! parameters and the seed.
//!
//! Memory: the catalogue (products) and one user's history at a time; the
//! rows are produced on demand (`stream`), so it does not grow with
//! `events`. Every allocation sized by a parameter is fallible and reports
//! an SQL error.

mod stream;
mod table;
mod text;

pub use stream::EventStream;
pub use table::{macros, Synth};
pub use text::{civil_from_days, days_from_civil, format_time, format_uuid};

use crate::rng::Rng;

/// Generator parameters. `Default` gives a small, fully calibrated data set.
#[derive(Clone, Debug)]
pub struct SynthParams {
    pub events: u64,
    pub users: u64,
    pub products: u64,
    pub days: u32,
    /// First day, as days since 1970-01-01.
    pub start_day: i64,
    pub seed: u64,
}

impl SynthParams {
    /// Sizes in the proportions of the real October file (14 events per user,
    /// one product per 250 events), for a given number of events.
    pub fn for_events(events: u64, seed: u64) -> Self {
        SynthParams {
            events,
            users: (events / 14).max(1),
            products: (events / 250).clamp(50, 200_000),
            days: 31,
            start_day: days_from_civil(2019, 10, 1),
            seed,
        }
    }
}

/// The 13 top-level categories of the real tree, with sub-categories seen in
/// the data; a category_id maps to one of these codes or to none.
const CATEGORY_CODES: &[&str] = &[
    "electronics.smartphone",
    "electronics.audio.headphone",
    "electronics.video.tv",
    "electronics.clocks",
    "electronics.tablet",
    "computers.notebook",
    "computers.desktop",
    "computers.peripherals.printer",
    "computers.components.videocards",
    "appliances.kitchen.washer",
    "appliances.kitchen.refrigerators",
    "appliances.environment.vacuum",
    "appliances.environment.water_heater",
    "appliances.kitchen.microwave",
    "apparel.shoes",
    "apparel.shoes.keds",
    "apparel.costume",
    "furniture.living_room.sofa",
    "furniture.bedroom.bed",
    "furniture.kitchen.table",
    "construction.tools.drill",
    "construction.tools.light",
    "kids.toys",
    "kids.carriage",
    "auto.accessories.player",
    "auto.accessories.videoregister",
    "sport.bicycle",
    "sport.trainer",
    "accessories.bag",
    "accessories.umbrella",
    "medicine.tools.tonometer",
    "country_yard.cultivator",
    "stationery.cartrige",
];

/// Brands in order of popularity: the real leaders first, then a long tail.
const TOP_BRANDS: &[&str] = &[
    "samsung", "apple", "xiaomi", "huawei", "lucente", "lg", "bosch", "oppo", "sony", "respect",
    "acer", "lenovo", "cordiant", "hp", "artel", "asus", "indesit", "elari", "redmond", "polaris",
    "tefal", "vivo", "philips", "canon",
];

/// Relative activity by hour of day (UTC): quiet at 23-01, rising from 03,
/// a plateau 08-15 peaking at 14-15, as in the real data.
const HOURLY_PROFILE: [f64; 24] = [
    1.2, 0.9, 1.2, 2.0, 3.5, 4.8, 5.6, 6.2, 6.5, 6.6, 6.6, 6.6, 6.7, 6.8, 7.1, 7.1, 6.7, 6.2, 5.7,
    5.0, 4.0, 2.9, 2.0, 1.4,
];

/// Per-view probabilities, solved from the published mix 96.1/2.2/1.7 % and
/// the 53.6 % of purchasing sessions without a cart event.
const CART_PER_VIEW: f64 = 0.0229;
const PURCHASE_AFTER_CART: f64 = 0.358;
const PURCHASE_WITHOUT_CART: f64 = 0.0097;
/// How much likelier carts and purchases are for a product of the user's
/// short list (`CONSIDERED_*`) and for one in the user's favourite
/// categories, than for any other (the rates above are renormalised).
const CONSIDERED_BUY_BOOST: f64 = 6.0;
const TASTE_BUY_BOOST: f64 = 2.0;
/// Share of views on the user's short list of products they keep coming back
/// to, and on other products of their favourite categories; the rest are
/// popular products anywhere.
const CONSIDERED_VIEW_SHARE: f64 = 0.45;
const TASTE_VIEW_SHARE: f64 = 0.30;
const EXACT_DUPLICATE_RATE: f64 = 0.0007;
const EMPTY_SESSION_RATE: f64 = 0.00001;
const EMPTY_CATEGORY_CODE_RATE: f64 = 0.32;
const EMPTY_BRAND_RATE: f64 = 0.14;
const ZERO_PRICE_RATE: f64 = 0.0016;
const MAX_PRICE: f64 = 2574.07;
/// One user's whole history is in memory while it is streamed (about 1 GB
/// at this many events).
pub const MAX_USER_EVENTS: u64 = 20_000_000;

/// One catalogue product.
#[derive(Clone, Debug)]
pub struct Product {
    pub product_id: i64,
    pub category: u32,
    pub category_id: i64,
    pub category_code: Option<&'static str>,
    pub brand: Option<String>,
    pub price: f64,
}

/// The catalogue and the samplers shared by all users.
pub struct Catalogue {
    pub products: Vec<Product>,
    /// Products of each category, most popular first.
    pub by_category: Vec<Vec<u32>>,
    /// Cumulative within-category popularity, parallel to `by_category`.
    category_cumulative: Vec<Vec<f64>>,
    /// Cumulative popularity of categories (how likely a taste picks one).
    category_popularity: Vec<f64>,
    /// Cumulative global product popularity.
    global_cumulative: Vec<f64>,
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect()
}

/// `vec.try_reserve_exact(n)`, as an SQL error naming what did not fit.
fn reserve<T>(vec: &mut Vec<T>, n: usize, what: &str) -> anyhow::Result<()> {
    vec.try_reserve_exact(n).map_err(|_| {
        anyhow::anyhow!(
            "ecoreco_synth: {n} {what} need {} MB, more than could be allocated; pass fewer {what}",
            n.saturating_mul(std::mem::size_of::<T>()) >> 20
        )
    })
}

fn sample_cumulative(cum: &[f64], rng: &mut Rng) -> usize {
    let total = *cum.last().expect("non-empty sampler");
    let x = rng.next_f64() * total;
    cum.partition_point(|&c| c <= x).min(cum.len() - 1)
}

impl Catalogue {
    pub fn new(params: &SynthParams) -> anyhow::Result<Catalogue> {
        let mut rng = Rng::for_stream(params.seed, u64::MAX);
        let n_products = params.products.max(1) as usize;
        // One category_id per 40 products, at most the real 624: a scaled-down
        // catalogue keeps enough categories for tastes to differ between
        // users (the real data has one per 270 products, at 166,794 products).
        let n_categories = (n_products / 40).clamp(8.min(n_products), 624).max(1);
        let category_weight: Vec<f64> = (0..n_categories)
            .map(|c| 1.0 / (c as f64 + 1.0).powf(0.9))
            .collect();
        let category_cum = cumulative(category_weight.iter().copied());
        // Each category_id has one code (or none): ids are huge, as in REES46.
        let category_ids: Vec<i64> = (0..n_categories)
            .map(|c| 2_053_013_552_226_107_603 + (c as i64) * 1_000_003_117 + (c as i64 % 7))
            .collect();
        let n_brands = (n_products / 48).clamp(TOP_BRANDS.len(), 4_200);
        let brand_cum = cumulative((0..n_brands).map(|b| 1.0 / (b as f64 + 1.0).powf(1.1)));

        let mut products = Vec::new();
        reserve(&mut products, n_products, "products")?;
        let mut by_category: Vec<Vec<u32>> = vec![Vec::new(); n_categories];
        for p in 0..n_products {
            // The first products go round-robin so every category has some.
            let category = if p < n_categories {
                p
            } else {
                sample_cumulative(&category_cum, &mut rng)
            };
            let code_index = (rng.mix_category(category) as usize) % CATEGORY_CODES.len();
            let category_code = if rng.next_f64() < EMPTY_CATEGORY_CODE_RATE {
                None
            } else {
                Some(CATEGORY_CODES[code_index])
            };
            let brand = if rng.next_f64() < EMPTY_BRAND_RATE {
                None
            } else {
                let b = sample_cumulative(&brand_cum, &mut rng);
                Some(match TOP_BRANDS.get(b) {
                    Some(name) => name.to_string(),
                    None => format!("brand{b:04}"),
                })
            };
            // Log-normal prices around a median of 164, capped at the real max.
            let price = if rng.next_f64() < ZERO_PRICE_RATE {
                0.0
            } else {
                let raw = (164f64.ln() + 1.05 * rng.normal()).exp();
                (raw.clamp(0.77, MAX_PRICE) * 100.0).round() / 100.0
            };
            by_category[category].push(p as u32);
            products.push(Product {
                product_id: 1_000_000 + (p as i64) * 37 + (p as i64 % 11),
                category: category as u32,
                category_id: category_ids[category],
                category_code,
                brand,
                price,
            });
        }
        // Power-law popularity within a category; a product's global weight is
        // its category's weight times its within-category weight.
        let category_cumulative: Vec<Vec<f64>> = by_category
            .iter()
            .map(|items| {
                cumulative((0..items.len()).map(|rank| 1.0 / (rank as f64 + 1.0).powf(1.05)))
            })
            .collect();
        let mut global_weight = Vec::new();
        reserve(&mut global_weight, n_products, "products")?;
        global_weight.resize(n_products, 0.0);
        for (c, items) in by_category.iter().enumerate() {
            let total = category_cumulative[c].last().copied().unwrap_or(1.0);
            for (rank, &p) in items.iter().enumerate() {
                global_weight[p as usize] =
                    category_weight[c] / (rank as f64 + 1.0).powf(1.05) / total;
            }
        }
        let global_cumulative = cumulative(global_weight.into_iter());
        Ok(Catalogue {
            products,
            by_category,
            category_cumulative,
            // Tastes pick categories with a much flatter preference than
            // traffic has, so that what a user wants is personal, not just
            // what is popular.
            category_popularity: cumulative(category_weight.iter().map(|w| w.powf(0.3))),
            global_cumulative,
        })
    }

    fn product_in_category(&self, category: usize, rng: &mut Rng) -> u32 {
        self.by_category[category][sample_cumulative(&self.category_cumulative[category], rng)]
    }
    fn popular_product(&self, rng: &mut Rng) -> u32 {
        sample_cumulative(&self.global_cumulative, rng) as u32
    }
}

trait MixCategory {
    fn mix_category(&mut self, category: usize) -> u64;
}
impl MixCategory for Rng {
    /// A category's code is a function of the category alone, so all products
    /// of one category_id share one code (or its absence is per product, as
    /// in the real data where codes are missing for some rows).
    fn mix_category(&mut self, category: usize) -> u64 {
        crate::rng::mix64(category as u64 ^ 0x5EED)
    }
}

/// A generated event, before formatting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Seconds since 1970-01-01 00:00:00 UTC.
    pub time: i64,
    pub kind: EventKind,
    pub product: u32,
    pub user: u32,
    /// Random 128-bit session id, or 0 for an empty session.
    pub session: u128,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    View,
    Cart,
    Purchase,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::View => "view",
            EventKind::Cart => "cart",
            EventKind::Purchase => "purchase",
        }
    }
}

/// Generates one user's events (time-ordered) into `out`.
pub fn user_events(
    params: &SynthParams,
    catalogue: &Catalogue,
    user: u32,
    budget: u64,
    out: &mut Vec<Event>,
) -> anyhow::Result<()> {
    out.clear();
    // The whole history is drawn, then sorted by time: it must fit.
    let suggest = || {
        (params.events / 100_000)
            .max(params.users.saturating_mul(2))
            .max(2)
    };
    if budget > MAX_USER_EVENTS {
        anyhow::bail!(
            "ecoreco_synth: user {user} would have {budget} events, more than the {MAX_USER_EVENTS} one user's history may hold; pass more users, e.g. users := {}",
            suggest()
        );
    }
    out.try_reserve(budget as usize).map_err(|_| {
        anyhow::anyhow!(
            "ecoreco_synth: user {user} would have {budget} events, more than memory holds; pass more users, e.g. users := {}",
            suggest()
        )
    })?;
    let mut rng = Rng::for_stream(params.seed, user as u64);
    // Taste: two or three favourite categories, popular ones more often.
    let n_taste = 2 + (rng.next_f64() < 0.4) as usize;
    let taste: Vec<usize> = (0..n_taste)
        .map(|_| sample_cumulative(&catalogue.category_popularity, &mut rng))
        .collect();
    let taste_weight = [0.6, 0.3, 0.1];
    let taste_product = |rng: &mut Rng| {
        let mut pick = rng.next_f64();
        let mut slot = 0;
        while slot + 1 < taste.len() && pick >= taste_weight[slot] {
            pick -= taste_weight[slot];
            slot += 1;
        }
        catalogue.product_in_category(taste[slot], rng)
    };
    // The products this user keeps coming back to: item-level structure a
    // collaborative model can learn and a category rule cannot.
    let n_considered = 3 + rng.below(10) as usize;
    let considered: Vec<u32> = (0..n_considered).map(|_| taste_product(&mut rng)).collect();
    let in_taste =
        |product: u32| taste.contains(&(catalogue.products[product as usize].category as usize));
    // Expected boost per view, so that boosts leave the overall mix unchanged.
    let mean_boost = CONSIDERED_VIEW_SHARE * CONSIDERED_BUY_BOOST
        + TASTE_VIEW_SHARE * TASTE_BUY_BOOST
        + (1.0 - CONSIDERED_VIEW_SHARE - TASTE_VIEW_SHARE);
    let hour_cum = cumulative(HOURLY_PROFILE.iter().copied());
    let end = (params.start_day + params.days.max(1) as i64) * 86_400;
    let mut remaining = budget;
    while remaining > 0 {
        // Views in the session: 1 + floor(lognormal), so that sessions have
        // a median of 2 and a mean near 4.6 events once carts and purchases
        // are added; the user's budget cuts the last session short.
        let views = 1 + (0.74 + 1.6 * rng.normal()).exp().floor().min(1_158.0) as u64;
        let day = rng.below(params.days.max(1) as u64) as i64;
        let hour = sample_cumulative(&hour_cum, &mut rng) as i64;
        let session_start =
            params.start_day * 86_400 + day * 86_400 + hour * 3_600 + rng.below(3_600) as i64;
        let mut time = session_start;
        let session = if rng.next_f64() < EMPTY_SESSION_RATE {
            0
        } else {
            (rng.next_u64() as u128) << 64 | rng.next_u64() as u128 | 1
        };
        let purchase_boost = if (8..=11).contains(&hour) { 1.25 } else { 0.95 };
        let first = out.len();
        let mut viewed = 0u64;
        while viewed < views && remaining > 0 {
            let pick = rng.next_f64();
            let (product, boost) = if pick < CONSIDERED_VIEW_SHARE {
                (
                    considered[rng.below(considered.len() as u64) as usize],
                    CONSIDERED_BUY_BOOST,
                )
            } else if pick < CONSIDERED_VIEW_SHARE + TASTE_VIEW_SHARE {
                (taste_product(&mut rng), TASTE_BUY_BOOST)
            } else {
                let p = catalogue.popular_product(&mut rng);
                (p, if in_taste(p) { TASTE_BUY_BOOST } else { 1.0 })
            };
            let norm = boost / mean_boost;
            out.push(Event {
                time,
                kind: EventKind::View,
                product,
                user,
                session,
            });
            viewed += 1;
            remaining -= 1;
            let carted = remaining > 0 && rng.next_f64() < CART_PER_VIEW * norm;
            if carted {
                time += 1 + rng.below(40) as i64;
                out.push(Event {
                    time,
                    kind: EventKind::Cart,
                    product,
                    user,
                    session,
                });
                remaining -= 1;
            }
            let p_buy = if carted {
                PURCHASE_AFTER_CART
            } else {
                PURCHASE_WITHOUT_CART * norm * purchase_boost
            };
            if remaining > 0 && rng.next_f64() < p_buy {
                time += 5 + rng.below(120) as i64;
                out.push(Event {
                    time,
                    kind: EventKind::Purchase,
                    product,
                    user,
                    session,
                });
                remaining -= 1;
            }
            if remaining > 0 && rng.next_f64() < EXACT_DUPLICATE_RATE {
                let last = *out.last().expect("just pushed");
                out.push(last);
                remaining -= 1;
            }
            // Gap to the next event: log-normal, median 25 s with a long tail.
            time += (25f64.ln() + 2.2 * rng.normal()).exp().min(7_200.0) as i64;
        }
        // A session that would run past the last day is moved back into it.
        let overflow = out.last().map_or(0, |e| e.time) - (end - 1);
        if overflow > 0 {
            for e in &mut out[first..] {
                e.time -= overflow.min(e.time - params.start_day * 86_400);
            }
        }
    }
    out.sort_by_key(|e| e.time);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn generate(events: u64, seed: u64) -> (Vec<Event>, EventStream) {
        let stream = EventStream::new(SynthParams::for_events(events, seed)).unwrap();
        let probe = EventStream::new(SynthParams::for_events(events, seed)).unwrap();
        (stream.collect(), probe)
    }
    #[test]
    fn exact_row_count_and_determinism() {
        for n in [0u64, 1, 7, 1_000, 54_321] {
            let (a, _) = generate(n, 3);
            assert_eq!(a.len() as u64, n, "events := {n}");
        }
        let (a, _) = generate(20_000, 9);
        let (b, _) = generate(20_000, 9);
        let (c, _) = generate(20_000, 10);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn calibrated_to_the_published_figures() {
        let (events, stream) = generate(400_000, 42);
        let cat = stream.catalogue();
        let n = events.len() as f64;
        let count = |k: EventKind| events.iter().filter(|e| e.kind == k).count() as f64 / n;
        let (views, carts, purchases) = (
            count(EventKind::View),
            count(EventKind::Cart),
            count(EventKind::Purchase),
        );
        assert!((views - 0.961).abs() < 0.01, "views {views}");
        assert!((carts - 0.022).abs() < 0.006, "carts {carts}");
        assert!((purchases - 0.017).abs() < 0.006, "purchases {purchases}");

        let mut sessions: HashMap<u128, (usize, bool, bool)> = HashMap::new();
        for e in &events {
            let s = sessions.entry(e.session).or_default();
            s.0 += 1;
            s.1 |= e.kind == EventKind::Purchase;
            s.2 |= e.kind == EventKind::Cart;
        }
        let mut lengths: Vec<usize> = sessions.values().map(|s| s.0).collect();
        lengths.sort_unstable();
        let median = lengths[lengths.len() / 2];
        let mean = n / lengths.len() as f64;
        assert_eq!(median, 2, "median events per session");
        assert!((3.4..5.4).contains(&mean), "mean events per session {mean}");
        let buying: Vec<_> = sessions.values().filter(|s| s.1).collect();
        let without_cart = buying.iter().filter(|s| !s.2).count() as f64 / buying.len() as f64;
        assert!(
            (0.35..0.75).contains(&without_cart),
            "purchasing sessions without cart {without_cart}"
        );

        let empty_code = events
            .iter()
            .filter(|e| cat.products[e.product as usize].category_code.is_none())
            .count() as f64
            / n;
        let empty_brand = events
            .iter()
            .filter(|e| cat.products[e.product as usize].brand.is_none())
            .count() as f64
            / n;
        assert!(
            (0.22..0.42).contains(&empty_code),
            "empty category_code {empty_code}"
        );
        assert!(
            (0.07..0.21).contains(&empty_brand),
            "empty brand {empty_brand}"
        );

        let prices: Vec<f64> = cat.products.iter().map(|p| p.price).collect();
        assert!(prices.iter().all(|&p| (0.0..=MAX_PRICE).contains(&p)));
        let mut sorted = prices.clone();
        sorted.sort_by(f64::total_cmp);
        let median_price = sorted[sorted.len() / 2];
        assert!(
            (110.0..230.0).contains(&median_price),
            "median price {median_price}"
        );

        let tops: HashSet<&str> = CATEGORY_CODES
            .iter()
            .map(|c| c.split('.').next().unwrap())
            .collect();
        assert_eq!(tops.len(), 13);

        let mut brand_purchases: HashMap<&str, usize> = HashMap::new();
        for e in events.iter().filter(|e| e.kind == EventKind::Purchase) {
            if let Some(b) = &cat.products[e.product as usize].brand {
                *brand_purchases.entry(b.as_str()).or_default() += 1;
            }
        }
        let mut ranked: Vec<_> = brand_purchases.into_iter().collect();
        ranked.sort_by_key(|b| std::cmp::Reverse(b.1));
        let leaders: HashSet<&str> = ranked.iter().take(4).map(|(b, _)| *b).collect();
        assert!(
            leaders.contains("samsung") && leaders.contains("apple"),
            "top brands {:?}",
            &ranked[..4]
        );

        // Hourly profile: 14-15 UTC busier than 23-01 by a wide margin.
        let mut by_hour = [0usize; 24];
        for e in &events {
            by_hour[(e.time.rem_euclid(86_400) / 3_600) as usize] += 1;
        }
        assert!(by_hour[14] > 3 * by_hour[0], "hours {by_hour:?}");
    }

    #[test]
    fn purchases_follow_the_planted_taste() {
        // Later purchases fall in categories the user already interacted
        // with far more often than popularity alone would predict.
        let (events, stream) = generate(300_000, 5);
        let cat = stream.catalogue();
        let mut seen: HashMap<u32, HashSet<u32>> = HashMap::new();
        let (mut repeat, mut total) = (0usize, 0usize);
        let mut sorted = events.clone();
        sorted.sort_by_key(|e| (e.user, e.time));
        for e in &sorted {
            let category = cat.products[e.product as usize].category;
            let s = seen.entry(e.user).or_default();
            if e.kind == EventKind::Purchase && !s.is_empty() {
                total += 1;
                repeat += s.contains(&category) as usize;
            }
            s.insert(category);
        }
        assert!(total > 1_000);
        assert!(
            repeat as f64 / total as f64 > 0.8,
            "purchases in known categories: {repeat}/{total}"
        );
    }
}
