//! Aggregate states that stay safe whatever the host does with their memory.
//!
//! DuckDB owns the memory of an aggregate state and may, depending on how
//! the aggregate is called (GROUP BY, window frames, ORDER BY inside the
//! aggregate, DISTINCT), combine one source state into several targets,
//! finalize a state more than once, or copy a state's bytes. A Rust state
//! held as a raw `Box` pointer in that memory would then be moved twice or
//! freed twice, corrupting the user's process. So the memory DuckDB gives us
//! holds only a tag and a number ([`Slot`]); the Rust state lives in a
//! registry here, under that number:
//! - copied bytes name the same entry; the second destroy finds nothing;
//! - a state moved out by `combine` or `finalize` leaves a tombstone, so a
//!   second use is detected and refused with a clear SQL error instead of
//!   reading freed memory;
//! - state memory that was never initialised (no tag) is refused;
//! - a pointer DuckDB never initialised as a state is not even read: every
//!   address `init` saw is recorded, and the callbacks check an address is
//!   known before touching it (DuckDB 1.5 hands an ORDER BY aggregate's
//!   `update` one valid state followed by uninitialised pointers).

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// What DuckDB's state memory holds.
#[repr(C)]
pub(crate) struct Slot {
    tag: u64,
    id: u64,
}

const TAG: u64 = 0xEC0_BEC0_5A7E_0001;

/// A registered state: the aggregate's own state plus the call's settings.
pub(crate) struct Entry<S, A> {
    pub state: S,
    pub call: Option<A>,
}

enum Stored {
    Live(Box<dyn Any + Send>),
    /// Moved out by combine/finalize; what took it, for the error.
    Taken(&'static str),
}

const SHARDS: usize = 16;

fn shards() -> &'static [Mutex<HashMap<u64, Stored>>; SHARDS] {
    static SHARDS_: OnceLock<[Mutex<HashMap<u64, Stored>>; SHARDS]> = OnceLock::new();
    SHARDS_.get_or_init(|| std::array::from_fn(|_| Mutex::new(HashMap::new())))
}

fn shard(id: u64) -> MutexGuard<'static, HashMap<u64, Stored>> {
    // A panic while a shard was locked cannot leave a map half-updated
    // (every update is one insert or remove), so a poisoned lock is usable.
    shards()[(id as usize) % SHARDS]
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn addresses() -> &'static [Mutex<std::collections::HashSet<usize>>; SHARDS] {
    static ADDRESSES: OnceLock<[Mutex<std::collections::HashSet<usize>>; SHARDS]> = OnceLock::new();
    ADDRESSES.get_or_init(|| std::array::from_fn(|_| Mutex::new(Default::default())))
}

fn address_shard(address: usize) -> MutexGuard<'static, std::collections::HashSet<usize>> {
    addresses()[(address >> 4) % SHARDS]
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The state at `address`, if `init` initialised it and it was not
/// destroyed since; `None` for any other pointer, which is never read.
///
/// # Safety
/// A known address points to live state memory of `size_of::<Slot>()`
/// bytes (DuckDB keeps it until it calls destroy).
pub(crate) unsafe fn known<'a>(address: *mut u8) -> Option<&'a mut Slot> {
    let a = address as usize;
    if a == 0 || !address_shard(a).contains(&a) {
        return None;
    }
    Some(&mut *(address as *mut Slot))
}

/// The error for a pointer that is not a state we know.
pub(crate) fn unknown_state(function: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{function} was handed aggregate state memory it did not initialise, as DuckDB 1.5 does for window functions (OVER ...) and ORDER BY inside \
         an aggregate call; call it without OVER or ORDER BY, as a plain aggregate, through its ecoreco.* macro"
    )
}

/// The error for a state the host uses after it was moved out.
fn reused(function: &str, taken_by: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{function} was given a partial result that was already {taken_by}, as happens when an ecoreco \
         aggregate is used as a window function (OVER ...) or inside another aggregate construct; call it \
         as a plain aggregate, through its ecoreco.* macro"
    )
}

impl Slot {
    /// Initialises state memory: a fresh number, no entry yet (nothing is
    /// allocated, so initialisation cannot fail).
    pub(crate) fn init(&mut self) {
        self.tag = TAG;
        self.id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let a = self as *mut Slot as usize;
        address_shard(a).insert(a);
    }

    fn id(&self, function: &str) -> anyhow::Result<u64> {
        anyhow::ensure!(
            self.tag == TAG && self.id != 0,
            "{function} was handed aggregate state memory it did not initialise; call it through its ecoreco.* macro"
        );
        Ok(self.id)
    }

    /// Runs `body` on the live state (created empty on first use).
    pub(crate) fn with<S, A, R>(
        &self,
        function: &str,
        body: impl FnOnce(&mut Entry<S, A>) -> anyhow::Result<R>,
    ) -> anyhow::Result<R>
    where
        S: Default + Send + 'static,
        A: Send + 'static,
    {
        let id = self.id(function)?;
        let mut map = shard(id);
        let stored = map.entry(id).or_insert_with(|| {
            Stored::Live(Box::new(Entry::<S, A> {
                state: S::default(),
                call: None,
            }))
        });
        match stored {
            Stored::Live(any) => {
                let entry = any.downcast_mut::<Entry<S, A>>().ok_or_else(|| {
                    anyhow::anyhow!("{function} was handed the state of another aggregate")
                })?;
                body(entry)
            }
            Stored::Taken(by) => Err(reused(function, by)),
        }
    }

    /// Moves the state out, leaving a tombstone; `None` if it was never
    /// used (no rows reached it).
    pub(crate) fn take<S, A>(
        &self,
        function: &str,
        taken_by: &'static str,
    ) -> anyhow::Result<Option<Entry<S, A>>>
    where
        S: Send + 'static,
        A: Send + 'static,
    {
        let id = self.id(function)?;
        let mut map = shard(id);
        match map.insert(id, Stored::Taken(taken_by)) {
            None => Ok(None),
            Some(Stored::Live(any)) => any
                .downcast::<Entry<S, A>>()
                .map(|entry| Some(*entry))
                .map_err(|_| {
                    anyhow::anyhow!("{function} was handed the state of another aggregate")
                }),
            Some(Stored::Taken(by)) => Err(reused(function, by)),
        }
    }

    /// Frees the state (or its tombstone). Safe to call twice, and on
    /// copies: the second call finds nothing.
    pub(crate) fn destroy(&mut self) {
        let a = self as *mut Slot as usize;
        address_shard(a).remove(&a);
        if self.tag != TAG {
            return;
        }
        let removed = shard(self.id).remove(&self.id);
        self.tag = 0;
        // Dropping a state runs user code: it must not unwind into DuckDB.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(removed)));
    }

    pub(crate) fn same(&self, other: &Slot) -> bool {
        self.tag == other.tag && self.id == other.id
    }
}

/// How many states are registered (live or tombstones): for tests.
#[cfg(test)]
pub(crate) fn registered() -> usize {
    shards()
        .iter()
        .map(|s| s.lock().map(|m| m.len()).unwrap_or(0))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> Slot {
        let mut s = Slot { tag: 0, id: 0 };
        s.init();
        s
    }

    #[test]
    fn state_is_created_on_first_use_and_moved_out_once() {
        let mut a = slot();
        a.with::<Vec<i32>, (), _>("f", |e| {
            e.state.push(1);
            Ok(())
        })
        .unwrap();
        let taken = a.take::<Vec<i32>, ()>("f", "finalized").unwrap().unwrap();
        assert_eq!(taken.state, vec![1]);
        // A second finalize (window frames) is an error, not a double move.
        let again = a
            .take::<Vec<i32>, ()>("f", "finalized")
            .err()
            .unwrap()
            .to_string();
        assert!(
            again.contains("already finalized") && again.contains("window"),
            "{again}"
        );
        let update = a
            .with::<Vec<i32>, (), _>("f", |_| Ok(()))
            .err()
            .unwrap()
            .to_string();
        assert!(update.contains("already finalized"), "{update}");
        a.destroy();
    }

    #[test]
    fn copied_bytes_and_double_destroy_are_harmless() {
        let mut a = slot();
        a.with::<String, (), _>("f", |e| {
            e.state.push('x');
            Ok(())
        })
        .unwrap();
        let mut copy = Slot {
            tag: a.tag,
            id: a.id,
        };
        let before = registered();
        a.destroy();
        copy.destroy();
        a.destroy();
        assert!(registered() < before);
        // After destroy the memory is no longer a state.
        assert!(a.with::<String, (), _>("f", |_| Ok(())).is_err());
    }

    #[test]
    fn uninitialised_memory_and_foreign_states_are_refused() {
        let junk = Slot { tag: 7, id: 99 };
        let e = junk
            .with::<u8, (), _>("f", |_| Ok(()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("did not initialise"), "{e}");
        let mut a = slot();
        a.with::<u8, (), _>("f", |_| Ok(())).unwrap();
        let e = a
            .with::<u16, (), _>("f", |_| Ok(()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("another aggregate"), "{e}");
        a.destroy();
    }

    #[test]
    fn never_used_state_takes_as_none() {
        let mut a = slot();
        assert!(a.take::<u8, ()>("f", "combined").unwrap().is_none());
        assert!(a.take::<u8, ()>("f", "combined").is_err());
        a.destroy();
    }
}
