//! Results that reach DuckDB in bounded blocks.
//!
//! An aggregate's `finalize` computes the result once and registers it here
//! as a [`BlockSource`]: something that can produce its rows in numbered
//! blocks of bounded size (it may compute each block only when asked, like
//! the recommendations of one block of users). The aggregate itself returns
//! only `STRUCT(handle, blocks)`; the calling macro then asks the block
//! reader scalar for each block, and unnests each block's `LIST(STRUCT)`.
//! DuckDB's vectorised execution asks for one chunk of block numbers at a
//! time, so at most one chunk's blocks are alive at once, whatever the size
//! of the whole result: peak memory no longer grows with the result rows.
//!
//! A source is kept until every block has been read, then a little longer
//! (DuckDB may share one aggregate result between identical subqueries of
//! one statement, which then both read its blocks): it moves to a short
//! queue of completed results and is dropped when newer ones complete. A
//! large one (a trained model's factors: gigabytes at the real data size)
//! is kept only until the next result is registered, so that it is not
//! still held, outside DuckDB's `memory_limit`, while the next stage runs
//! (at 110M events the ALS model stayed alive all through
//! `recommend_all`). Results never read in full (a query stopped by LIMIT or an error) are
//! dropped when newer results push them out.

use super::rows::RowSet;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// A result that produces its rows block by block.
pub trait BlockSource: Send + Sync {
    /// How many blocks there are (0 for an empty result).
    fn blocks(&self) -> usize;
    /// The rows of block `index` (< `blocks()`), in result order.
    fn block(&self, index: usize) -> anyhow::Result<RowSet>;
    /// Bytes this source keeps alive that nothing else holds (about).
    fn retained_bytes(&self) -> usize {
        0
    }
}

/// Rows up to this many per block when a whole [`RowSet`] is the result.
pub const BLOCK_ROWS: usize = 256;

/// A result that is already computed in full and small: served in slices.
pub struct Computed {
    rows: RowSet,
}

impl Computed {
    pub fn new(rows: RowSet) -> Self {
        Computed { rows }
    }
}

impl BlockSource for Computed {
    fn blocks(&self) -> usize {
        self.rows.rows().div_ceil(BLOCK_ROWS)
    }
    fn retained_bytes(&self) -> usize {
        self.rows.bytes()
    }
    fn block(&self, index: usize) -> anyhow::Result<RowSet> {
        Ok(self
            .rows
            .slice(index * BLOCK_ROWS, (index + 1) * BLOCK_ROWS))
    }
}

/// A result computed from contiguous ranges of `items` (users, model rows):
/// block `i` covers items `i * per_block .. (i + 1) * per_block`.
pub struct Ranges<F> {
    items: usize,
    per_block: usize,
    produce: F,
}

impl<F> Ranges<F>
where
    F: Fn(std::ops::Range<usize>) -> anyhow::Result<RowSet> + Send + Sync,
{
    pub fn new(items: usize, per_block: usize, produce: F) -> Self {
        Ranges {
            items,
            per_block: per_block.max(1),
            produce,
        }
    }
}

impl<F> BlockSource for Ranges<F>
where
    F: Fn(std::ops::Range<usize>) -> anyhow::Result<RowSet> + Send + Sync,
{
    fn blocks(&self) -> usize {
        self.items.div_ceil(self.per_block)
    }
    fn block(&self, index: usize) -> anyhow::Result<RowSet> {
        let start = index * self.per_block;
        (self.produce)(start..(start + self.per_block).min(self.items))
    }
}

struct Registered {
    handle: i64,
    source: Arc<dyn BlockSource>,
    /// Worker threads for computing blocks (DuckDB's `threads` setting).
    threads: i64,
    read: AtomicUsize,
}

/// Results being read, kept at once; older ones are dropped when more arrive.
const KEPT: usize = 16;
/// Results read in full, kept for a second reader of the same statement.
const COMPLETED: usize = 2;
/// A completed result above this size goes when the next one registers.
const LARGE_COMPLETED_BYTES: usize = 64 << 20;

#[derive(Default)]
struct Held {
    reading: VecDeque<Arc<Registered>>,
    completed: VecDeque<Arc<Registered>>,
}

fn registry() -> &'static Mutex<Held> {
    static REGISTRY: OnceLock<Mutex<Held>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn lock() -> std::sync::MutexGuard<'static, Held> {
    crate::threads::lock(registry())
}

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

/// Registers a result; returns `(handle, blocks)`. An empty result is not
/// kept (handle 0, no blocks to read).
pub fn register(source: Arc<dyn BlockSource>, threads: i64) -> (i64, i64) {
    let blocks = source.blocks();
    if blocks == 0 {
        return (0, 0);
    }
    let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed) as i64;
    let mut held = lock();
    let (large, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut held.completed)
        .into_iter()
        .partition(|r| r.source.retained_bytes() > LARGE_COMPLETED_BYTES);
    held.completed = kept;
    held.reading.push_back(Arc::new(Registered {
        handle,
        source,
        threads,
        read: AtomicUsize::new(0),
    }));
    while held.reading.len() > KEPT {
        held.reading.pop_front();
    }
    drop(held);
    if !large.is_empty() {
        // Dropped outside the lock; its freed heap back to the system.
        drop(large);
        crate::pages::release_free_heap();
    }
    (handle, blocks as i64)
}

/// A registered result, for reading some of its blocks.
pub(crate) struct Reader {
    entry: Arc<Registered>,
}

impl Reader {
    pub(crate) fn open(function: &str, handle: i64) -> anyhow::Result<Reader> {
        let held = lock();
        held.reading
            .iter()
            .chain(held.completed.iter())
            .find(|r| r.handle == handle)
            .cloned()
            .map(|entry| Reader { entry })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{function}: result {handle} is no longer held (it was read in full, or more than {KEPT} \
                     newer results pushed it out); run the query again"
                )
            })
    }

    pub(crate) fn threads(&self) -> i64 {
        self.entry.threads
    }

    pub(crate) fn blocks(&self) -> usize {
        self.entry.source.blocks()
    }

    pub(crate) fn block(&self, index: usize) -> anyhow::Result<RowSet> {
        self.entry.source.block(index)
    }

    /// Counts `n` blocks as read; after the last one the result moves to
    /// the completed queue.
    pub(crate) fn done(&self, n: usize) {
        let read = self.entry.read.fetch_add(n, Ordering::AcqRel) + n;
        let blocks = self.entry.source.blocks();
        if read >= blocks && read - n < blocks {
            let mut held = lock();
            held.reading.retain(|r| r.handle != self.entry.handle);
            held.completed.push_back(self.entry.clone());
            while held.completed.len() > COMPLETED {
                held.completed.pop_front();
            }
        }
    }
}

/// Results currently held (for tests and `ecoreco.model_cache_clear`).
pub fn held() -> usize {
    let held = lock();
    held.reading.len() + held.completed.len()
}

/// Drops every held result; returns how many there were.
pub fn clear() -> usize {
    let held = std::mem::take(&mut *lock());
    held.reading.len() + held.completed.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::rows::Values;

    fn numbers(n: usize) -> RowSet {
        RowSet {
            columns: vec![(
                "x".into(),
                Values::BigInt((0..n as i64).map(Some).collect()),
            )],
        }
    }

    #[test]
    fn computed_rows_are_served_in_bounded_slices_in_order() {
        let source = Computed::new(numbers(2 * BLOCK_ROWS + 3));
        assert_eq!(source.blocks(), 3);
        let mut all = Vec::new();
        for b in 0..3 {
            let block = source.block(b).unwrap();
            assert!(block.rows() <= BLOCK_ROWS);
            if let Values::BigInt(v) = &block.columns[0].1 {
                all.extend(v.iter().map(|x| x.unwrap()));
            }
        }
        assert_eq!(all, (0..2 * BLOCK_ROWS as i64 + 3).collect::<Vec<_>>());
    }

    #[test]
    fn a_result_is_dropped_once_read_and_refused_after() {
        let (handle, blocks) = register(Arc::new(Computed::new(numbers(BLOCK_ROWS + 1))), 1);
        assert_eq!(blocks, 2);
        let reader = Reader::open("f", handle).unwrap();
        reader.done(1);
        assert!(Reader::open("f", handle).is_ok());
        reader.done(1);
        // Read in full: still there for a second reader, until newer
        // results complete.
        assert!(Reader::open("f", handle).is_ok());
        for _ in 0..COMPLETED {
            let (h, _) = register(Arc::new(Computed::new(numbers(1))), 1);
            Reader::open("f", h).unwrap().done(1);
        }
        let e = Reader::open("ecoreco.f", handle).err().unwrap().to_string();
        assert!(
            e.contains("no longer held") && e.contains("run the query again"),
            "{e}"
        );
        assert_eq!(register(Arc::new(Computed::new(numbers(0))), 1), (0, 0));
    }

    struct Large;
    impl BlockSource for Large {
        fn blocks(&self) -> usize {
            1
        }
        fn block(&self, _: usize) -> anyhow::Result<RowSet> {
            Ok(numbers(1))
        }
        fn retained_bytes(&self) -> usize {
            LARGE_COMPLETED_BYTES + 1
        }
    }

    #[test]
    fn a_large_result_read_in_full_goes_when_the_next_registers() {
        let (handle, _) = register(Arc::new(Large), 1);
        let source = Arc::downgrade(&Reader::open("f", handle).unwrap().entry.source);
        Reader::open("f", handle).unwrap().done(1);
        let (next, _) = register(Arc::new(Computed::new(numbers(1))), 1);
        assert!(Reader::open("f", handle).is_err());
        assert!(
            source.upgrade().is_none(),
            "the large result is still alive"
        );
        assert!(Reader::open("f", next).is_ok());
        assert!(Computed::new(numbers(100)).retained_bytes() >= 800);
    }

    #[test]
    fn ranges_cover_every_item_once() {
        let source = Ranges::new(10, 4, |r: std::ops::Range<usize>| Ok(numbers(r.len())));
        assert_eq!(source.blocks(), 3);
        let sizes: Vec<usize> = (0..3).map(|b| source.block(b).unwrap().rows()).collect();
        assert_eq!(sizes, [4, 4, 2]);
    }
}
