//! The replay driver: events in arrival order through the clock, the
//! per-user state, the fold-in and a fresh top-k after every event, with
//! the latency of each refresh measured.
//!
//! State is partitioned by user, as a stream processor partitions keyed
//! state: each worker (one per thread) owns the users that hash to it and
//! handles their events in arrival order. A user's recommendations depend
//! only on that user's events and the model, so the lists are the same
//! whatever the thread count, the seed of the partitioning hash or the
//! speed. The events are handed out in rounds (at most [`ROUND_EVENTS`]
//! events, and when paced at most [`ROUND_NS`] of release time); between
//! rounds the driver reports the windows the watermark closed, so metrics
//! leave while the replay runs.
//!
//! The lists are the serving lists of the user's folded-in state
//! (collaborative, category interest, popular fill). When the model keeps
//! the item-to-item signal (`crate::recommend::items`) at a weight above 0
//! and no serving rule is set, each list is blended with the item-to-item
//! scores of the user's latest steps in the stream, as
//! `recommend_session` blends a session's: a user's list after an event is
//! the one `recommend_session` gives for their events so far (for a user
//! unknown to the model, with times not decayed). Under rules the ruled
//! list alone, as in the session functions.
//!
//! Latency of an event: from its arrival to its user's refreshed top-k.
//! Paced (`speed > 0`), arrival is the event's scheduled release time, so
//! any queueing counts; unpaced, it is the moment its worker takes it up.

use super::clock::{self, Schedule};
use super::foldin::{FoldIn, Scratch};
use super::score::{self, ScoreScratch};
use super::state::{Kind, ProductCounters, Touch, UserState, Weights};
use crate::covisit::session::steps_read;
use crate::model::top_categories_of;
use crate::recommend::items;
use crate::recommend::serving::{Recommendation, ServingModel, Source};
use crate::rng::{FastMap, FastSet};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most events handed out per round.
pub const ROUND_EVENTS: usize = 16_384;
/// Most release time per round when paced: 50 ms.
pub const ROUND_NS: u64 = 50_000_000;

/// Most steps kept per user for the item-to-item signal. The scorer reads
/// a session's steps back from the last while their decayed weight stays
/// at or above 1/1000 (`crate::covisit::session::steps_read`): 10 steps at
/// the decay 0.5 that `als_train` stores, 31 at 0.8. Keeping that many is
/// exact (older steps are never read) and costs at most 128 bytes per
/// user; a model table with a decay above about 0.8 is read through its
/// latest 32 steps, the older ones weighing at most decay^32 each.
pub const MAX_RECENT_STEPS: usize = 32;

/// One input event.
#[derive(Clone, Copy, Debug)]
pub struct Event {
    /// The caller's arrival ordinal (reported back, never interpreted).
    pub arrival: i64,
    /// Event time, microseconds since the epoch.
    pub time: i64,
    pub user: Option<i64>,
    pub product: Option<i64>,
    pub category: Option<i64>,
    /// `None`: an event type other than view, cart, purchase.
    pub kind: Option<Kind>,
}

/// What happens to a late event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LateRule {
    /// Counted and reported with its window; the state is not updated and
    /// no list is emitted (as Spark's watermark drops late rows).
    Skip,
    /// Counted and reported, and applied like any other event.
    Apply,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub window_us: i64,
    pub watermark_us: i64,
    /// 0: as fast as possible; else the multiple of recorded time.
    pub speed: f64,
    /// Longest a paced replay may last (its queries cannot be cancelled
    /// while they run, so a replay that would take days is refused).
    pub max_seconds: f64,
    pub k: usize,
    pub blend: f32,
    pub exclude_purchased: bool,
    pub late: LateRule,
    pub weights: Weights,
    pub threads: usize,
    /// Seed of the user → worker hash (results do not depend on it).
    pub seed: u64,
    pub keep_recommendations: bool,
    /// The serving rules (off: the plain lists, found as below).
    pub rules: std::sync::Arc<crate::recommend::rules::Rules>,
    /// The item-to-item weight (`None`: the model's; 0: left out).
    pub item_weight: Option<f32>,
}

/// One window's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowRow {
    pub start: i64,
    pub end: i64,
    pub events: u64,
    pub late_events: u64,
    pub ignored_events: u64,
    pub active_users: u64,
    pub new_users: u64,
    pub unknown_users: u64,
    pub recommendations: u64,
    /// Share of the emitted rows that came from the popularity fill.
    pub fallback_share: Option<f64>,
    /// From the window's first arrival to its last refresh, milliseconds.
    pub processing_ms: Option<f64>,
    pub events_per_s: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Arrival ordinal of the event that closed the window.
    pub closed_by: Option<i64>,
}

/// One emitted list.
#[derive(Clone, Debug)]
pub struct Emitted {
    /// Arrival position (0-based) of the event that triggered it.
    pub position: usize,
    pub user: i64,
    pub recommendations: Vec<Recommendation>,
    /// From the event's arrival to this list, nanoseconds.
    pub latency_ns: u64,
}

pub struct Outcome {
    pub windows: Vec<WindowRow>,
    /// Sorted by position (only with `keep_recommendations`).
    pub emitted: Vec<Emitted>,
    pub products: HashMap<i64, ProductCounters>,
    pub elapsed: Duration,
}

#[derive(Clone, Debug, Default)]
struct Partial {
    events: u64,
    late: u64,
    ignored: u64,
    active: u64,
    new_users: u64,
    unknown_users: u64,
    lists: u64,
    rows: u64,
    popular_rows: u64,
    first_arrival: Option<u64>,
    last_done: u64,
    latencies: Vec<u64>,
}

impl Partial {
    fn merge(&mut self, o: &Partial) {
        self.events += o.events;
        self.late += o.late;
        self.ignored += o.ignored;
        self.active += o.active;
        self.new_users += o.new_users;
        self.unknown_users += o.unknown_users;
        self.lists += o.lists;
        self.rows += o.rows;
        self.popular_rows += o.popular_rows;
        self.first_arrival = match (self.first_arrival, o.first_arrival) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_done = self.last_done.max(o.last_done);
        self.latencies.extend_from_slice(&o.latencies);
    }
}

/// The value at rank `⌈p·n⌉` of sorted `values` (nearest rank).
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

fn window_row(w: &clock::Window, p: &mut Partial, events: &[Event]) -> WindowRow {
    p.latencies.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    let span = p
        .first_arrival
        .map(|first| p.last_done.saturating_sub(first));
    WindowRow {
        start: w.start,
        end: w.end,
        events: p.events,
        late_events: p.late,
        ignored_events: p.ignored,
        active_users: p.active,
        new_users: p.new_users,
        unknown_users: p.unknown_users,
        recommendations: p.lists,
        fallback_share: (p.rows > 0).then(|| p.popular_rows as f64 / p.rows as f64),
        processing_ms: span.map(ms),
        events_per_s: span
            .filter(|&s| s > 0)
            .map(|s| p.events as f64 * 1e9 / s as f64),
        p50_ms: percentile(&p.latencies, 0.50).map(ms),
        p95_ms: percentile(&p.latencies, 0.95).map(ms),
        p99_ms: percentile(&p.latencies, 0.99).map(ms),
        closed_by: w.closed_by.map(|at| events[at].arrival),
    }
}

/// One worker: the users hashed to it, their events' positions, and its
/// share of every window's figures.
struct Shard {
    positions: Vec<usize>,
    cursor: usize,
    users: FastMap<i64, UserState>,
    products: FastMap<i64, ProductCounters>,
    active: FastSet<(u32, i64)>,
    partial: Vec<Partial>,
    emitted: Vec<Emitted>,
    scratch: Scratch,
    scores: ScoreScratch,
    vector: Vec<f32>,
    error: Option<anyhow::Error>,
}

struct Shared<'a> {
    events: &'a [Event],
    schedule: &'a Schedule,
    model: &'a ServingModel,
    fold: &'a FoldIn,
    config: &'a Config,
    start: Instant,
    /// Steps kept per user for the item-to-item signal (0: not used).
    steps: usize,
    /// How long the model's own list of a user is before the blend
    /// (`items::base_length`; `k` without the signal). Its collaborative
    /// candidates are those of a list of `k` either way
    /// (`items::base_candidates`).
    base_k: usize,
}

impl Shared<'_> {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    fn wait_until(&self, target: u64) {
        loop {
            let now = self.now();
            if now >= target {
                return;
            }
            let left = target - now;
            if left > 200_000 {
                std::thread::sleep(Duration::from_nanos(left - 100_000));
            } else {
                std::hint::spin_loop();
            }
        }
    }
}

impl Shard {
    fn run(&mut self, end: usize, s: &Shared) {
        while self.cursor < self.positions.len() && self.positions[self.cursor] < end {
            let at = self.positions[self.cursor];
            self.cursor += 1;
            if let Err(e) = self.handle(at, s) {
                self.error.get_or_insert(e);
                return;
            }
        }
    }

    fn handle(&mut self, at: usize, s: &Shared) -> anyhow::Result<()> {
        let tick = s.schedule.ticks[at];
        let arrival = if s.config.speed > 0.0 {
            s.wait_until(tick.release_ns);
            tick.release_ns
        } else {
            s.now()
        };
        let e = &s.events[at];
        let (Some(user), Some(kind)) = (e.user, e.kind) else {
            unreachable!("ignored events are counted by the driver")
        };
        let w = tick.window as usize;
        if self.active.insert((tick.window, user)) {
            self.partial[w].active += 1;
        }
        let p = &mut self.partial[w];
        p.events += 1;
        p.first_arrival = Some(p.first_arrival.map_or(arrival, |f| f.min(arrival)));
        if tick.late {
            p.late += 1;
            if s.config.late == LateRule::Skip {
                p.last_done = p.last_done.max(s.now());
                return Ok(());
            }
        }
        let model = s.model;
        let item = e.product.and_then(|id| model.product(id));
        if let Some(product) = e.product {
            self.products.entry(product).or_default().count(kind);
        }
        let state = match self.users.entry(user) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                p.new_users += 1;
                let known = model.user(user);
                if known.is_none() {
                    p.unknown_users += 1;
                }
                let bought = known.map_or(&[][..], |u| model.purchased.row(u as usize).0);
                v.insert(UserState::new(bought))
            }
        };
        let touch = Touch {
            kind,
            time: Some(e.time),
            item,
            category: e
                .category
                .or_else(|| item.map(|i| model.product_category[i as usize])),
        };
        state.apply(&touch, &s.config.weights, s.fold, model.item_factors())?;
        if let Some(i) = item.filter(|_| s.steps > 0) {
            state.steps.push(i, s.steps);
        }
        let interest = top_categories_of(&state.categories);
        let excluded: &[u32] = if s.config.exclude_purchased {
            &state.bought
        } else {
            &[]
        };
        // The list `recommend_vector` gives, its collaborative part found
        // from the user's own products (`score`), not by a scan; kept as
        // it was when the event left the fold-in and exclusions as they were.
        let als_top: &[(u32, f32)] = if !s.config.rules.is_off() {
            // Under rules the list is chosen below, from the vector.
            &[]
        } else if state.fold.is_empty() || s.config.blend >= 1.0 {
            &[]
        } else {
            if !state.top.current {
                self.vector.resize(s.fold.factors, 0.0);
                state.fold.solve(
                    s.fold,
                    model.item_factors(),
                    &mut self.scratch,
                    &mut self.vector,
                )?;
                score::collaborative_top(
                    model,
                    s.fold,
                    state.fold.items(),
                    &self.scratch,
                    &self.vector,
                    items::base_candidates(s.config.k),
                    excluded,
                    &mut state.top,
                    &mut self.scores,
                );
            }
            &state.top.top
        };
        let recs = if s.config.rules.is_off() {
            let base =
                model.recommend_from_top(als_top, &interest, excluded, s.base_k, s.config.blend);
            // Blended with the item-to-item scores of the user's latest
            // steps, the product of this event the one the session is on
            // (`base` cut to k without the signal).
            items::steps_list(
                model,
                base,
                state.steps.as_slice(),
                item,
                excluded,
                s.config.item_weight,
                s.config.k,
            )
        } else {
            super::rules::folded_list(
                model,
                s.fold,
                &state.fold,
                (&mut self.scratch, &mut self.vector),
                &interest,
                excluded,
                (s.config.k, s.config.blend),
                &s.config.rules,
            )?
        };
        let done = s.now();
        let latency_ns = done.saturating_sub(arrival);
        p.last_done = p.last_done.max(done);
        p.latencies.push(latency_ns);
        p.lists += 1;
        p.rows += recs.len() as u64;
        p.popular_rows += recs.iter().filter(|r| r.source == Source::Popular).count() as u64;
        if s.config.keep_recommendations {
            self.emitted.push(Emitted {
                position: at,
                user,
                recommendations: recs,
                latency_ns,
            });
        }
        Ok(())
    }
}

/// `work` on every shard, each on the same worker thread every time (shard
/// `s` on thread `s mod threads`), so a user's state grows and is freed on
/// the thread that allocated it (memory moved between threads' allocator
/// arenas waits on their locks).
fn on_own_threads(
    pool: &rayon::ThreadPool,
    shards: &mut [Shard],
    work: impl Fn(&mut Shard) + Sync,
) {
    let cells: Vec<Mutex<&mut Shard>> = shards.iter_mut().map(Mutex::new).collect();
    pool.broadcast(|ctx| {
        for cell in cells.iter().skip(ctx.index()).step_by(ctx.num_threads()) {
            work(&mut crate::threads::lock(cell));
        }
    });
}

fn shard_of(user: i64, seed: u64, shards: usize) -> usize {
    (crate::rng::mix64(user as u64 ^ seed) % shards as u64) as usize
}

/// Replays `events` (in arrival order) against `model`. `on_closed` gets
/// the windows as the watermark closes them, and at the end every window
/// not reported yet or changed since (late events) with its final figures.
pub fn replay(
    events: &[Event],
    model: &ServingModel,
    fold: &FoldIn,
    config: &Config,
    pool: &rayon::ThreadPool,
    on_closed: &mut dyn FnMut(&[WindowRow]) -> anyhow::Result<()>,
) -> anyhow::Result<Outcome> {
    anyhow::ensure!(
        fold.factors == model.factors,
        "the fold-in does not match the model"
    );
    let times: Vec<i64> = events.iter().map(|e| e.time).collect();
    let schedule = clock::schedule(&times, config.window_us, config.watermark_us, config.speed)?;
    drop(times);
    let duration = schedule
        .ticks
        .last()
        .map_or(0.0, |t| t.release_ns as f64 / 1e9);
    anyhow::ensure!(
        duration <= config.max_seconds,
        "at speed {} the replay would last {duration:.0} s, more than max_seconds = {}; pass a higher speed (0: as fast as possible) \
         or a larger max_seconds",
        config.speed,
        config.max_seconds
    );
    let n_windows = schedule.windows.len();
    let threads = config.threads.max(1);
    // Events without a user or of another type: counted, never processed.
    let mut ignored = vec![Partial::default(); n_windows];
    let mut shards: Vec<Shard> = (0..threads)
        .map(|_| Shard {
            positions: Vec::new(),
            cursor: 0,
            users: FastMap::default(),
            products: FastMap::default(),
            active: FastSet::default(),
            partial: vec![Partial::default(); n_windows],
            emitted: Vec::new(),
            scratch: Scratch::default(),
            scores: ScoreScratch::default(),
            vector: Vec::new(),
            error: None,
        })
        .collect();
    for (at, e) in events.iter().enumerate() {
        match (e.user, e.kind) {
            (Some(user), Some(_)) => shards[shard_of(user, config.seed, threads)]
                .positions
                .push(at),
            _ => {
                let p = &mut ignored[schedule.ticks[at].window as usize];
                p.events += 1;
                p.ignored += 1;
                p.late += schedule.ticks[at].late as u64;
            }
        }
    }
    // Windows in the order the watermark closes them; never-closed last.
    let mut closing: Vec<u32> = (0..n_windows as u32).collect();
    closing.sort_by_key(|&w| {
        let w = &schedule.windows[w as usize];
        (w.closed_by.unwrap_or(usize::MAX), w.start)
    });
    let mut next_close = 0;
    let mut reported: Vec<Option<u64>> = vec![None; n_windows];
    // The item-to-item signal, never under rules (a neighbour could be a
    // product a rule forbids).
    let signal = if config.rules.is_off() {
        items::active(model, config.item_weight)
    } else {
        None
    };
    let shared = Shared {
        events,
        schedule: &schedule,
        model,
        fold,
        config,
        start: Instant::now(),
        steps: signal.map_or(0, |(i, _)| steps_read(i.blend.decay, MAX_RECENT_STEPS)),
        base_k: match signal {
            Some(_) => items::base_length(model, config.item_weight, config.k),
            None => config.k,
        },
    };
    let merged = |w: usize, shards: &[Shard]| {
        let mut p = ignored[w].clone();
        for shard in shards {
            p.merge(&shard.partial[w]);
        }
        window_row(&schedule.windows[w], &mut p, events)
    };
    let mut begin = 0;
    while begin < events.len() {
        let mut end = (begin + ROUND_EVENTS).min(events.len());
        if config.speed > 0.0 {
            let limit = schedule.ticks[begin].release_ns + ROUND_NS;
            end = begin
                + schedule.ticks[begin..end]
                    .partition_point(|t| t.release_ns < limit)
                    .max(1);
        }
        on_own_threads(pool, &mut shards, |shard| shard.run(end, &shared));
        if let Some(e) = shards.iter_mut().find_map(|s| s.error.take()) {
            return Err(e);
        }
        let mut closed = Vec::new();
        while next_close < closing.len() {
            let w = closing[next_close] as usize;
            match schedule.windows[w].closed_by {
                Some(at) if at < end => {
                    let row = merged(w, &shards);
                    reported[w] = Some(row.events);
                    closed.push(row);
                    next_close += 1;
                }
                _ => break,
            }
        }
        if !closed.is_empty() {
            on_closed(&closed)?;
        }
        begin = end;
    }
    let elapsed = shared.start.elapsed();
    let mut windows: Vec<WindowRow> = (0..n_windows).map(|w| merged(w, &shards)).collect();
    let changed: Vec<WindowRow> = windows
        .iter()
        .zip(&reported)
        .filter(|(row, seen)| **seen != Some(row.events))
        .map(|(row, _)| row.clone())
        .collect();
    if !changed.is_empty() {
        on_closed(&changed)?;
    }
    windows.sort_by_key(|w| w.start);
    // Each worker frees its own users' state, side by side, on the thread
    // whose allocator arena holds it.
    on_own_threads(pool, &mut shards, |shard| {
        drop(std::mem::take(&mut shard.users));
        drop(std::mem::take(&mut shard.active));
    });
    let mut products: HashMap<i64, ProductCounters> = HashMap::new();
    let mut emitted = Vec::new();
    for shard in shards {
        for (id, c) in shard.products {
            products.entry(id).or_default().add(&c);
        }
        emitted.extend(shard.emitted);
    }
    emitted.sort_by_key(|e| e.position);
    Ok(Outcome {
        windows,
        emitted,
        products,
        elapsed,
    })
}
