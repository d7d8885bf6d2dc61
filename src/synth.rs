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

use crate::binding::{Args, Column, OutputChunk, Param, SqlMacro, SqlType, TableFunction, Value};
use crate::rng::Rng;
use std::fmt::Write as _;

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

fn sample_cumulative(cum: &[f64], rng: &mut Rng) -> usize {
    let total = *cum.last().expect("non-empty sampler");
    let x = rng.next_f64() * total;
    cum.partition_point(|&c| c <= x).min(cum.len() - 1)
}

impl Catalogue {
    pub fn new(params: &SynthParams) -> Catalogue {
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

        let mut products = Vec::with_capacity(n_products);
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
        let mut global_weight = vec![0.0; n_products];
        for (c, items) in by_category.iter().enumerate() {
            let total = category_cumulative[c].last().copied().unwrap_or(1.0);
            for (rank, &p) in items.iter().enumerate() {
                global_weight[p as usize] =
                    category_weight[c] / (rank as f64 + 1.0).powf(1.05) / total;
            }
        }
        Catalogue {
            products,
            by_category,
            category_cumulative,
            // Tastes pick categories with a much flatter preference than
            // traffic has, so that what a user wants is personal, not just
            // what is popular.
            category_popularity: cumulative(category_weight.iter().map(|w| w.powf(0.3))),
            global_cumulative: cumulative(global_weight.into_iter()),
        }
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

/// Per-user event budgets: every user gets at least one event (when there
/// are enough events), the rest shared in proportion to a Pareto activity
/// weight, so a few users are very active and most are not.
pub fn user_budgets(params: &SynthParams) -> Vec<u64> {
    let users = params.users.max(1).min(params.events.max(1)) as usize;
    let weights: Vec<f64> = (0..users)
        .map(|u| {
            let mut rng = Rng::for_stream(params.seed ^ 0xB0D6E7, u as u64);
            // Pareto(alpha = 1.3) activity, capped to keep one user from
            // taking a visible share of a small data set.
            (1.0 - rng.next_f64()).powf(-1.0 / 1.3).min(2_000.0)
        })
        .collect();
    let total_weight: f64 = weights.iter().sum();
    let extra = params.events.saturating_sub(users as u64) as f64;
    let mut budgets = Vec::with_capacity(users);
    let (mut cum, mut given) = (0.0f64, 0u64);
    for w in &weights {
        cum += extra * w / total_weight;
        let upto = cum.round() as u64;
        budgets.push(1 + upto - given);
        given = upto;
    }
    // Rounding of the running sum gives exactly `extra` in total.
    let assigned: u64 = budgets.iter().sum();
    if assigned != params.events && !budgets.is_empty() {
        let last = budgets.len() - 1;
        budgets[last] = (budgets[last] + params.events)
            .saturating_sub(assigned)
            .max(1);
    }
    budgets
}

/// Generates one user's events (time-ordered) into `out`.
pub fn user_events(
    params: &SynthParams,
    catalogue: &Catalogue,
    user: u32,
    budget: u64,
    out: &mut Vec<Event>,
) {
    out.clear();
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
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DD HH:MM:SS UTC`, the REES46 text format.
pub fn format_time(seconds: i64, out: &mut String) {
    out.clear();
    let (y, m, d) = civil_from_days(seconds.div_euclid(86_400));
    let s = seconds.rem_euclid(86_400);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3_600,
        s % 3_600 / 60,
        s % 60
    );
}

/// Lower-case 8-4-4-4-12 UUID text of a 128-bit id.
pub fn format_uuid(id: u128, out: &mut String) {
    out.clear();
    let hex = format!("{id:032x}");
    out.push_str(&hex[0..8]);
    out.push('-');
    out.push_str(&hex[8..12]);
    out.push('-');
    out.push_str(&hex[12..16]);
    out.push('-');
    out.push_str(&hex[16..20]);
    out.push('-');
    out.push_str(&hex[20..32]);
}

/// Streams all users' events in user order.
pub struct EventStream {
    params: SynthParams,
    catalogue: Catalogue,
    budgets: Vec<u64>,
    next_user: usize,
    buffer: Vec<Event>,
    position: usize,
}

impl EventStream {
    pub fn new(params: SynthParams) -> Self {
        let catalogue = Catalogue::new(&params);
        let budgets = if params.events == 0 {
            Vec::new()
        } else {
            user_budgets(&params)
        };
        EventStream {
            params,
            catalogue,
            budgets,
            next_user: 0,
            buffer: Vec::new(),
            position: 0,
        }
    }
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }
    pub fn user_id(&self, user: u32) -> i64 {
        // Real user ids are 9-digit numbers from about 5.1e8.
        512_000_000
            + (crate::rng::mix64(user as u64 ^ self.params.seed) % 97) as i64
            + user as i64 * 101
    }
}

impl Iterator for EventStream {
    type Item = Event;
    fn next(&mut self) -> Option<Event> {
        while self.position >= self.buffer.len() {
            if self.next_user >= self.budgets.len() {
                return None;
            }
            let user = self.next_user as u32;
            user_events(
                &self.params,
                &self.catalogue,
                user,
                self.budgets[self.next_user],
                &mut self.buffer,
            );
            self.next_user += 1;
            self.position = 0;
        }
        self.position += 1;
        Some(self.buffer[self.position - 1])
    }
}

// ---------------------------------------------------------------------------
// SQL binding: ecoreco_synth(events := N, seed := S, ...)

/// The bound call of `ecoreco_synth`.
pub struct Synth {
    params: SynthParams,
}

impl TableFunction for Synth {
    type Scan = std::sync::Mutex<Option<EventStream>>;
    type Cursor = (String, String);
    const NAME: &'static str = "ecoreco_synth";

    fn params() -> Vec<Param> {
        vec![
            Param::named(
                "events",
                SqlType::BigInt,
                Value::Int(100_000),
                "the number of rows to generate, e.g. events := 100000",
            ),
            Param::named(
                "users",
                SqlType::BigInt,
                Value::Int(0),
                "the number of users (0: events / 14, as in the real data)",
            ),
            Param::named(
                "products",
                SqlType::BigInt,
                Value::Int(0),
                "the number of products (0: events / 250, 50 to 200000)",
            ),
            Param::named(
                "days",
                SqlType::BigInt,
                Value::Int(31),
                "the number of days the events span, e.g. days := 31",
            ),
            Param::named(
                "start_date",
                SqlType::Date,
                Value::Text("2019-10-01".into()),
                "the first day, e.g. start_date := DATE '2019-10-01'",
            ),
            Param::named(
                "seed",
                SqlType::BigInt,
                Value::Int(42),
                "any integer seed, e.g. seed := 42",
            ),
        ]
    }

    fn columns() -> Vec<Column> {
        vec![
            Column::new("event_time", SqlType::Varchar),
            Column::new("event_type", SqlType::Varchar),
            Column::new("product_id", SqlType::BigInt),
            Column::new("category_id", SqlType::BigInt),
            Column::new("category_code", SqlType::Varchar),
            Column::new("brand", SqlType::Varchar),
            Column::new("price", SqlType::Double),
            Column::new("user_id", SqlType::BigInt),
            Column::new("user_session", SqlType::Varchar),
        ]
    }

    fn bind(args: &Args) -> anyhow::Result<Self> {
        let events = args.int_in("events", 0, 10_000_000_000)? as u64;
        let mut params = SynthParams::for_events(events, args.int("seed")? as u64);
        let users = args.int_in("users", 0, 1_000_000_000)? as u64;
        if users > 0 {
            params.users = users;
        }
        let products = args.int_in("products", 0, 100_000_000)? as u64;
        if products > 0 {
            params.products = products;
        }
        params.days = args.int_in("days", 1, 36_500)? as u32;
        let start = args.text("start_date")?;
        params.start_day = parse_date(start).ok_or_else(|| {
            anyhow::anyhow!("ecoreco_synth: start_date '{start}' is not a date; pass e.g. start_date := DATE '2019-10-01'")
        })?;
        Ok(Synth { params })
    }

    fn cardinality(&self) -> Option<u64> {
        Some(self.params.events)
    }

    fn scan(&self) -> Self::Scan {
        std::sync::Mutex::new(Some(EventStream::new(self.params.clone())))
    }

    fn cursor(&self) -> Self::Cursor {
        (String::with_capacity(32), String::with_capacity(40))
    }

    fn fill(
        &self,
        scan: &Self::Scan,
        cursor: &mut Self::Cursor,
        out: &mut OutputChunk,
    ) -> anyhow::Result<usize> {
        let mut guard = scan
            .lock()
            .map_err(|_| anyhow::anyhow!("generator state poisoned by an earlier error"))?;
        let Some(stream) = guard.as_mut() else {
            return Ok(0);
        };
        let (time_text, uuid_text) = cursor;
        let capacity = out.capacity();
        let mut rows = 0;
        let mut cols: Vec<_> = (0..9).map(|c| out.column(c)).collect();
        while rows < capacity {
            let Some(event) = stream.next() else { break };
            let product = &stream.catalogue().products[event.product as usize];
            format_time(event.time, time_text);
            cols[0].set_str(rows, time_text);
            cols[1].set_str(rows, event.kind.as_str());
            unsafe {
                cols[2].values::<i64>()[rows] = product.product_id;
                cols[3].values::<i64>()[rows] = product.category_id;
                cols[6].values::<f64>()[rows] = product.price;
                cols[7].values::<i64>()[rows] = stream.user_id(event.user);
            }
            match product.category_code {
                Some(code) => cols[4].set_str(rows, code),
                None => cols[4].set_null(rows),
            }
            match &product.brand {
                Some(brand) => cols[5].set_str(rows, brand),
                None => cols[5].set_null(rows),
            }
            if event.session == 0 {
                cols[8].set_null(rows);
            } else {
                format_uuid(event.session, uuid_text);
                cols[8].set_str(rows, uuid_text);
            }
            rows += 1;
        }
        if rows == 0 {
            *guard = None;
        }
        Ok(rows)
    }
}

/// `YYYY-MM-DD` → days since 1970-01-01.
fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.get(0..2)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `ecoreco.synth(...)`: the generator under the extension's qualifier.
pub fn macros() -> Vec<SqlMacro> {
    let params = Synth::params();
    let signature: Vec<String> = params.iter().map(|p| p.macro_signature()).collect();
    let pass: Vec<String> = params
        .iter()
        .map(|p| format!("{0} := {0}", p.name))
        .collect();
    let signature: Vec<&str> = signature.iter().map(|s| s.as_str()).collect();
    vec![SqlMacro::table(
        "synth",
        &signature,
        format!("FROM ecoreco_synth({})", pass.join(", ")),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn generate(events: u64, seed: u64) -> (Vec<Event>, EventStream) {
        let stream = EventStream::new(SynthParams::for_events(events, seed));
        let probe = EventStream::new(SynthParams::for_events(events, seed));
        (stream.collect(), probe)
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2019, 10, 1), 18_170);
        for z in [-1000, 0, 18_170, 18_200, 20_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        let mut s = String::new();
        format_time(18_170 * 86_400 + 3_723, &mut s);
        assert_eq!(s, "2019-10-01 01:02:03 UTC");
        format_uuid(0x0123456789abcdef_0011223344556677, &mut s);
        assert_eq!(s, "01234567-89ab-cdef-0011-223344556677");
        assert_eq!(
            parse_date("2019-11-17"),
            Some(days_from_civil(2019, 11, 17))
        );
        assert_eq!(parse_date("2019-13-01"), None);
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
        ranked.sort_by(|a, b| b.1.cmp(&a.1));
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
