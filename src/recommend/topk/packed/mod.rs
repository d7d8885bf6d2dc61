//! One user against a catalogue packed once: items in descending norm order
//! in half-precision panels, scanned until the norm bound shows nothing
//! further can reach the top k, the few candidates rescored exactly; or,
//! without F16C or for factors beyond half range, an exact single-precision
//! scan.

use super::batch::{pack_item_panels, TILE_ITEMS};
use super::bound::{norm_rounded_up, ErrorBound, HALF_MAX};
use super::exact;
use super::heap::{best_of, TopK, UserSelection};
use crate::isa::{dispatch, Isa};
use rayon::prelude::*;

/// Item factors prepared once for repeated single-user scoring: serving one
/// `recommend(user_id)` call must not re-pack the catalogue.
pub struct PackedItems {
    /// The exact factors, row-major: every returned score comes from these.
    rows: Vec<f32>,
    scan: Scan,
    factors: usize,
    n_items: usize,
}

/// How the catalogue is scanned for one user.
enum Scan {
    /// Items in descending order of factor norm, in half-precision panels
    /// (the layout of [`recommend_batch`](super::recommend_batch)'s), with each item's norm rounded
    /// up. A score is at most ‖user‖·‖item‖, so the scan stops at the first
    /// panel whose largest norm cannot reach the k-th best score found: on
    /// trained models the long tail of rarely seen products has small
    /// norms, and a typical user's scan ends within the first few percent
    /// of the catalogue. Half precision halves the memory traffic of what is
    /// scanned; the norms also bound each approximate score's error, which
    /// keeps the final top-k exact.
    Half {
        panels: Vec<u16>,
        /// Norm of the item in each panel slot (0 for padding).
        norms: Vec<f32>,
        /// The item in each panel slot.
        order: Vec<u32>,
    },
    /// Single-precision panels in item order, scored exactly: CPUs without
    /// F16C, or factors too large for half precision.
    Exact { panels: Vec<f32>, isa: Isa },
}

impl std::fmt::Debug for PackedItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scan = match self.scan {
            Scan::Half { .. } => "half-precision scan",
            Scan::Exact { .. } => "exact scan",
        };
        write!(
            f,
            "PackedItems({} items × {} factors, {scan})",
            self.n_items, self.factors
        )
    }
}

/// Panels per task of a half-precision scan (1024 × 16 items, about 0.2 ms
/// at 64 factors). The first task runs alone on the calling thread and on
/// trained models almost always ends the scan, so a typical request never
/// wakes the thread pool; the rest, when the bound does not stop it, run in
/// parallel, each skipped or cut short by the threshold the first found.
const PANELS_PER_TASK: usize = 1024;
/// Panels per parallel task of an exact scan.
const EXACT_PANELS_PER_TASK: usize = 1024;

impl PackedItems {
    /// Takes the exact factors (row-major) it scores and rescores with.
    pub fn new(item_factors: Vec<f32>, factors: usize) -> PackedItems {
        assert!(factors > 0, "factors must be > 0");
        assert_eq!(
            item_factors.len() % factors,
            0,
            "item_factors length is not a multiple of factors"
        );
        let n_items = item_factors.len() / factors;
        assert!(n_items <= u32::MAX as usize, "more items than u32 indices");
        let fits_half = item_factors.iter().all(|v| v.abs() <= HALF_MAX);
        #[cfg(target_arch = "x86_64")]
        let scan = if fits_half && crate::isa::half_precision_scan() {
            Self::half_scan_layout(&item_factors, factors, n_items)
        } else {
            Scan::Exact {
                panels: pack_item_panels(&item_factors, factors, n_items),
                isa: Isa::detect(),
            }
        };
        #[cfg(not(target_arch = "x86_64"))]
        let scan = {
            let _ = fits_half;
            Scan::Exact {
                panels: pack_item_panels(&item_factors, factors, n_items),
                isa: Isa::detect(),
            }
        };
        PackedItems {
            rows: item_factors,
            scan,
            factors,
            n_items,
        }
    }

    /// Items sorted by descending norm (ties: smaller index first), packed
    /// into half-precision panels.
    #[cfg(target_arch = "x86_64")]
    fn half_scan_layout(item_factors: &[f32], f: usize, n_items: usize) -> Scan {
        let item_norms: Vec<f32> = item_factors.par_chunks(f).map(norm_rounded_up).collect();
        let mut order: Vec<u32> = (0..n_items as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            item_norms[b as usize]
                .total_cmp(&item_norms[a as usize])
                .then(a.cmp(&b))
        });
        let mut sorted = vec![0f32; n_items * f];
        sorted
            .par_chunks_mut(f)
            .zip(order.par_iter())
            .for_each(|(row, &item)| {
                row.copy_from_slice(&item_factors[item as usize * f..(item as usize + 1) * f]);
            });
        let panels = pack_item_panels(&sorted, f, n_items);
        let mut norms = vec![0f32; panels.len() / f];
        for (slot, &item) in order.iter().enumerate() {
            norms[slot] = item_norms[item as usize];
        }
        // SAFETY: only called when half_precision_scan found the CPU features.
        Scan::Half {
            panels: unsafe { to_half(&panels) },
            norms,
            order,
        }
    }

    /// The exact factors, row-major, as given to [`new`](Self::new).
    pub fn rows(&self) -> &[f32] {
        &self.rows
    }

    /// Whether scans go through half precision (then rescored exactly).
    pub fn uses_half_precision(&self) -> bool {
        matches!(self.scan, Scan::Half { .. })
    }

    /// Top-k items for one user's factor row, skipping `excluded` (sorted
    /// ascending). Scores are bit-identical to [`recommend_batch`](super::recommend_batch)'s (same
    /// summation order), ties go to the smaller index; parallel over blocks
    /// of panels on the current rayon pool.
    pub fn top_k(&self, user: &[f32], k: usize, excluded: &[u32]) -> Vec<(u32, f32)> {
        self.top_k_counted(user, k, excluded, f32::NEG_INFINITY).0
    }

    /// [`top_k`](Self::top_k), the same list, given `floor`: a score the
    /// `k`-th best item's exact score reaches (for example the `k`-th best
    /// exact score of any `k` distinct items not excluded). The scan then
    /// passes over items whose upper bound is below it from its start,
    /// instead of from when its own lower bounds rise that far.
    pub fn top_k_above(
        &self,
        user: &[f32],
        k: usize,
        excluded: &[u32],
        floor: f32,
    ) -> Vec<(u32, f32)> {
        self.top_k_counted(user, k, excluded, floor).0
    }

    /// [`top_k_above`](Self::top_k_above) and the share of the catalogue's panels it scored.
    fn top_k_counted(
        &self,
        user: &[f32],
        k: usize,
        excluded: &[u32],
        floor: f32,
    ) -> (Vec<(u32, f32)>, f64) {
        let f = self.factors;
        assert_eq!(user.len(), f, "user row length differs from factors");
        if k == 0 || self.n_items == 0 {
            return (Vec::new(), 0.0);
        }
        let k = k.min(self.n_items);
        match &self.scan {
            #[cfg(target_arch = "x86_64")]
            Scan::Half {
                panels,
                norms,
                order,
            } => match ErrorBound::new(user) {
                Some(bound) => {
                    let (top, scanned) =
                        self.top_k_half(panels, norms, order, bound, user, k, excluded, Err(floor));
                    (top, scanned as f64 / (norms.len() / TILE_ITEMS) as f64)
                }
                None => (self.top_k_rows(user, k, excluded), 1.0),
            },
            #[cfg(not(target_arch = "x86_64"))]
            Scan::Half { .. } => unreachable!("half-precision panels are only built on x86-64"),
            Scan::Exact { panels, isa } => (self.top_k_exact(panels, *isa, user, k, excluded), 1.0),
        }
    }

    /// The exact score, summed as [`recommend_batch`](super::recommend_batch) sums it.
    #[inline]
    pub fn exact_score(&self, user: &[f32], item: u32) -> f32 {
        let f = self.factors;
        let row = &self.rows[item as usize * f..(item as usize + 1) * f];
        // Ascending j, one multiply then one add (no FMA): bit-identical
        // to the batch kernel.
        let mut score = 0f32;
        for j in 0..f {
            score += user[j] * row[j];
        }
        score
    }

    /// [`exact_score`](Self::exact_score) of each of `items` into `out`,
    /// eight at a time in vector lanes (each lane sums in the same order as
    /// the scalar score, so the same bits).
    pub fn exact_scores(&self, user: &[f32], items: &[u32], out: &mut Vec<f32>) {
        let f = self.factors;
        assert_eq!(user.len(), f, "user row length differs from factors");
        out.clear();
        let isa = Isa::detect();
        let groups = items.chunks_exact(8);
        let tail = groups.remainder();
        for group in groups {
            let group: &[u32; 8] = group.try_into().expect("chunks of 8");
            out.extend_from_slice(&exact::scores8(isa, user, &self.rows, f, group));
        }
        out.extend(tail.iter().map(|&i| self.exact_score(user, i)));
    }

    /// Exact top-k from a half-precision scan. Each approximate score `a`
    /// lies within `err` of the exact one, so `a − err` and `a + err` bound
    /// it: once `k` items have a lower bound of at least `t`, an item whose
    /// upper bound is below `t` cannot make the top k. The scan keeps the
    /// `k` best lower bounds and the items whose upper bound reaches them;
    /// only those few are rescored exactly. Panels come in descending norm
    /// order, so the scan ends at the first panel whose norm bound is below
    /// `t`.
    /// `first`: the first task's scan when the caller ran it already
    /// ([`top_k_many`](Self::top_k_many)), else the floor it starts from
    /// ([`top_k_above`](Self::top_k_above)).
    #[cfg(target_arch = "x86_64")]
    #[allow(clippy::too_many_arguments)]
    fn top_k_half(
        &self,
        panels: &[u16],
        norms: &[f32],
        order: &[u32],
        bound: ErrorBound,
        user: &[f32],
        k: usize,
        excluded: &[u32],
        first: Result<BoundedScan, f32>,
    ) -> (Vec<(u32, f32)>, usize) {
        let f = self.factors;
        let slots_per_task = TILE_ITEMS * PANELS_PER_TASK;
        let task = |first_slot: usize, floor: f32| {
            let end = (first_slot + slots_per_task).min(norms.len());
            let mut scan = BoundedScan::new(k, excluded, floor);
            // SAFETY: Scan::Half exists only when half_precision_scan found the CPU features.
            unsafe {
                half_scan(
                    user,
                    panels,
                    norms,
                    order,
                    f,
                    bound,
                    &mut scan,
                    first_slot..end,
                )
            };
            scan
        };
        let first = first.unwrap_or_else(|floor| task(0, floor));
        let floor = first.threshold();
        let rest: Vec<usize> = (slots_per_task..norms.len())
            .step_by(slots_per_task)
            .filter(|&slot| bound.upper(norms[slot]) >= floor)
            .collect();
        let mut scans: Vec<BoundedScan> =
            rest.into_par_iter().map(|slot| task(slot, floor)).collect();
        scans.push(first);
        // The k-th best lower bound over every task (the first task's own
        // when it was the only one, as it mostly is).
        let best_lower = match scans.as_slice() {
            [only] => only.lower.min_score(),
            _ => {
                let all: Vec<(u32, f32)> = scans
                    .iter()
                    .flat_map(|scan| scan.lower.heap.iter().copied())
                    .collect();
                TopK::from_candidates(k, &all).min_score()
            }
        };
        let threshold = best_lower.max(floor);
        let scanned = scans.iter().map(|s| s.panels_scanned).sum();
        // The candidates left, rescored eight at a time in vector lanes.
        let rescored: Vec<u32> = scans
            .iter()
            .flat_map(|scan| scan.candidates.iter())
            .filter(|c| c.1 >= threshold)
            .map(|c| c.0)
            .collect();
        let mut scores = Vec::with_capacity(rescored.len());
        self.exact_scores(user, &rescored, &mut scores);
        (
            best_of(rescored.into_iter().zip(scores).collect(), k),
            scanned,
        )
    }

    /// [`top_k`](Self::top_k) of each of `users` (with `excluded[u]`), the
    /// same lists. A half-precision scan's first task, which almost always
    /// ends it, runs for all of them a tile of panels at a time: each tile
    /// (about 200 KB) is read by every user still scanning while it is in
    /// the core's cache, where one user after the other each streamed the
    /// whole prefix from the shared cache. Each user's scan sees the same
    /// panels in the same order with the same stops as alone.
    pub fn top_k_many(
        &self,
        users: &[&[f32]],
        k: usize,
        excluded: &[Vec<u32>],
    ) -> Vec<Vec<(u32, f32)>> {
        assert_eq!(users.len(), excluded.len(), "one exclusion list per user");
        #[cfg(target_arch = "x86_64")]
        if let (
            Scan::Half {
                panels,
                norms,
                order,
            },
            true,
        ) = (&self.scan, k > 0 && self.n_items > 0)
        {
            let f = self.factors;
            let k = k.min(self.n_items);
            // Users without an error bound (factors not finite) are scored exactly.
            let mut scans: Vec<Option<(ErrorBound, BoundedScan)>> = users
                .iter()
                .zip(excluded)
                .map(|(u, ex)| {
                    ErrorBound::new(u).map(|b| (b, BoundedScan::new(k, ex, f32::NEG_INFINITY)))
                })
                .collect();
            let mut scanning: Vec<usize> =
                (0..users.len()).filter(|&u| scans[u].is_some()).collect();
            let first_end = (TILE_ITEMS * PANELS_PER_TASK).min(norms.len());
            let tile = TILE_ITEMS * cache_tile_panels(f);
            let mut start = 0;
            while start < first_end && !scanning.is_empty() {
                let end = (start + tile).min(first_end);
                scanning.retain(|&u| {
                    let Some((bound, scan)) = scans[u].as_mut() else {
                        return false;
                    };
                    // SAFETY: Scan::Half exists only when half_precision_scan found the CPU features.
                    let stopped = unsafe {
                        half_scan(users[u], panels, norms, order, f, *bound, scan, start..end)
                    };
                    !stopped
                });
                start = end;
            }
            return users
                .iter()
                .zip(excluded)
                .zip(scans)
                .map(|((user, ex), scan)| match scan {
                    Some((bound, first)) => {
                        self.top_k_half(panels, norms, order, bound, user, k, ex, Ok(first))
                            .0
                    }
                    None => self.top_k_rows(user, k, ex),
                })
                .collect();
        }
        users
            .iter()
            .zip(excluded)
            .map(|(user, ex)| self.top_k(user, k, ex))
            .collect()
    }

    /// Exact top-k straight from the rows: users whose factors are not
    /// finite (no error bound holds for them).
    fn top_k_rows(&self, user: &[f32], k: usize, excluded: &[u32]) -> Vec<(u32, f32)> {
        let mut selection = UserSelection {
            top: TopK::new(k),
            excluded: std::borrow::Cow::Borrowed(excluded),
            cursor: 0,
        };
        for item in 0..self.n_items as u32 {
            selection.offer(item, self.exact_score(user, item));
        }
        selection.top.into_sorted()
    }

    fn top_k_exact(
        &self,
        panels: &[f32],
        isa: Isa,
        user: &[f32],
        k: usize,
        excluded: &[u32],
    ) -> Vec<(u32, f32)> {
        let f = self.factors;
        let partial: Vec<Vec<(u32, f32)>> = panels
            .par_chunks(f * TILE_ITEMS * EXACT_PANELS_PER_TASK)
            .enumerate()
            .map(|(task, panels)| {
                let first_panel = task * EXACT_PANELS_PER_TASK;
                let mut selection = UserSelection {
                    top: TopK::new(k),
                    excluded: std::borrow::Cow::Borrowed(excluded),
                    cursor: 0,
                };
                dispatch!(isa, (
                    user: &[f32] = user,
                    panels: &[f32] = panels,
                    f: usize = f,
                    n_items: usize = self.n_items,
                    first_panel: usize = first_panel,
                    selection: &mut UserSelection = &mut selection,
                ) {
                    single_user_kernel(user, panels, f, n_items, first_panel, selection)
                });
                selection.top.into_sorted()
            })
            .collect();
        let mut top = TopK::new(k);
        for (item, score) in partial.into_iter().flatten() {
            top.push(item, score);
        }
        top.into_sorted()
    }
}

/// One task's share of a half-precision scan: the `k` best lower bounds so
/// far and the items whose upper bound reached them.
struct BoundedScan<'a> {
    lower: TopK,
    candidates: Vec<(u32, f32)>,
    /// Items to skip, ascending.
    excluded: &'a [u32],
    /// A threshold already proven by another task's `k` lower bounds.
    floor: f32,
    /// Panels scored, for tests of the early stop.
    panels_scanned: usize,
}

/// Candidates kept before those left behind by the rising threshold are dropped.
const CANDIDATES_BEFORE_PRUNING: usize = 4096;

impl<'a> BoundedScan<'a> {
    fn new(k: usize, excluded: &'a [u32], floor: f32) -> Self {
        // Room for the candidates a scan usually keeps before it prunes.
        BoundedScan {
            lower: TopK::new(k),
            candidates: Vec::with_capacity(2 * k),
            excluded,
            floor,
            panels_scanned: 0,
        }
    }

    /// An upper bound below this cannot reach the top k.
    #[inline(always)]
    fn threshold(&self) -> f32 {
        self.lower.min_score().max(self.floor)
    }

    #[inline]
    fn offer(&mut self, item: u32, low: f32, upper: f32) {
        if upper < self.threshold() || self.excluded.binary_search(&item).is_ok() {
            return;
        }
        self.lower.push(item, low);
        self.candidates.push((item, upper));
        if self.candidates.len() >= CANDIDATES_BEFORE_PRUNING {
            let threshold = self.threshold();
            self.candidates.retain(|c| c.1 >= threshold);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
unsafe fn to_half(values: &[f32]) -> Vec<u16> {
    use std::arch::x86_64::*;
    let mut out = vec![0u16; values.len()];
    let chunks = values.len() / 8 * 8;
    for i in (0..chunks).step_by(8) {
        let v = _mm256_loadu_ps(values.as_ptr().add(i));
        // Round to nearest even.
        let h = _mm256_cvtps_ph::<0>(v);
        _mm_storeu_si128(out.as_mut_ptr().add(i) as *mut __m128i, h);
    }
    for i in chunks..values.len() {
        let mut lane = [0f32; 8];
        lane[0] = values[i];
        let h = _mm256_cvtps_ph::<0>(_mm256_loadu_ps(lane.as_ptr()));
        out[i] = _mm_extract_epi16::<0>(h) as u16;
    }
    out
}

/// Approximate scores of one user against a run of half-precision panels
/// in descending norm order, four panels at a time (eight independent
/// accumulators keep both FMA units busy, where one panel's two would wait
/// on FMA latency), until the norm bound shows nothing further can reach
/// the top k (then it returns `true`; `false` when the panels ran out).
/// `slots`: the run of panel slots (whole panels) of the catalogue's
/// `panels`, `norms` and `order` (shorter by the last panel's padding).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn half_scan(
    user: &[f32],
    panels: &[u16],
    norms: &[f32],
    order: &[u32],
    f: usize,
    bound: ErrorBound,
    scan: &mut BoundedScan,
    slots: std::ops::Range<usize>,
) -> bool {
    let (start, end) = (slots.start, slots.end);
    let (panels, norms) = (&panels[start * f..end * f], &norms[start..end]);
    let order = &order[start.min(order.len())..end.min(order.len())];
    let n_panels = norms.len() / TILE_ITEMS;
    let mut p = 0;
    while p < n_panels {
        // The panel's first slot holds its largest norm.
        if bound.upper(norms[p * TILE_ITEMS]) < scan.threshold() {
            return true;
        }
        let step = if p + 4 <= n_panels {
            half_panels::<4>(user, panels, norms, order, f, p, bound, scan);
            4
        } else {
            half_panels::<1>(user, panels, norms, order, f, p, bound, scan);
            1
        };
        scan.panels_scanned += step;
        p += step;
    }
    false
}

/// Panels of a cache tile of [`PackedItems::top_k_many`]: about 192 KB of
/// half-precision values, a multiple of the kernel's four panels.
fn cache_tile_panels(f: usize) -> usize {
    ((192 << 10) / (TILE_ITEMS * f * 2)).max(4) / 4 * 4
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn half_panels<const P: usize>(
    user: &[f32],
    panels: &[u16],
    norms: &[f32],
    order: &[u32],
    f: usize,
    first_panel: usize,
    bound: ErrorBound,
    scan: &mut BoundedScan,
) {
    use std::arch::x86_64::*;
    let base = panels.as_ptr().add(first_panel * f * TILE_ITEMS);
    let mut acc = [[_mm256_setzero_ps(); 2]; P];
    for j in 0..f {
        let x = _mm256_set1_ps(*user.get_unchecked(j));
        for (q, acc) in acc.iter_mut().enumerate() {
            let row = base.add((q * f + j) * TILE_ITEMS);
            acc[0] = _mm256_fmadd_ps(
                x,
                _mm256_cvtph_ps(_mm_loadu_si128(row as *const __m128i)),
                acc[0],
            );
            acc[1] = _mm256_fmadd_ps(
                x,
                _mm256_cvtph_ps(_mm_loadu_si128(row.add(8) as *const __m128i)),
                acc[1],
            );
        }
    }
    let scale = _mm256_set1_ps(bound.scale);
    let floor = _mm256_set1_ps(bound.floor);
    for (q, acc) in acc.iter().enumerate() {
        let first_slot = (first_panel + q) * TILE_ITEMS;
        let norm = norms.as_ptr().add(first_slot);
        let err = [
            _mm256_fmadd_ps(scale, _mm256_loadu_ps(norm), floor),
            _mm256_fmadd_ps(scale, _mm256_loadu_ps(norm.add(8)), floor),
        ];
        let threshold = _mm256_set1_ps(scan.threshold());
        let reaches = |half: usize| {
            _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(
                _mm256_add_ps(acc[half], err[half]),
                threshold,
            )) as u32
        };
        let mut mask = reaches(0) | reaches(1) << 8;
        if mask == 0 {
            continue;
        }
        let mut scores = [0f32; TILE_ITEMS];
        let mut errors = [0f32; TILE_ITEMS];
        _mm256_storeu_ps(scores.as_mut_ptr(), acc[0]);
        _mm256_storeu_ps(scores.as_mut_ptr().add(8), acc[1]);
        _mm256_storeu_ps(errors.as_mut_ptr(), err[0]);
        _mm256_storeu_ps(errors.as_mut_ptr().add(8), err[1]);
        while mask != 0 {
            let c = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            // Padding slots past the last item have no entry in `order`.
            if let Some(&item) = order.get(first_slot + c) {
                scan.offer(item, scores[c] - errors[c], scores[c] + errors[c]);
            }
        }
    }
}

/// One user against a run of panels: `score[c] = Σ_j user[j] · panel[j][c]`
/// in ascending `j`, as the batch kernel sums.
#[inline(always)]
fn single_user_kernel(
    user: &[f32],
    panels: &[f32],
    f: usize,
    n_items: usize,
    first_panel: usize,
    selection: &mut UserSelection,
) {
    for (p, panel) in panels.chunks_exact(f * TILE_ITEMS).enumerate() {
        let first_item = (first_panel + p) * TILE_ITEMS;
        let items_here = TILE_ITEMS.min(n_items - first_item);
        let mut acc = [0f32; TILE_ITEMS];
        for (j, panel_row) in panel.chunks_exact(TILE_ITEMS).enumerate().take(f) {
            let x = user[j];
            for c in 0..TILE_ITEMS {
                acc[c] += x * panel_row[c];
            }
        }
        let min_score = selection.top.min_score();
        if acc.iter().any(|&s| s >= min_score) {
            for (c, &score) in acc[..items_here].iter().enumerate() {
                selection.offer((first_item + c) as u32, score);
            }
        }
    }
}

#[cfg(test)]
mod tests;
